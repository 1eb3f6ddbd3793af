"""gsplat 1.4.0 CUDA backend: a thin call of ``gsplat.rasterization`` in "RGB+ED" mode.

What gsplat does with the arguments (read from its 1.4.0 source, ``rendering.py`` and
``cuda/_wrapper.py``), so the torch backend can match it:

- the expected depth rides as an extra channel: ``colors = cat([features, depths])`` and
  ``backgrounds = cat([backgrounds, 0])``; after compositing the last channel is divided by
  ``alphas.clamp(min=1e-10)``;
- more than ``channel_chunk = 32`` channels (incl. depth) are rendered in chunks of 32;
  channel counts outside {1, 2, 3, 4, 5, 8, 9, 16, 17, 32, 33, ...} are zero-padded to the next
  power of two inside ``rasterize_to_pixels`` and sliced off again (max 513 channels);
- defaults: ``near_plane=0.01``, ``far_plane=1e10``, ``radius_clip=0.0``, ``eps2d=0.3``;
- CUDA kernels are float32 only.

The module imports gsplat lazily, so CPU-only code never touches its CUDA extension.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.errors import SplatentError


@functools.lru_cache(maxsize=1)
def gsplat_available() -> bool:
    """True when gsplat imports and has its CUDA extension (prebuilt, or JIT-built with nvcc)."""
    try:
        # by module: gsplat binds _C from an import pyright cannot resolve (the compiled gsplat.csrc)
        backend = importlib.import_module("gsplat.cuda._backend")
    except Exception:  # noqa: BLE001 - any import failure means "not usable"
        return False
    return getattr(backend, "_C", None) is not None


def rasterize_gsplat(
    *,
    means: Float[Tensor, "N 3"],
    quats: Float[Tensor, "N 4"],
    scales: Float[Tensor, "N 3"],
    opacities: Float[Tensor, " N"],
    features: Float[Tensor, "N D"] | Float[Tensor, "C N D"],
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    tile_size: int = 16,
    backgrounds: Float[Tensor, "C D"] | None = None,
    depth: bool = True,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"] | None, Float[Tensor, "C H W 1"], dict[str, Any]]:
    """Features, expected depth (None unless ``depth``), alpha and gsplat's meta dict (inputs already validated)."""
    if not means.is_cuda:
        raise SplatentError(
            "The gsplat rasterizer backend needs CUDA tensors; pass backend='torch' (or 'auto') to render on the CPU."
        )
    if means.dtype != torch.float32:
        raise SplatentError(
            f"The gsplat rasterizer backend renders float32 only, got {means.dtype}; cast the Gaussians and cameras "
            "with .float() or use backend='torch'."
        )
    try:
        from gsplat import rasterization
    except Exception as exc:  # noqa: BLE001
        raise SplatentError(
            f"gsplat could not be imported ({exc}); install gsplat==1.4.0 with its CUDA extension "
            "or use backend='torch'."
        ) from exc

    D = features.shape[-1]
    render, alpha, meta = rasterization(
        means,
        quats,
        scales,
        opacities,
        features,
        viewmats,
        Ks,
        width,
        height,
        near_plane=near_plane,
        far_plane=far_plane,
        radius_clip=radius_clip,
        eps2d=eps2d,
        sh_degree=None,
        packed=False,
        tile_size=tile_size,
        backgrounds=backgrounds,
        render_mode="RGB+ED" if depth else "RGB",
        absgrad=False,
        rasterize_mode="classic",
    )
    return render[..., :D], (render[..., D : D + 1] if depth else None), alpha, meta
