"""Training latent Gaussians against codec-encoded images (nerfstudio-free core trainer)."""
