"""The HTTP face of terradream: FastAPI app factory, dependencies, the exception -> status table, routes."""
