"""Rendering one camera's frame: rasterize latents → decode (→ refine, once a refiner exists).

This is the single render function that the demo, the viewer and the exporter call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.codecs import LatentCodec
from splatent_viewer.errors import SplatentError
from splatent_viewer.splats import render_splats


@dataclass
class Frame:
    """Outputs for one camera (images HxWx3 in [0, 1], latent CxhxW)."""

    decoded: Float[Tensor, "H W 3"] | None
    """The latent render decoded by the codec."""
    latent: Float[Tensor, "C h w"] | None
    """The rendered latent (latent resolution)."""
    rgb: Float[Tensor, "H W 3"] | None
    """The RGB splats render."""


@torch.no_grad()
def render_frame(
    *,
    params: Mapping[str, Tensor],
    codec: LatentCodec,
    viewmat: Float[Tensor, "4 4"],
    K: Float[Tensor, "3 3"],
    width: int,
    height: int,
    sh_degree: int = 3,
    decoded: bool = True,
    rgb: bool = False,
) -> Frame:
    """Renders what is asked for one camera. ``width``/``height`` must be multiples of the codec's downscale."""
    ds = codec.downscale
    if width % ds or height % ds:
        raise SplatentError(f"Frame size {width}x{height} is not a multiple of the codec's downscale {ds}; round it.")
    vm, Kb = viewmat[None], K[None]
    latent = None
    image = None
    if decoded:
        out = render_splats(params=params, viewmats=vm, Ks=scale_intrinsics(Kb, 1.0 / ds), width=width // ds,
                            height=height // ds, content="latent")
        latent = out.features[0].permute(2, 0, 1)
        image = codec.decode(latent[None])[0].float().clamp(0, 1).permute(1, 2, 0)
    rgb_image = None
    if rgb:
        out = render_splats(params=params, viewmats=vm, Ks=Kb, width=width, height=height, content="rgb", sh_degree=sh_degree)
        rgb_image = out.features[0].clamp(0, 1)
    return Frame(decoded=image, latent=latent, rgb=rgb_image)
