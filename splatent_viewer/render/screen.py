"""One projection, several image grids: screen-space Gaussians, rescaled exactly, rasterized per grid.

:func:`~splatent_viewer.render.rasterize.rasterize` projects and composites in one call. A training step renders the
same camera twice (RGB at the image's resolution, latents at 1/8 of it); projecting once serves both:

1. :func:`project_screen`: EWA projection at the fine grid (gsplat's ``fully_fused_projection`` on CUDA, the torch
   mirror :func:`~splatent_viewer.render.projection.project_gaussians` elsewhere), with the ``eps2d`` dilation;
2. :func:`downscale_screen`: the same Gaussians on a grid ``downscale`` times coarser, derived without projecting
   again (below);
3. :func:`rasterize_screen`: tile intersection + compositing on one grid (gsplat's ``isect_tiles`` /
   ``rasterize_to_pixels``, or the torch rasterizer's tile lists and compositing); on gsplat, :func:`intersect_screen`
   computes the intersections ahead (``isect_tiles`` syncs with the host: all grids' before any compositing).

Why the coarse grid follows exactly: pixel centres sit at ``i + 0.5`` in both grids and a coarse pixel covers
``downscale`` fine pixels, so coarse pixel coordinates are fine ones divided by ``downscale`` (the intrinsics of
:func:`~splatent_viewer.cameras.scale_intrinsics`: ``fx/s``, ``cx/s``). The projection's Jacobian scales by ``1/s``,
so the undilated 2D covariance scales by ``1/s²``: ``cov' = (cov - eps2d·I) / s² + eps2d·I`` with
``cov = conic⁻¹`` (computed from the conic in closed form, see :func:`downscale_screen`); the depths are the same;
the radius and the culling tests are redone on the coarse grid. What a second projection would do differently:

- Gaussians culled on the fine grid (off-image there) stay culled on the coarse one, although the coarse grid's
  larger dilation (``eps2d`` coarse pixels = ``s·sqrt(eps2d)`` fine pixels of blur) can reach into its border
  pixels: a coarse render draws only what the fine one projected;
- the perspective Jacobian's field-of-view clamp (1.3× the image, for Gaussians far off-screen) uses the fine
  grid's size, which is the coarse size times ``s`` exactly when ``s`` divides the image (the trainers' sizes are
  multiples of the codec's downscale);
- float rounding: the coarse conic inherits the fine conic's float32 rounding (``cond(cov)`` × 2^-24 relative).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.render.gsplat_backend import (
    TileIntersections,
    intersect_gsplat,
    project_gsplat,
    rasterize_projected_gsplat,
)
from splatent_viewer.render.projection import project_gaussians
from splatent_viewer.render.rasterize import Backend, RasterOutput, resolve_backend
from splatent_viewer.render.torch_rasterizer import rasterize_projected_torch


@dataclass
class ScreenGaussians:
    """Gaussians projected to one image grid for ``C`` cameras (entries with ``radii == 0`` are culled; their other
    values are unspecified)."""

    means2d: Float[Tensor, "C N 2"]
    """Projected centres in pixels (pixel centres at +0.5). In the autograd graph."""
    conics: Float[Tensor, "C N 3"]
    """Upper triangle ``(a, b, c)`` of the inverse dilated 2D covariance."""
    depths: Float[Tensor, "C N"]
    """Camera-space z of the centres."""
    radii: Int[Tensor, "C N"]
    """Screen radius in whole pixels (int32), 0 = culled."""
    opacities: Float[Tensor, "C N"]
    """Opacities in [0, 1] per camera."""
    width: int
    height: int
    eps2d: float
    """The dilation added to the 2D covariance's diagonal (gsplat's low-pass filter)."""
    radius_clip: float
    """Gaussians with a radius <= this are culled."""
    backend: Literal["gsplat", "torch"]


def project_screen(
    *,
    means: Float[Tensor, "N 3"],
    quats: Float[Tensor, "N 4"],
    scales: Float[Tensor, "N 3"],
    opacities: Float[Tensor, " N"],
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    radius_clip: float = 0.0,
    backend: Backend = "auto",
) -> ScreenGaussians:
    """Projects Gaussians (linear ``scales``, wxyz ``quats``, post-sigmoid ``opacities``) to ``width`` x ``height``
    with OpenCV world-to-camera ``viewmats`` and pixel ``Ks``, as :func:`~splatent_viewer.render.rasterize.rasterize`
    does before compositing."""
    which = resolve_backend(backend, means.device)
    kwargs: dict[str, Any] = dict(
        means=means,
        quats=quats,
        scales=scales,
        viewmats=viewmats,
        Ks=Ks,
        width=int(width),
        height=int(height),
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        radius_clip=radius_clip,
    )
    if which == "gsplat":
        means2d, conics, depths, radii = project_gsplat(**kwargs)
    else:
        proj = project_gaussians(**kwargs)
        means2d, conics, depths, radii = proj.means2d, proj.conics, proj.depths, proj.radii
    C, N = radii.shape
    return ScreenGaussians(
        means2d=means2d,
        conics=conics,
        depths=depths,
        radii=radii,
        opacities=opacities.expand(C, N),
        width=int(width),
        height=int(height),
        eps2d=eps2d,
        radius_clip=radius_clip,
        backend=which,
    )


def downscale_screen(screen: ScreenGaussians, *, downscale: float, width: int, height: int) -> ScreenGaussians:
    """The Gaussians of ``screen`` on the grid ``downscale`` times coarser (``width`` x ``height``, the fine size
    over ``downscale``): what projecting with ``scale_intrinsics(Ks, 1 / downscale)`` gives, up to the differences
    the module docstring lists. Gradients flow back to ``screen``'s means2d and conics.

    The coarse conic in closed form, without inverting anything: with the fine conic ``Q = (a, b, c)``, ``Σ = Q⁻¹``
    and ``δ = (s² - 1)·eps2d``, the coarse dilated covariance is ``(Σ + δI) / s²``, so the coarse conic is
    ``s²·Q(I + δQ)⁻¹ = s² / D · (a + δ·det, b, c + δ·det)`` with ``det = ac - b²`` and
    ``D = 1 + δ(a + c) + δ²·det``: a handful of elementwise float32 operations whose terms are all positive for a
    positive-definite ``Q`` (no cancellation; the float64 inversion this replaces took ~20 small kernels a step).
    """
    s2 = float(downscale) ** 2
    delta = (s2 - 1.0) * screen.eps2d
    valid = screen.radii > 0
    # Culled entries hold unspecified values (gsplat leaves them uninitialised): use a harmless conic there, so that
    # nothing below (forward or backward) produces inf/NaN.
    # (scalars, not a host-built tensor: copying one to the GPU would sync every step)
    qa, qb, qc = screen.conics.unbind(-1)
    qa, qb, qc = torch.where(valid, qa, 1.0), torch.where(valid, qb, 0.0), torch.where(valid, qc, 1.0)
    q_det = (qa * qc - qb * qb).clamp_min(0.0)
    scale = s2 / (1.0 + delta * (qa + qc) + (delta * delta) * q_det)
    conics = torch.stack([(qa + delta * q_det) * scale, qb * scale, (qc + delta * q_det) * scale], dim=-1)
    means2d = torch.where(valid[..., None], screen.means2d, torch.zeros_like(screen.means2d)) / float(downscale)
    with torch.no_grad():
        # gsplat's radius rule on the coarse dilated covariance (Σ + δI) / s², from its trace and determinant:
        # tr Σ = (a + c) / det, det Σ = 1 / det, so det((Σ + δI) / s²) = D / (det·s⁴)
        inv_det = 1.0 / q_det.clamp_min(1e-30)
        half_tr = 0.5 * ((qa + qc) * inv_det + 2.0 * delta) / s2
        det_c = (1.0 + delta * (qa + qc) + (delta * delta) * q_det) * inv_det / (s2 * s2)
        v1 = half_tr + torch.sqrt(torch.clamp(half_tr * half_tr - det_c, min=0.01))
        radius = torch.ceil(3.0 * torch.sqrt(v1))
        mx, my = means2d[..., 0], means2d[..., 1]
        inside = ~((mx + radius <= 0) | (mx - radius >= width) | (my + radius <= 0) | (my - radius >= height))
        keep = valid & (q_det > 0) & (radius > screen.radius_clip) & inside
        radii = torch.where(keep, radius.clamp(max=float(2**30)), torch.zeros_like(radius)).to(torch.int32)
    return replace(screen, means2d=means2d, conics=conics, radii=radii, width=int(width), height=int(height))


def intersect_screen(*, screen: ScreenGaussians, tile_size: int = 16) -> TileIntersections | None:
    """The tile intersections of ``screen``'s Gaussians on its grid of ``tile_size`` tiles, for
    :func:`rasterize_screen`'s ``intersections``: gsplat's
    (:func:`~splatent_viewer.render.gsplat_backend.intersect_gsplat`, a host sync), None on the torch backend (its
    rasterizer builds its own tile lists)."""
    if screen.backend != "gsplat":
        return None
    return intersect_gsplat(
        means2d=screen.means2d,
        radii=screen.radii,
        depths=screen.depths,
        width=screen.width,
        height=screen.height,
        tile_size=int(tile_size),
    )


def rasterize_screen(
    *,
    screen: ScreenGaussians,
    features: Float[Tensor, "_N _D"] | Float[Tensor, "_C _N _D"],
    backgrounds: Float[Tensor, "_C _D"] | None = None,
    depth: bool = True,
    tile_size: int = 16,
    absgrad: bool = False,
    channel_split: int = 1,
    depth_split: int = 1,
    intersections: TileIntersections | None = None,
) -> RasterOutput:
    """Composites ``features`` (shared [N, D] or per camera [C, N, D]) of the projected Gaussians on ``screen``'s
    grid (+ the expected depth when ``depth``, alpha, and gsplat-style ``info`` whose ``means2d`` is
    ``screen.means2d``: give each pass its own tensor to read one pass's screen-space gradient).

    ``absgrad`` (gsplat only, for ``DefaultStrategy(absgrad=True)``) sets ``screen.means2d.absgrad`` in backward.
    ``channel_split`` / ``depth_split``: gsplat's launch layout on a grid of few tiles (channel groups and depth runs
    of each tile list as their own thread blocks, the same render:
    :func:`~splatent_viewer.render.gsplat_backend.rasterize_projected_gsplat`); the torch rasterizer ignores them.
    ``intersections``: :func:`intersect_screen`'s for this screen and ``tile_size`` (gsplat; computed here when None,
    ignored by the torch rasterizer).
    """
    kwargs: dict[str, Any] = dict(
        means2d=screen.means2d,
        conics=screen.conics,
        depths=screen.depths,
        radii=screen.radii,
        opacities=screen.opacities,
        features=features,
        width=screen.width,
        height=screen.height,
        tile_size=int(tile_size),
        backgrounds=backgrounds,
        depth=depth,
    )
    if screen.backend == "gsplat":
        feats, expected_depth, alpha, info = rasterize_projected_gsplat(
            **kwargs,
            absgrad=absgrad,
            channel_split=channel_split,
            depth_split=depth_split,
            intersections=intersections,
        )
    else:
        if absgrad:
            raise ValueError("absgrad needs the gsplat backend (the torch rasterizer computes no absgrad)")
        feats, expected_depth, alpha, info = rasterize_projected_torch(**kwargs)
    info["backend"] = screen.backend
    return RasterOutput(features=feats, depth=expected_depth, alpha=alpha, info=info)


__all__ = ["ScreenGaussians", "downscale_screen", "intersect_screen", "project_screen", "rasterize_screen"]
