"""Camera conventions.

nerfstudio stores camera-to-world matrices in the OpenGL convention (x right, y up, camera
looking down -z). gsplat and our torch rasterizer take world-to-camera ``viewmats`` in the
OpenCV convention (x right, y down, looking down +z) and pinhole intrinsics ``Ks``.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def _as_4x4(c2w: Float[Tensor, "*batch 3 4"] | Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    if c2w.shape[-2:] == (4, 4):
        return c2w
    bottom = torch.zeros(*c2w.shape[:-2], 1, 4, dtype=c2w.dtype, device=c2w.device)
    bottom[..., 0, 3] = 1.0
    return torch.cat([c2w, bottom], dim=-2)


def _flip_yz(m: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """``m`` with columns 1 and 2 negated (``m @ diag(1, -1, -1, 1)``): built on ``m``'s device, no host constant."""
    return torch.cat([m[..., :1], -m[..., 1:3], m[..., 3:]], dim=-1)


def _rigid_inverse(m: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Inverse of a rigid transform ``[R | t]``: ``[Rᵀ | -Rᵀt]`` (bottom row kept)."""
    R_t = m[..., :3, :3].transpose(-1, -2)
    return torch.cat([torch.cat([R_t, -(R_t @ m[..., :3, 3:4])], dim=-1), m[..., 3:, :]], dim=-2)


def opengl_c2w_to_viewmat(
    c2w: Float[Tensor, "*batch 3 4"] | Float[Tensor, "*batch 4 4"],
) -> Float[Tensor, "*batch 4 4"]:
    """nerfstudio (OpenGL) camera-to-world → OpenCV world-to-camera (gsplat ``viewmats``).

    ``c2w`` is rigid (a rotation and a translation, as nerfstudio's cameras are), so the inverse is ``[Rᵀ | -Rᵀt]``,
    as splatfacto's ``get_viewmat`` computes it: no ``torch.linalg.inv`` (which checks its result on the host, a
    device sync in every training step) and no host-side constant (copying one to the GPU syncs too)."""
    return _rigid_inverse(_flip_yz(_as_4x4(c2w)))


def viewmat_to_opengl_c2w(viewmat: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Inverse of :func:`opengl_c2w_to_viewmat` (rigid ``viewmat``)."""
    return _flip_yz(_rigid_inverse(viewmat))


def intrinsics_matrix(
    *,
    fx: Float[Tensor, "*batch"],
    fy: Float[Tensor, "*batch"],
    cx: Float[Tensor, "*batch"],
    cy: Float[Tensor, "*batch"],
) -> Float[Tensor, "*batch 3 3"]:
    """Pinhole intrinsics ``K`` from focal lengths and principal point (pixels)."""
    K = torch.zeros(*fx.shape, 3, 3, dtype=fx.dtype, device=fx.device)
    K[..., 0, 0], K[..., 1, 1], K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = fx, fy, cx, cy, 1.0
    return K


def scale_intrinsics(Ks: Float[Tensor, "*batch 3 3"], factor: float) -> Float[Tensor, "*batch 3 3"]:
    """Intrinsics of the same camera imaged at ``factor`` × the resolution.

    Pixel centres sit at half-integers in both images, so for a downscale by ``d``
    (``factor = 1/d``) ``cx' = cx / d`` exactly when the image size is a multiple of ``d``.
    """
    out = Ks.clone()
    out[..., :2, :] *= factor
    return out


def optical_axes_focus(c2w: Float[Tensor, "N 4 4"] | Float[Tensor, "N 3 4"]) -> tuple[Float[Tensor, "3"], float] | None:
    """The point closest (least squares) to every camera's optical axis and its median depth along the axes, or
    None when the axes do not meet in front of the cameras (parallel, diverging, or a single camera).

    Ring and hemisphere captures look at their subject, so the axes meet near it; forward-facing captures
    (LLFF) converge slightly, far in front. OpenGL c2w: cameras look down -z."""
    if len(c2w) < 2:
        return None
    c2w = _as_4x4(c2w).double()
    centres, axes = c2w[:, :3, 3], -c2w[:, :3, 2]
    axes = axes / axes.norm(dim=1, keepdim=True)
    proj = torch.eye(3, dtype=c2w.dtype) - axes[:, :, None] * axes[:, None, :]  # onto the plane ⊥ each axis
    A, b = proj.sum(0), (proj @ centres[:, :, None]).sum(0)[:, 0]
    eig = torch.linalg.eigvalsh(A)
    if float(eig[0]) <= 1e-6 * float(eig[-1]):
        return None
    point = torch.linalg.solve(A, b)
    depths = ((point - centres) * axes).sum(1)
    if float(depths.min()) <= 0:
        return None
    return point.float(), float(depths.median())
