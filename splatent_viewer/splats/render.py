"""Rendering splats: RGB (spherical harmonics) or latent features, through the rasterizer backend.

:func:`render_splats` renders one kind of content per call; :func:`render_rgb_and_latents` renders both (a training
step's two passes) from one projection (:mod:`splatent_viewer.render.screen`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from splatent_viewer.render import RasterOutput, rasterize
from splatent_viewer.render.gsplat_backend import sh_gsplat
from splatent_viewer.render.rasterize import resolve_backend
from splatent_viewer.render.screen import downscale_screen, intersect_screen, project_screen, rasterize_screen
from splatent_viewer.splats.params import SplatParams, splat_geometry
from splatent_viewer.splats.sh import eval_sh


def camera_centres(viewmats: Float[Tensor, "C 4 4"]) -> Float[Tensor, "C 3"]:
    """World positions of the cameras of rigid world-to-camera ``viewmats``: ``-Rᵀ t`` (no matrix inverse: on CUDA,
    ``torch.linalg.inv`` checks its result on the host, a device sync)."""
    R, t = viewmats[:, :3, :3], viewmats[:, :3, 3]
    return -(R.transpose(-1, -2) @ t[..., None])[..., 0]


LATENT_TILE_SIZE = 8
"""Tile edge (in latent cells) of every latent-grid pass. The latent grid is 1/8 of the image per side, so 16-cell
tiles (gsplat's default, right at image resolution) leave a 256² render 4 tiles: 4 thread blocks, each walking all of
its ~N/4 Gaussians for its 256 pixels with 32 channels, however small their footprint, which made the latent pass
grow with the Gaussian count far faster than the RGB pass (issue 18, benchmarks/RESULTS.md). 8 is the smallest
tile whose 64-thread blocks still split into whole warps, as gsplat's backward reductions need; the renders equal
those with 16-cell tiles up to the 1/255 alpha cut-off of far tails (measured: 1e-7 on the CPU)."""


def latent_layout(width: int, height: int, channels: int = 32) -> tuple[int, int]:
    """gsplat's launch layout of the latent pass on a ``width`` x ``height`` latent grid: ``(channel_split,
    depth_split)`` for :func:`~splatent_viewer.render.screen.rasterize_screen` (``channels`` composited, depth
    included; one channel group when the groups would not divide them). Each of gsplat's thread blocks walks
    its tile's whole Gaussian list, so on a grid of few tiles (a 256² image: 16 tiles of 8 latent cells; 504x376: 48)
    a few blocks walk lists of tens of thousands of Gaussians while the GPU idles. Under 32 tiles: 2 channel groups
    × 16 depth runs (512 blocks); from 32 up: 4 × 4.

    Measured on one H100 (benchmarks/RESULTS.md, issue 18). ``ns-train splatent``, 7000 steps: the demo scene took
    ~178 s for 5270 steps with 4 groups alone, ~130 s for 5530 with 4 × 4, ~134 s for all 7000 with 2 × 16 (21 ms a
    step at 425k Gaussians); fern 158 s with 4 groups alone (and ~148 s with the packed layout's 4 × 1), 110 s with
    4 × 4. ``benchmarks/latent_pass_gpu.py`` (jittered point clouds, 500k Gaussians) agrees on the demo (forward +
    backward 93.2 ms with 16-cell tiles, 37.4 with 4 groups, 17.3 with 4 × 4, 8.1 with 2 × 16) but preferred 4 × 1
    on fern (4.5 ms against 5.9 for 4 × 4): its Gaussians spread evenly over the tiles, a trained model's crowd some
    tiles, and the longest list sets the pass's time — which only depth runs shorten."""
    tiles = math.ceil(width / LATENT_TILE_SIZE) * math.ceil(height / LATENT_TILE_SIZE)
    groups, runs = (2, 16) if tiles < 32 else (4, 4)
    return (groups if channels % groups == 0 else 1), runs


def sh_colors(
    *,
    params: SplatParams,
    viewmats: Float[Tensor, "C 4 4"],
    sh_degree: int,
    masks: Bool[Tensor, "C N"] | None = None,
    backend: Literal["auto", "gsplat", "torch"] = "auto",
) -> Float[Tensor, "C N 3"]:
    """View-dependent RGB of every Gaussian for every camera: gsplat's fused SH kernel on CUDA (``masks``: the
    Gaussians to evaluate, e.g. ``radii > 0``; the others get 0.5), :func:`eval_sh` in torch otherwise (every
    Gaussian). The two agree to float rounding."""
    coeffs = torch.cat([params["features_dc"][:, None, :], params["features_rest"]], dim=1)  # [N, K, 3]
    C = viewmats.shape[0]
    fused = resolve_backend(backend, params["means"].device) == "gsplat"
    if sh_degree == 0 and not fused:  # view-independent: one colour per Gaussian
        return eval_sh(degree=0, coeffs=coeffs, dirs=params["means"]).expand(C, -1, -1)
    dirs = params["means"][None] - camera_centres(viewmats)[:, None]
    coeffs = coeffs[None].expand(C, -1, -1, -1)
    if fused:
        return sh_gsplat(degree=sh_degree, coeffs=coeffs, dirs=dirs, masks=masks)
    return eval_sh(degree=sh_degree, coeffs=coeffs, dirs=dirs)


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
    tile_size: int | None = None,
) -> RasterOutput:
    """Renders the Gaussians' RGB or latents (plus expected depth and alpha) for a batch of cameras.

    For latents, ``Ks``/``width``/``height`` are the latent grid's (image intrinsics scaled by the
    codec's 1/downscale). ``depth=False`` skips the expected depth (``RasterOutput.depth`` is None).
    ``tile_size``: None = 16 for RGB, :data:`LATENT_TILE_SIZE` for latents; latents on gsplat use
    :func:`latent_layout`'s launch layout (as the training step's latent pass).
    """
    layout: dict[str, int] = {}
    if content == "rgb":
        features = sh_colors(params=params, viewmats=viewmats, sh_degree=sh_degree, backend=backend)
    else:
        features = params["latents"]
        groups, runs = latent_layout(width, height, features.shape[-1] + int(depth))
        layout = {"channel_split": groups, "depth_split": runs}
    return rasterize(
        **splat_geometry(params),
        features=features,
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        backgrounds=backgrounds,
        backend=backend,
        depth=depth,
        tile_size=tile_size if tile_size is not None else (16 if content == "rgb" else LATENT_TILE_SIZE),
        **layout,
    )


def render_rgb_and_latents(
    *,
    params: SplatParams,
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    latent_width: int,
    latent_height: int,
    latent_downscale: float,
    sh_degree: int,
    rgb_backgrounds: Float[Tensor, "C 3"] | None = None,
    latent_backgrounds: Float[Tensor, "C D"] | None = None,
    depth: bool = True,
    backend: Literal["auto", "gsplat", "torch"] = "auto",
    absgrad: bool = False,
    latents: bool = True,
) -> tuple[RasterOutput, RasterOutput | None]:
    """The RGB splats at ``width`` x ``height`` (intrinsics ``Ks``) and the latents at ``latent_width`` x
    ``latent_height`` (``latent_downscale`` times coarser: ``scale_intrinsics(Ks, 1 / latent_downscale)``), from ONE
    projection: :func:`~splatent_viewer.render.screen.downscale_screen` derives the latent grid's Gaussians from the
    RGB grid's, then both grids get their tile intersections, then each its compositing. ``depth``: the RGB pass's
    expected depth.

    The RGB pass composites its own copy of the projected centres, so ``rgb.info["means2d"].grad`` (what gsplat's
    ``DefaultStrategy`` densifies on; ``.absgrad`` with ``absgrad``, gsplat only) holds the RGB render's screen-space
    gradient only, as with two separate projections, while both renders' gradients reach the means.
    ``latents=False`` renders the RGB pass alone (the same RGB output; the latent output is None).
    """
    screen = project_screen(
        **splat_geometry(params),
        viewmats=viewmats,
        Ks=Ks,
        width=width,
        height=height,
        backend=backend,
    )
    colors = sh_colors(
        params=params, viewmats=viewmats, sh_degree=sh_degree, masks=screen.radii > 0, backend=screen.backend
    )
    latent_screen = (
        downscale_screen(screen, downscale=latent_downscale, width=latent_width, height=latent_height)
        if latents
        else None
    )
    # both grids' tiles before either compositing: gsplat's isect_tiles syncs on the host (would wait for the RGB pass)
    rgb_isect = intersect_screen(screen=screen, tile_size=16)
    latent_isect = None if latent_screen is None else intersect_screen(screen=latent_screen, tile_size=LATENT_TILE_SIZE)
    # the densification gradient's tap (its own copy only when the latent pass shares the centres)
    rgb_screen = replace(screen, means2d=screen.means2d.clone()) if latents else screen
    rgb = rasterize_screen(
        screen=rgb_screen,
        features=colors,
        backgrounds=rgb_backgrounds,
        depth=depth,
        absgrad=absgrad,
        intersections=rgb_isect,
    )
    if latent_screen is None:
        return rgb, None
    groups, runs = latent_layout(latent_width, latent_height, params["latents"].shape[-1])
    latent = rasterize_screen(
        screen=latent_screen,
        features=params["latents"],
        backgrounds=latent_backgrounds,
        depth=False,
        tile_size=LATENT_TILE_SIZE,
        channel_split=groups,
        depth_split=runs,
        intersections=latent_isect,
    )
    return rgb, latent
