"""The `terradream` command: one click group with serve, worker, seed, export and train."""
