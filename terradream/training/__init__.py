"""Training-side tools: realism metrics that compare generated image crops with real ones."""
