"""Training and evaluating the denoiser on real imagery; the server never imports this package."""
