"""Splatent viewer: latent-space Gaussian splatting with one-step diffusion enhancement.

Pipeline, one sub-package per stage:
``data`` (scenes, images) → ``codecs`` (image ↔ latent) → ``render`` (Gaussians → latent/RGB
render) → ``references`` (nearest training views) → refine → view / export.
"""

__version__ = "0.1.0"
