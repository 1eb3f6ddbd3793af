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

The shared-projection training path (:mod:`splatent_viewer.render.screen`) chains gsplat's lower-level calls the
way ``rasterization`` does (``fully_fused_projection``, ``isect_tiles``, ``isect_offset_encode``,
``rasterize_to_pixels``): :func:`project_gsplat` and :func:`rasterize_projected_gsplat`; :func:`sh_gsplat` is its
fused SH kernel (``spherical_harmonics``).

The module imports gsplat lazily, so CPU-only code never touches its CUDA extension.
"""

from __future__ import annotations

import functools
import importlib
import math
from types import ModuleType
from typing import Any

import torch
from jaxtyping import Bool, Float, Int
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


def _check_cuda_float32(x: Tensor) -> None:
    if not x.is_cuda:
        raise SplatentError(
            "The gsplat rasterizer backend needs CUDA tensors; pass backend='torch' (or 'auto') to render on the CPU."
        )
    if x.dtype != torch.float32:
        raise SplatentError(
            f"The gsplat rasterizer backend renders float32 only, got {x.dtype}; cast the Gaussians and cameras "
            "with .float() or use backend='torch'."
        )


def _gsplat_module(name: str = "gsplat.cuda._wrapper") -> ModuleType:
    """A gsplat module (default ``gsplat.cuda._wrapper``, its lower-level kernels), or a :class:`SplatentError` saying
    how to get it."""
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001
        raise SplatentError(
            f"gsplat could not be imported ({exc}); install gsplat==1.4.0 with its CUDA extension "
            "or use backend='torch'."
        ) from exc


def project_gsplat(
    *,
    means: Float[Tensor, "N 3"],
    quats: Float[Tensor, "N 4"],
    scales: Float[Tensor, "N 3"],
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
) -> tuple[Float[Tensor, "C N 2"], Float[Tensor, "C N 3"], Float[Tensor, "C N"], Int[Tensor, "C N"]]:
    """gsplat's ``fully_fused_projection`` (pinhole, ``packed=False``, no compensation: ``rasterize_mode="classic"``):
    ``means2d``, ``conics``, ``depths``, ``radii`` (entries with radius 0 are culled and hold garbage)."""
    _check_cuda_float32(means)
    wrapper = _gsplat_module()
    radii, means2d, depths, conics, _ = wrapper.fully_fused_projection(
        means, None, quats, scales, viewmats, Ks, int(width), int(height), eps2d=eps2d, near_plane=near_plane,
        far_plane=far_plane, radius_clip=radius_clip, packed=False, sparse_grad=False, calc_compensations=False,
    )  # fmt: skip
    return means2d, conics, depths, radii


def rasterize_projected_gsplat(
    *,
    means2d: Float[Tensor, "C N 2"],
    conics: Float[Tensor, "C N 3"],
    depths: Float[Tensor, "C N"],
    radii: Int[Tensor, "C N"],
    opacities: Float[Tensor, "C N"],
    features: Float[Tensor, "N D"] | Float[Tensor, "C N D"],
    width: int,
    height: int,
    tile_size: int = 16,
    backgrounds: Float[Tensor, "C D"] | None = None,
    depth: bool = True,
    absgrad: bool = False,
    channel_split: int = 1,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"] | None, Float[Tensor, "C H W 1"], dict[str, Any]]:
    """gsplat's ``isect_tiles`` + ``isect_offset_encode`` + ``rasterize_to_pixels`` of projected Gaussians, chained as
    ``gsplat.rasterization`` does (channels in chunks of 32; the expected depth as an extra channel when ``depth``):
    features, expected depth, alpha and its meta dict. ``absgrad`` makes the backward set ``means2d.absgrad``.

    ``channel_split`` > 1 composites the channels (depth included) as that many groups in ONE launch, each group as
    a copy of the cameras (:func:`split_intersections`): ``channel_split`` times the thread blocks, each walking its
    tile's Gaussians for a part of the channels. The same sums per channel, so the same render; it pays where a grid
    has few tiles and many channels (the latent grid). Not with ``absgrad`` (the copies' ``means2d`` get it)."""
    _check_cuda_float32(means2d)
    wrapper = _gsplat_module()
    C, N = radii.shape
    D = features.shape[-1]
    colors = features.expand(C, N, D) if features.dim() == 2 else features
    if depth:
        colors = torch.cat([colors, depths[..., None]], dim=-1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], dim=-1)
    tile_width, tile_height = math.ceil(width / tile_size), math.ceil(height / tile_size)
    tiles_per_gauss, isect_ids, flatten_ids = wrapper.isect_tiles(
        means2d, radii, depths, tile_size, tile_width, tile_height, packed=False
    )
    isect_offsets = wrapper.isect_offset_encode(isect_ids, C, tile_width, tile_height)
    k = int(channel_split)
    raster_inputs = (means2d, conics, colors, opacities, backgrounds, isect_offsets, flatten_ids)
    if k > 1:
        if absgrad:
            raise ValueError("channel_split > 1 cannot return absgrad (each channel group has its own means2d copy)")
        raster_inputs = _split_channels(*raster_inputs, k=k)
    s_means2d, s_conics, s_colors, s_opacities, s_backgrounds, s_offsets, s_flatten = raster_inputs
    chunk = 32  # gsplat.rasterization's channel_chunk
    renders, alpha = [], None
    for i in range(0, s_colors.shape[-1], chunk):
        render, chunk_alpha = wrapper.rasterize_to_pixels(
            s_means2d, s_conics, s_colors[..., i : i + chunk], s_opacities, width, height, tile_size, s_offsets,
            s_flatten, backgrounds=None if s_backgrounds is None else s_backgrounds[..., i : i + chunk], packed=False,
            absgrad=absgrad,
        )  # fmt: skip
        renders.append(render)
        alpha = chunk_alpha if alpha is None else alpha
    assert alpha is not None
    render = renders[0] if len(renders) == 1 else torch.cat(renders, dim=-1)
    if k > 1:  # [k·C, H, W, D'/k] (group-major) -> [C, H, W, D']
        render = render.unflatten(0, (k, C)).permute(1, 2, 3, 0, 4).flatten(-2)
        alpha = alpha[:C]
    expected_depth = render[..., D : D + 1] / alpha.clamp(min=1e-10) if depth else None
    info: dict[str, Any] = {
        "camera_ids": None, "gaussian_ids": None, "radii": radii, "means2d": means2d, "depths": depths,
        "conics": conics, "opacities": opacities, "width": width, "height": height, "tile_size": tile_size,
        "n_cameras": C, "tile_width": tile_width, "tile_height": tile_height, "tiles_per_gauss": tiles_per_gauss,
        "isect_ids": isect_ids, "flatten_ids": flatten_ids, "isect_offsets": isect_offsets,
    }  # fmt: skip
    return render[..., :D], expected_depth, alpha, info


def split_intersections(
    isect_offsets: Int[Tensor, "C TH TW"], flatten_ids: Int[Tensor, " M"], *, n_gaussians: int, k: int
) -> tuple[Int[Tensor, "kC TH TW"], Int[Tensor, " kM"]]:
    """The tile lists of ``C`` cameras, repeated for ``k`` copies of them (copy ``j`` of camera ``c`` is camera
    ``j·C + c``): what ``isect_tiles`` + ``isect_offset_encode`` return for the cameras repeated ``k`` times, without
    sorting again. ``flatten_ids`` index the flattened ``[C·N]`` Gaussians, so copy ``j``'s are shifted by ``j·C·N``;
    its tile offsets by ``j·M``."""
    C = isect_offsets.shape[0]
    M = flatten_ids.shape[0]
    copies = torch.arange(k, device=flatten_ids.device, dtype=flatten_ids.dtype)
    flatten = (flatten_ids[None] + copies[:, None] * (C * n_gaussians)).reshape(-1)
    offsets = (isect_offsets[None] + copies.to(isect_offsets.dtype)[:, None, None, None] * M).flatten(0, 1)
    return offsets.contiguous(), flatten.contiguous()


def _split_channels(means2d, conics, colors, opacities, backgrounds, isect_offsets, flatten_ids, *, k: int):
    """The rasterizer's inputs with the channels in ``k`` groups, each group a copy of the cameras."""
    C, N, D = colors.shape
    if D % k:
        raise ValueError(f"channel_split={k} must divide the {D} channels composited (depth included)")
    groups = colors.unflatten(-1, (k, D // k)).permute(2, 0, 1, 3).flatten(0, 1)  # [k·C, N, D/k]
    if backgrounds is not None:
        backgrounds = backgrounds.unflatten(-1, (k, D // k)).permute(1, 0, 2).flatten(0, 1)
    offsets, flatten = split_intersections(isect_offsets, flatten_ids, n_gaussians=N, k=k)
    repeat = (k, 1, 1)
    return (
        means2d.repeat(repeat), conics.repeat(repeat), groups.contiguous(), opacities.repeat(k, 1), backgrounds,
        offsets, flatten,
    )  # fmt: skip


def sh_gsplat(
    *,
    degree: int,
    coeffs: Float[Tensor, "*batch K 3"],
    dirs: Float[Tensor, "*batch 3"],
    masks: Bool[Tensor, "*batch"] | None,
) -> Float[Tensor, "*batch 3"]:
    """gsplat's fused SH kernel (``spherical_harmonics``), offset and clamped as ``rasterization`` does: the colours
    of :func:`splatent_viewer.splats.sh.eval_sh` (0.5 where ``masks`` is False)."""
    _check_cuda_float32(dirs)
    return torch.clamp_min(_gsplat_module().spherical_harmonics(degree, dirs, coeffs, masks=masks) + 0.5, 0.0)


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
    _check_cuda_float32(means)
    rasterization = _gsplat_module("gsplat").rasterization
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
