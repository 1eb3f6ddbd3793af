"""EWA projection of 3D Gaussians to screen space, in pure torch (autograd-differentiable).

Mirrors gsplat 1.4.0's ``fully_fused_projection`` CUDA kernel (pinhole camera,
``packed=False``, ``calc_compensations=False``) operation for operation:
covariance ``R S S^T R^T`` from a normalised wxyz quaternion and linear scales, world-to-camera
transform, perspective Jacobian with ``x/z, y/z`` clamped to 1.3x the field-of-view limits,
``eps2d`` added to the 2D covariance diagonal, culling on ``det <= 0``, ``z < near``, ``z > far``,
``radius <= radius_clip`` and off-image extents, radius ``ceil(3 sqrt(lambda_max))``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass
class Projection:
    """Screen-space Gaussians for ``C`` cameras (entries with ``radii == 0`` are culled)."""

    means2d: Float[Tensor, "C N 2"]
    """Projected centres in pixels (pixel centres sit at +0.5). In the autograd graph."""
    conics: Float[Tensor, "C N 3"]
    """Upper triangle ``(a, b, c)`` of the inverse blurred 2D covariance."""
    depths: Float[Tensor, "C N"]
    """Camera-space z of the centres."""
    radii: Int[Tensor, "C N"]
    """Screen-space radius in whole pixels (int32), 0 for culled Gaussians."""


def quat_to_rotmat(quats: Float[Tensor, "*batch 4"]) -> Float[Tensor, "*batch 3 3"]:
    """Rotation matrices from (not necessarily unit) wxyz quaternions."""
    q = quats * torch.rsqrt((quats * quats).sum(dim=-1, keepdim=True))
    w, x, y, z = q.unbind(-1)
    x2, y2, z2 = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    rows = (
        1.0 - 2.0 * (y2 + z2), 2.0 * (xy - wz), 2.0 * (xz + wy),
        2.0 * (xy + wz), 1.0 - 2.0 * (x2 + z2), 2.0 * (yz - wx),
        2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (x2 + y2),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariance_from_quat_scale(quats: Float[Tensor, "N 4"], scales: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3 3"]:
    """World-space covariance ``(R S)(R S)^T``."""
    M = quat_to_rotmat(quats) * scales[..., None, :]
    return M @ M.transpose(-1, -2)


def project_gaussians(
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
) -> Projection:
    """Project Gaussians to every camera (gsplat's pinhole ``fully_fused_projection``)."""
    R = viewmats[:, :3, :3]  # [C, 3, 3]
    t = viewmats[:, :3, 3]  # [C, 3]
    means_c = torch.einsum("cij,nj->cni", R, means) + t[:, None, :]  # [C, N, 3]
    covar = covariance_from_quat_scale(quats, scales)  # [N, 3, 3]
    covar_c = torch.einsum("cij,njk,clk->cnil", R, covar, R)  # R Σ R^T, [C, N, 3, 3]

    x, y, z = means_c.unbind(-1)
    depth_ok = (z >= near_plane) & (z <= far_plane)
    # Culled entries get a harmless z so that nothing below produces inf/NaN (or NaN gradients).
    z_safe = torch.where(depth_ok, z, torch.ones_like(z))

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [C, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx = 0.5 * width / fx
    tan_fovy = 0.5 * height / fy
    lim_x_pos = (width - cx) / fx + 0.3 * tan_fovx
    lim_x_neg = cx / fx + 0.3 * tan_fovx
    lim_y_pos = (height - cy) / fy + 0.3 * tan_fovy
    lim_y_neg = cy / fy + 0.3 * tan_fovy

    rz = 1.0 / z_safe
    rz2 = rz * rz
    # torch.clamp passes the gradient on the closed interval, as gsplat's backward does.
    tx = z_safe * torch.clamp(x * rz, min=-lim_x_neg, max=lim_x_pos)
    ty = z_safe * torch.clamp(y * rz, min=-lim_y_neg, max=lim_y_pos)

    zero = torch.zeros_like(rz)
    J = torch.stack([fx * rz, zero, -fx * tx * rz2, zero, fy * rz, -fy * ty * rz2], dim=-1).reshape(*rz.shape, 2, 3)
    cov2d = J @ covar_c @ J.transpose(-1, -2)  # [C, N, 2, 2]
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)  # [C, N, 2]

    # add_blur + inverse (gsplat utils.cuh)
    a = cov2d[..., 0, 0] + eps2d
    b = cov2d[..., 0, 1]
    c = cov2d[..., 1, 1] + eps2d
    det = a * c - b * cov2d[..., 1, 0]
    det_ok = det > 0
    inv_det = 1.0 / torch.where(det_ok, det, torch.ones_like(det))
    conics = torch.stack([c * inv_det, -b * inv_det, a * inv_det], dim=-1)

    with torch.no_grad():
        half_tr = 0.5 * (a + c)
        v1 = half_tr + torch.sqrt(torch.clamp(half_tr * half_tr - det, min=0.01))
        radius = torch.ceil(3.0 * torch.sqrt(v1))
        mx, my = means2d[..., 0], means2d[..., 1]
        inside = ~((mx + radius <= 0) | (mx - radius >= width) | (my + radius <= 0) | (my - radius >= height))
        valid = depth_ok & det_ok & (radius > radius_clip) & inside
        # CUDA's float -> int32 conversion saturates; keep that instead of overflowing.
        radius = torch.clamp(radius, max=float(2**30))
        radii = torch.where(valid, radius, torch.zeros_like(radius)).to(torch.int32)

    return Projection(means2d=means2d, conics=conics, depths=z, radii=radii)
