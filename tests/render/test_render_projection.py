"""EWA projection: covariance, Jacobian (with gsplat's 1.3x fov clamp), radius and culling."""

from __future__ import annotations

import math

import torch

from splatent_viewer.render.projection import covariance_from_quat_scale, project_gaussians, quat_to_rotmat

F64 = torch.float64


def _camera(width=64, height=48, f=50.0, cx=30.0, cy=25.0):
    viewmat = torch.eye(4, dtype=F64)
    # a rotated, translated camera so that the world -> camera transform is exercised
    angle = 0.3
    viewmat[:3, :3] = torch.tensor(
        [[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0], [-math.sin(angle), 0.0, math.cos(angle)]], dtype=F64
    )
    viewmat[:3, 3] = torch.tensor([0.1, -0.2, 0.5], dtype=F64)
    K = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=F64)
    return viewmat[None], K[None], width, height


def test_rotation_matrix_is_orthonormal_and_ignores_quaternion_norm():
    q = torch.randn(20, 4, dtype=F64)
    R = quat_to_rotmat(q)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=F64).expand(20, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(20, dtype=F64))
    torch.testing.assert_close(quat_to_rotmat(3.7 * q), R)
    # 90 degrees about z (wxyz): x -> y
    qz = torch.tensor([[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)]], dtype=F64)
    x_axis, y_axis = torch.eye(3, dtype=F64)[:2]
    torch.testing.assert_close(quat_to_rotmat(qz)[0] @ x_axis, y_axis)


def test_screen_covariance_matches_autograd_jacobian_of_the_pinhole_map():
    viewmats, Ks, W, H = _camera()
    g = torch.Generator().manual_seed(0)
    n = 30
    means = torch.randn(n, 3, generator=g, dtype=F64) * 0.3 + torch.tensor([0.0, 0.0, 3.0], dtype=F64)
    quats = torch.randn(n, 4, generator=g, dtype=F64)
    scales = torch.rand(n, 3, generator=g, dtype=F64) * 0.1 + 0.01
    proj = project_gaussians(means=means, quats=quats, scales=scales, viewmats=viewmats, Ks=Ks, width=W, height=H)

    R, t = viewmats[0, :3, :3], viewmats[0, :3, 3]
    fx, fy, cx, cy = Ks[0, 0, 0], Ks[0, 1, 1], Ks[0, 0, 2], Ks[0, 1, 2]

    def pinhole(p):
        return torch.stack([fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy])

    covars = covariance_from_quat_scale(quats, scales)
    for i in range(n):
        p_c = R @ means[i] + t
        torch.testing.assert_close(proj.means2d[0, i], pinhole(p_c))
        J = torch.autograd.functional.jacobian(pinhole, p_c) @ R  # d pixel / d world
        cov2d = J @ covars[i] @ J.T + 0.3 * torch.eye(2, dtype=F64)
        conic = torch.linalg.inv(cov2d)
        torch.testing.assert_close(proj.conics[0, i], torch.stack([conic[0, 0], conic[0, 1], conic[1, 1]]))
        # gsplat: 3 sqrt(lambda_max), the eigenvalue gap floored at 2 * sqrt(0.01)
        lo, hi = torch.linalg.eigvalsh(cov2d).tolist()
        radius = math.ceil(3 * math.sqrt((lo + hi) / 2 + max(0.1, (hi - lo) / 2)))
        assert proj.radii[0, i].item() in (0, radius)  # 0 only when the extent is off-image
        torch.testing.assert_close(proj.depths[0, i], p_c[2])


def test_jacobian_clamps_view_angle_to_1_3_times_the_fov():
    # Identity camera, centred principal point: the x/z limit is 1.3 * tan_fovx = 1.3 * 0.5 W / f.
    W, H, f = 40, 40, 20.0
    viewmats = torch.eye(4, dtype=F64)[None]
    Ks = torch.tensor([[[f, 0.0, W / 2], [0.0, f, H / 2], [0.0, 0.0, 1.0]]], dtype=F64)
    z = 2.0
    lim = 1.3 * 0.5 * W / f
    x = 1.6 * z  # x/z = 1.6 > lim = 1.3; a big Gaussian so that its extent still reaches the image
    means = torch.tensor([[x, 0.0, z]], dtype=F64)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64)
    scales = torch.tensor([[1.0, 0.3, 0.5]], dtype=F64)
    proj = project_gaussians(means=means, quats=quats, scales=scales, viewmats=viewmats, Ks=Ks, width=W, height=H)
    tx = z * lim
    J = torch.tensor([[f / z, 0.0, -f * tx / z**2], [0.0, f / z, 0.0]], dtype=F64)
    cov2d = J @ torch.diag(scales[0] ** 2) @ J.T + 0.3 * torch.eye(2, dtype=F64)
    conic = torch.linalg.inv(cov2d)
    torch.testing.assert_close(proj.conics[0, 0], torch.stack([conic[0, 0], conic[0, 1], conic[1, 1]]))
    assert proj.radii[0, 0] > 0


def test_culling_rules():
    W, H, f = 32, 32, 30.0
    viewmats = torch.eye(4, dtype=F64)[None]
    Ks = torch.tensor([[[f, 0.0, 16.0], [0.0, f, 16.0], [0.0, 0.0, 1.0]]], dtype=F64)
    means = torch.tensor(
        [
            [0.0, 0.0, 2.0],  # visible
            [0.0, 0.0, 0.005],  # in front of the near plane (0.01)
            [0.0, 0.0, -2.0],  # behind the camera
            [0.0, 0.0, 200.0],  # beyond the far plane (set to 100 below)
            [10.0, 0.0, 2.0],  # projects far right of the image, small extent
            [0.0, 0.0, 0.01],  # exactly on the near plane: kept (gsplat culls z < near)
        ],
        dtype=F64,
    )
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=F64).repeat(6, 1)
    scales = torch.full((6, 3), 0.01, dtype=F64)
    proj = project_gaussians(
        means=means, quats=quats, scales=scales, viewmats=viewmats, Ks=Ks, width=W, height=H, far_plane=100.0
    )
    assert (proj.radii[0] > 0).tolist() == [True, False, False, False, False, True]
    assert proj.radii.dtype == torch.int32
    assert torch.isfinite(proj.means2d).all() and torch.isfinite(proj.conics).all()
    # radius_clip culls small footprints (radius <= clip)
    r0 = proj.radii[0, 0].item()
    clipped = project_gaussians(
        means=means[:1], quats=quats[:1], scales=scales[:1], viewmats=viewmats, Ks=Ks, width=W, height=H, radius_clip=r0
    )
    assert clipped.radii[0, 0].item() == 0
