"""One entry point to render N-channel features of 3D Gaussians: :func:`rasterize`.

Two backends with the same maths: gsplat 1.4.0's CUDA kernels, and a pure-torch tiled
rasterizer (CPU or CUDA, autograd) that mirrors them to within float rounding.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.render.gsplat_backend import gsplat_available, rasterize_gsplat
from splatent_viewer.render.torch_rasterizer import rasterize_torch

Backend = Literal["auto", "gsplat", "torch"]


@dataclass
class RasterOutput:
    """Rendered images for a batch of ``C`` cameras."""

    features: Float[Tensor, "C H W D"]
    """Composited features, background blended in where one was given."""
    depth: Float[Tensor, "C H W 1"] | None
    """Expected depth ``sum(w z) / alpha`` (0 where ``alpha == 0``), gsplat's "RGB+ED" depth; None when
    not asked for (``depth=False``)."""
    alpha: Float[Tensor, "C H W 1"]
    """Accumulated opacity ``1 - T``."""
    info: dict[str, Any] = field(default_factory=dict)
    """gsplat-style meta, enough for gsplat's ``DefaultStrategy`` (``packed=False``):
    ``means2d`` [C, N, 2] (a non-leaf in the graph: ``retain_grad()`` gives the screen-space
    gradient), ``radii`` [C, N] int32 (0 = culled), ``depths``, ``conics``, ``opacities``,
    ``width``, ``height``, ``n_cameras``, ``camera_ids = gaussian_ids = None``, ``tile_size``,
    ``tile_width``, ``tile_height``, ``tiles_per_gauss``; the gsplat backend also returns its
    intersection lists (``isect_ids``, ``flatten_ids``, ``isect_offsets``). Plus ``backend``."""


def resolve_backend(backend: Backend, device: torch.device) -> Literal["gsplat", "torch"]:
    """``auto`` → gsplat on CUDA (torch when gsplat cannot be imported), torch otherwise."""
    if backend == "torch":
        return "torch"
    if backend == "gsplat":
        if device.type != "cuda":
            raise SplatentError(
                f"backend='gsplat' needs CUDA tensors but the Gaussians are on {device}; "
                "use backend='torch' or 'auto' to render on the CPU."
            )
        return "gsplat"
    if backend != "auto":
        raise SplatentError(f"Unknown rasterizer backend {backend!r}; choose 'auto', 'gsplat' or 'torch'.")
    if device.type == "cuda":
        if gsplat_available():
            return "gsplat"
        warnings.warn("gsplat is not importable; rendering on CUDA with the (slower) torch rasterizer.", stacklevel=3)
    return "torch"


def _check_inputs(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    features: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near_plane: float,
    backgrounds: Tensor | None,
    tile_size: int,
) -> None:
    N = means.shape[0] if means.dim() == 2 else -1
    C = viewmats.shape[0] if viewmats.dim() == 3 else -1
    problems = []
    if means.dim() != 2 or means.shape[1] != 3:
        problems.append(f"means must be [N, 3], got {list(means.shape)}")
    if quats.shape != (N, 4):
        problems.append(f"quats must be [N, 4] = [{N}, 4], got {list(quats.shape)}")
    if scales.shape != (N, 3):
        problems.append(f"scales must be [N, 3] = [{N}, 3], got {list(scales.shape)}")
    if opacities.shape != (N,):
        problems.append(f"opacities must be [N] = [{N}], got {list(opacities.shape)}")
    if viewmats.dim() != 3 or viewmats.shape[1:] != (4, 4):
        problems.append(f"viewmats must be [C, 4, 4], got {list(viewmats.shape)}")
    if Ks.shape != (C, 3, 3):
        problems.append(f"Ks must be [C, 3, 3] = [{C}, 3, 3], got {list(Ks.shape)}")
    if not ((features.dim() == 2 and features.shape[0] == N) or (features.dim() == 3 and features.shape[:2] == (C, N))):
        problems.append(f"features must be [N, D] or [C, N, D] with N={N}, C={C}, got {list(features.shape)}")
    elif features.shape[-1] < 1:
        problems.append("features need at least one channel")
    if backgrounds is not None and backgrounds.shape != (C, features.shape[-1]):
        problems.append(f"backgrounds must be [C, D] = [{C}, {features.shape[-1]}], got {list(backgrounds.shape)}")
    if int(width) < 1 or int(height) < 1:
        problems.append(f"image size must be positive, got {width}x{height}")
    if int(tile_size) < 1:
        problems.append(f"tile_size must be positive, got {tile_size}")
    if not near_plane > 0:
        problems.append(f"near_plane must be > 0, got {near_plane}")
    tensors = [means, quats, scales, opacities, features, viewmats, Ks]
    if backgrounds is not None:
        tensors.append(backgrounds)
    if len({t.device for t in tensors}) > 1:
        problems.append("all tensors must be on one device, got " + ", ".join(sorted({str(t.device) for t in tensors})))
    if len({t.dtype for t in tensors}) > 1:
        dtypes = ", ".join(sorted({str(t.dtype) for t in tensors}))
        problems.append(f"all tensors must share one float dtype, got {dtypes}")
    if problems:
        raise SplatentError("rasterize(): " + "; ".join(problems) + ".")


def rasterize(
    *,
    means: Float[Tensor, "_N 3"],
    quats: Float[Tensor, "_N 4"],
    scales: Float[Tensor, "_N 3"],
    opacities: Float[Tensor, " _N"],
    features: Float[Tensor, "_N _D"] | Float[Tensor, "_C _N _D"],
    viewmats: Float[Tensor, "_C 4 4"],
    Ks: Float[Tensor, "_C 3 3"],
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    backgrounds: Float[Tensor, "_C _D"] | None = None,
    backend: Backend = "auto",
    tile_size: int = 16,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    depth: bool = True,
    channel_split: int = 1,
    depth_split: int = 1,
) -> RasterOutput:
    """Render features, expected depth and alpha of 3D Gaussians for ``C`` cameras.

    Inputs whose ``N``, ``C`` or ``D`` disagree, or that mix devices or dtypes, are one :class:`SplatentError`
    listing every problem (so those sizes are written ``_N``, ``_C``, ``_D``: not matched by the annotations).

    Args:
        means: Gaussian centres (world).
        quats: Rotations as wxyz quaternions (normalised internally).
        scales: Linear (not log) standard deviations along the rotated axes.
        opacities: In [0, 1] (post-sigmoid).
        features: Per-Gaussian features, shared by all cameras ([N, D]) or per camera ([C, N, D]).
        viewmats: World-to-camera matrices, OpenCV convention (gsplat's ``viewmats``).
        Ks: Pinhole intrinsics in pixels.
        width: Image width in pixels.
        height: Image height in pixels.
        near_plane: Gaussians with camera z below this are culled.
        far_plane: Gaussians with camera z above this are culled.
        backgrounds: Per-camera feature added with the remaining transmittance.
        backend: "gsplat" (CUDA only), "torch" (CPU/CUDA, autograd) or "auto" (gsplat on CUDA).
        tile_size: Tile edge in pixels (affects which tiles a Gaussian reaches, as in gsplat).
        eps2d: Added to the 2D covariance diagonal (gsplat's low-pass filter).
        radius_clip: Gaussians with screen radius <= this are culled (gsplat default 0).
        depth: Also composite the expected depth. ``False`` saves gsplat a second pass when the features
            fill a whole 32-channel chunk (latents); ``RasterOutput.depth`` is then None.
        channel_split: gsplat only: composite the channels in this many groups, each by its own thread blocks
            (:func:`~splatent_viewer.render.gsplat_backend.rasterize_projected_gsplat`; the same render).
        depth_split: gsplat only: cut every tile's depth-sorted list into this many runs, each by its own blocks,
            composited front to back (the same render up to gsplat's early stop). Both pay on grids of few tiles
            (the latent grid: :func:`~splatent_viewer.splats.render.latent_layout`); the torch backend ignores them.
    """
    _check_inputs(
        means, quats, scales, opacities, features, viewmats, Ks, width, height, near_plane, backgrounds, tile_size
    )
    which = resolve_backend(backend, means.device)
    if which == "gsplat":
        feats, expected_depth, alpha, info = rasterize_gsplat(
            means=means, quats=quats, scales=scales, opacities=opacities, features=features, viewmats=viewmats, Ks=Ks,
            width=int(width), height=int(height), near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
            radius_clip=radius_clip, tile_size=int(tile_size), backgrounds=backgrounds, depth=depth,
            channel_split=channel_split, depth_split=depth_split,
        )  # fmt: skip
    else:
        feats, expected_depth, alpha, info = rasterize_torch(
            means=means, quats=quats, scales=scales, opacities=opacities, features=features, viewmats=viewmats, Ks=Ks,
            width=int(width), height=int(height), near_plane=near_plane, far_plane=far_plane, eps2d=eps2d,
            radius_clip=radius_clip, tile_size=int(tile_size), backgrounds=backgrounds,
        )  # fmt: skip
    info["backend"] = which
    return RasterOutput(features=feats, depth=expected_depth if depth else None, alpha=alpha, info=info)
