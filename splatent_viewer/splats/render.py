"""Rendering splats: RGB (spherical harmonics) or latent features, through the rasterizer backend."""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.render import RasterOutput, rasterize
from splatent_viewer.splats.params import SplatParams
from splatent_viewer.splats.sh import eval_sh


def sh_colors(
    *, params: SplatParams, viewmats: Float[Tensor, "C 4 4"], sh_degree: int
) -> Float[Tensor, "C N 3"]:
    """View-dependent RGB of every Gaussian for every camera."""
    coeffs = torch.cat([params["features_dc"][:, None, :], params["features_rest"]], dim=1)  # [N, K, 3]
    if sh_degree == 0:
        return eval_sh(degree=0, coeffs=coeffs, dirs=params["means"]).expand(viewmats.shape[0], -1, -1)
    campos = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
    dirs = params["means"][None] - campos[:, None]
    return eval_sh(degree=sh_degree, coeffs=coeffs[None].expand(viewmats.shape[0], -1, -1, -1), dirs=dirs)


def render_splats(
    *,
    params: SplatParams,
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    content: Literal["rgb", "latent"],
    sh_degree: int = 3,
    backgrounds: Float[Tensor, "C D"] | None = None,
    backend: Literal["auto", "gsplat", "torch"] = "auto",
    depth: bool = True,
) -> RasterOutput:
    """Renders the Gaussians' RGB or latents (plus expected depth and alpha) for a batch of cameras.

    For latents, ``Ks``/``width``/``height`` are the latent grid's (image intrinsics scaled by the
    codec's 1/downscale). ``depth=False`` skips the expected depth (``RasterOutput.depth`` is None).
    """
    if content == "rgb":
        features = sh_colors(params=params, viewmats=viewmats, sh_degree=sh_degree)
    else:
        features = params["latents"]
    return rasterize(
        means=params["means"],
        quats=params["quats"],
        scales=torch.exp(params["scales"]),
        opacities=torch.sigmoid(params["opacities"]).squeeze(-1),
        features=features,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        backgrounds=backgrounds,
        backend=backend,
        depth=depth,
    )
