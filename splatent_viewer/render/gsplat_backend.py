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
``rasterize_to_pixels``): :func:`project_gsplat`, :func:`intersect_gsplat` and :func:`rasterize_projected_gsplat`;
:func:`sh_gsplat` is its fused SH kernel (``spherical_harmonics``).

The module imports gsplat lazily, so CPU-only code never touches its CUDA extension.
"""

from __future__ import annotations

import functools
import importlib
import math
from dataclasses import dataclass
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


@dataclass
class TileIntersections:
    """gsplat's tile lists of projected Gaussians on one grid of tiles (``isect_tiles`` + ``isect_offset_encode``,
    ``packed=False``), what :func:`rasterize_projected_gsplat` composites from."""

    tiles_per_gauss: Int[Tensor, "C N"]
    """Number of tiles each Gaussian touches (0 = culled)."""
    isect_ids: Int[Tensor, " M"]
    """The ``M`` intersections' keys (camera, tile, depth bits), sorted."""
    flatten_ids: Int[Tensor, " M"]
    """Each intersection's Gaussian, as an index into ``[C·N]``: the tiles' depth-sorted lists, one after the other."""
    isect_offsets: Int[Tensor, "C TH TW"]
    """Where each tile's list starts in ``flatten_ids`` (all 0 when nothing intersects)."""
    tile_size: int
    """Tile edge in pixels."""
    tile_width: int
    """Tiles per row: ``⌈width / tile_size⌉``."""
    tile_height: int
    """Tiles per column: ``⌈height / tile_size⌉``."""


def intersect_gsplat(
    *,
    means2d: Float[Tensor, "C N 2"],
    radii: Int[Tensor, "C N"],
    depths: Float[Tensor, "C N"],
    width: int,
    height: int,
    tile_size: int = 16,
) -> TileIntersections:
    """gsplat's ``isect_tiles`` + ``isect_offset_encode`` of projected Gaussians on a ``width`` x ``height`` grid of
    ``tile_size`` tiles, for :func:`rasterize_projected_gsplat`'s ``intersections``.

    ``isect_tiles`` reads its intersection count on the host (a device sync, which waits for every kernel queued
    before it): several grids' intersections computed before any of them is composited wait only for each other."""
    _check_cuda_float32(means2d)
    wrapper = _gsplat_module()
    C = radii.shape[0]
    tile_width, tile_height = math.ceil(width / tile_size), math.ceil(height / tile_size)
    tiles_per_gauss, isect_ids, flatten_ids = wrapper.isect_tiles(
        means2d, radii, depths, tile_size, tile_width, tile_height, packed=False
    )
    isect_offsets = wrapper.isect_offset_encode(isect_ids, C, tile_width, tile_height)
    if flatten_ids.shape[0] == 0:  # gsplat leaves the offsets uninitialised when nothing reaches a tile
        isect_offsets = torch.zeros_like(isect_offsets)
    return TileIntersections(
        tiles_per_gauss=tiles_per_gauss,
        isect_ids=isect_ids,
        flatten_ids=flatten_ids,
        isect_offsets=isect_offsets,
        tile_size=int(tile_size),
        tile_width=tile_width,
        tile_height=tile_height,
    )


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
    depth_split: int = 1,
    intersections: TileIntersections | None = None,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"] | None, Float[Tensor, "C H W 1"], dict[str, Any]]:
    """gsplat's ``isect_tiles`` + ``isect_offset_encode`` + ``rasterize_to_pixels`` of projected Gaussians, chained as
    ``gsplat.rasterization`` does (channels in chunks of 32; the expected depth as an extra channel when ``depth``):
    features, expected depth, alpha and its meta dict. ``absgrad`` makes the backward set ``means2d.absgrad``.
    ``intersections``: the tile lists from :func:`intersect_gsplat` of these Gaussians on this grid (computed here
    when None; a :class:`ValueError` when made for other tiles or another camera count).

    A launch layout for grids of few tiles (the latent grid: a 256² view is 16 tiles of 8 cells), where each of
    gsplat's thread blocks walks all of its tile's Gaussians one after the other, so the pass takes as long as its
    longest tile list whatever the GPU (issue 18, ``benchmarks/latent_pass_gpu.py``):

    - ``depth_split`` cuts every tile's depth-sorted list into that many consecutive runs, each composited by its own
      block, then composites the runs front to back: ``C = Σ_s T_s C_s``, ``T_s = Π_{r<s} (1 - α_r)`` — the same
      sums, except gsplat's early stop: a pixel stops before the Gaussian that would take its transmittance below
      1e-4, and drops everything behind; with runs, the runs behind still count, weighted by the transmittance left
      at the stop (measured: latents differ by ≤ 7e-4, RESULTS.md, issue 18);
    - ``channel_split`` composites the channels (depth included) in that many groups, each by its own blocks;

    ``channel_split · depth_split`` times the blocks, in ONE launch: the groups and runs become virtual cameras of
    gsplat's packed mode (:func:`layered_intersections`). Not with ``absgrad``."""
    _check_cuda_float32(means2d)
    wrapper = _gsplat_module()
    C, N = radii.shape
    D = features.shape[-1]
    colors = features.expand(C, N, D) if features.dim() == 2 else features
    if depth:
        colors = torch.cat([colors, depths[..., None]], dim=-1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(C, 1)], dim=-1)
    if intersections is None:
        intersections = intersect_gsplat(
            means2d=means2d, radii=radii, depths=depths, width=width, height=height, tile_size=tile_size
        )
    else:
        grid = (int(tile_size), math.ceil(width / tile_size), math.ceil(height / tile_size), C)
        made_for = (
            intersections.tile_size, intersections.tile_width, intersections.tile_height,
            intersections.isect_offsets.shape[0],
        )  # fmt: skip
        if made_for != grid:
            raise ValueError(
                f"intersections made for tile_size={made_for[0]}, {made_for[1]}x{made_for[2]} tiles, {made_for[3]} "
                f"cameras; this grid has tile_size={grid[0]}, {grid[1]}x{grid[2]} tiles, {grid[3]} cameras"
            )
    tile_width, tile_height = intersections.tile_width, intersections.tile_height
    isect_offsets, flatten_ids = intersections.isect_offsets, intersections.flatten_ids
    chunk = 32  # gsplat.rasterization's channel_chunk
    if channel_split == 1 and depth_split == 1:
        renders, alpha = [], None
        for i in range(0, colors.shape[-1], chunk):
            render, chunk_alpha = wrapper.rasterize_to_pixels(
                means2d, conics, colors[..., i : i + chunk], opacities, width, height, tile_size, isect_offsets,
                flatten_ids, backgrounds=None if backgrounds is None else backgrounds[..., i : i + chunk],
                packed=False, absgrad=absgrad,
            )  # fmt: skip
            renders.append(render)
            alpha = chunk_alpha if alpha is None else alpha
        assert alpha is not None
        render = renders[0] if len(renders) == 1 else torch.cat(renders, dim=-1)
    else:
        if absgrad:
            raise ValueError("channel_split/depth_split > 1 cannot return absgrad (the layout's means2d get it)")
        render, alpha = _rasterize_layered(
            wrapper, means2d, conics, colors, opacities, backgrounds, width=width, height=height,
            tile_size=tile_size, isect_offsets=isect_offsets, flatten_ids=flatten_ids, groups=int(channel_split),
            runs=int(depth_split), chunk=chunk,
        )  # fmt: skip
    expected_depth = render[..., D : D + 1] / alpha.clamp(min=1e-10) if depth else None
    info: dict[str, Any] = {
        "camera_ids": None, "gaussian_ids": None, "radii": radii, "means2d": means2d, "depths": depths,
        "conics": conics, "opacities": opacities, "width": width, "height": height, "tile_size": tile_size,
        "n_cameras": C, "tile_width": tile_width, "tile_height": tile_height,
        "tiles_per_gauss": intersections.tiles_per_gauss, "isect_ids": intersections.isect_ids,
        "flatten_ids": flatten_ids, "isect_offsets": isect_offsets,
    }  # fmt: skip
    return render[..., :D], expected_depth, alpha, info


def layered_intersections(
    isect_offsets: Int[Tensor, "C TH TW"],
    flatten_ids: Int[Tensor, " M"],
    *,
    n_gaussians: int,
    groups: int = 1,
    runs: int = 1,
) -> tuple[Int[Tensor, "V TH TW"], Int[Tensor, " VM"]]:
    """Tile lists of ``V = groups · runs · C`` virtual cameras from those of ``C`` cameras (``isect_offset_encode``'s
    offsets, ``isect_tiles``' flattened ids into ``[C·N]``), for gsplat's packed ``rasterize_to_pixels`` (its kernels
    read a Gaussian only through the ids, the camera only through the offsets). Virtual camera
    ``(j·runs + s)·C + c`` holds run ``s`` of every tile list of camera ``c`` (list entries ``⌈s·n/runs⌉`` up to
    ``⌈(s+1)·n/runs⌉``, depth order kept), with ids shifted by ``j·C·N`` into channel group ``j``'s copy of the
    Gaussians. Elementwise work and one scatter; no sort, no host sync."""
    C, th, tw = isect_offsets.shape
    M = flatten_ids.shape[0]
    device = flatten_ids.device
    if runs > 1:
        bins = C * th * tw
        starts = isect_offsets.reshape(-1).long()
        counts = torch.diff(starts, append=starts.new_full((1,), M))  # [bins]
        s = torch.arange(runs + 1, device=device)
        firsts = (s[:, None] * counts[None] + runs - 1) // runs  # [runs + 1, bins]: ⌈s·n/runs⌉
        run_counts = (firsts[1:] - firsts[:-1]).reshape(-1)  # [runs · bins], run-major
        run_starts = torch.cumsum(run_counts, 0) - run_counts
        bin_of = torch.repeat_interleave(torch.arange(bins, device=device), counts, output_size=M)
        rank = torch.arange(M, device=device) - starts[bin_of]
        run_of = torch.div(rank * runs, counts[bin_of], rounding_mode="floor")
        dest = run_starts[run_of * bins + bin_of] + rank - firsts[run_of, bin_of]
        flatten_ids = torch.empty_like(flatten_ids).index_put_((dest,), flatten_ids)
        isect_offsets = run_starts.to(isect_offsets.dtype).reshape(runs * C, th, tw)
    if groups > 1:
        j = torch.arange(groups, device=device)
        flatten_ids = (flatten_ids[None] + (j * (C * n_gaussians)).to(flatten_ids.dtype)[:, None]).reshape(-1)
        isect_offsets = (isect_offsets[None] + (j * M).to(isect_offsets.dtype)[:, None, None, None]).flatten(0, 1)
    return isect_offsets.contiguous(), flatten_ids.contiguous()


def _rasterize_layered(
    wrapper, means2d, conics, colors, opacities, backgrounds, *, width, height, tile_size, isect_offsets, flatten_ids,
    groups: int, runs: int, chunk: int,
) -> tuple[Tensor, Tensor]:  # fmt: skip
    """Channel groups and depth runs as virtual cameras of one packed launch, then the runs composited front to
    back (see :func:`rasterize_projected_gsplat`)."""
    C, N, D = colors.shape
    if D % groups:
        raise ValueError(f"channel_split={groups} must divide the {D} channels composited (depth included)")
    d = D // groups
    offsets, ids = layered_intersections(isect_offsets, flatten_ids, n_gaussians=N, groups=groups, runs=runs)
    flat = C * N
    p_means = means2d.reshape(flat, 2).repeat(groups, 1)
    p_conics = conics.reshape(flat, 3).repeat(groups, 1)
    p_opacities = opacities.reshape(flat).repeat(groups)
    p_colors = colors.reshape(flat, groups, d).transpose(0, 1).reshape(groups * flat, d)
    parts, alphas = [], None
    for i in range(0, d, chunk):
        part, part_alpha = wrapper.rasterize_to_pixels(
            p_means, p_conics, p_colors[:, i : i + chunk].contiguous(), p_opacities, width, height, tile_size, offsets,
            ids, backgrounds=None, packed=True,
        )  # fmt: skip
        parts.append(part)
        alphas = part_alpha if alphas is None else alphas
    assert alphas is not None
    layers = (parts[0] if len(parts) == 1 else torch.cat(parts, -1)).unflatten(
        0, (groups, runs, C)
    )  # [g, r, C, H, W, d]
    run_alpha = alphas.unflatten(0, (groups, runs, C))[0]  # [r, C, H, W, 1]: the same in every group
    if runs > 1:
        # transmittance in front of each run: a running product (torch.cumprod's backward checks its input for zeros
        # on the host, a sync in every training step's backward)
        trans_in = [torch.ones_like(run_alpha[0])]
        for r in range(runs - 1):
            trans_in.append(trans_in[-1] * (1.0 - run_alpha[r]))
        before = torch.stack(trans_in)
        after_last = trans_in[-1] * (1.0 - run_alpha[-1])
        out = (before[None] * layers).sum(1)  # [g, C, H, W, d]
        trans = after_last
    else:
        out, trans = layers[:, 0], 1.0 - run_alpha[0]
    if backgrounds is not None:
        out = out + trans[None] * backgrounds.reshape(C, groups, d).transpose(0, 1)[:, :, None, None, :]
    render = out.permute(1, 2, 3, 0, 4).reshape(C, height, width, D)
    return render, 1.0 - trans


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
    channel_split: int = 1,
    depth_split: int = 1,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"] | None, Float[Tensor, "C H W 1"], dict[str, Any]]:
    """Features, expected depth (None unless ``depth``), alpha and gsplat's meta dict (inputs already validated).

    ``gsplat.rasterization`` itself, or, with a launch layout (``channel_split`` / ``depth_split`` > 1), the calls it
    chains (:func:`project_gsplat`, then :func:`rasterize_projected_gsplat` with the layout)."""
    _check_cuda_float32(means)
    if channel_split > 1 or depth_split > 1:
        means2d, conics, depths, radii = project_gsplat(
            means=means, quats=quats, scales=scales, viewmats=viewmats, Ks=Ks, width=width, height=height,
            near_plane=near_plane, far_plane=far_plane, eps2d=eps2d, radius_clip=radius_clip,
        )  # fmt: skip
        C, N = radii.shape
        return rasterize_projected_gsplat(
            means2d=means2d, conics=conics, depths=depths, radii=radii, opacities=opacities.expand(C, N),
            features=features, width=width, height=height, tile_size=tile_size, backgrounds=backgrounds, depth=depth,
            channel_split=channel_split, depth_split=depth_split,
        )  # fmt: skip
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
