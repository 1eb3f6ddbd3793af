"""Gaussians that carry RGB and a codec latent: parameters, SH colour, rendering."""

from splatent_viewer.splats.params import (
    SPLAT_KEYS,
    SplatGeometry,
    SplatParams,
    check_splats,
    init_splats,
    splat_geometry,
)
from splatent_viewer.splats.render import render_rgb_and_latents, render_splats, sh_colors

__all__ = [
    "SPLAT_KEYS",
    "SplatGeometry",
    "SplatParams",
    "check_splats",
    "init_splats",
    "render_rgb_and_latents",
    "render_splats",
    "sh_colors",
    "splat_geometry",
]
