"""Browser (viser, OpenCV) camera ↔ OpenGL camera-to-world, intrinsics from the vertical fov, render sizes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import viser.transforms as vtf

from splatent_viewer.cameras import opengl_c2w_to_viewmat
from splatent_viewer.errors import SplatentError
from splatent_viewer.splats.render import render_splats
from splatent_viewer.viewer.camera import (
    fov_y_of,
    intrinsics_from_fov,
    opengl_c2w_to_viser,
    render_size,
    viser_to_opengl_c2w,
)


def _look_at_wxyz(*, position: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """OpenCV orientation (x right, y down, z forward) of a camera at ``position`` looking at ``target``."""
    z = target - position
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)  # right = forward × up for a y-down camera
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return vtf.SO3.from_matrix(np.stack([x, y, z], axis=1)).wxyz


def test_identity_viser_camera_is_opengl_rotated_about_x() -> None:
    c2w = viser_to_opengl_c2w(wxyz=np.array([1.0, 0, 0, 0]), position=np.array([1.0, 2.0, 3.0]))
    # viser's identity camera looks down +z with y down; the OpenGL camera looks down its -z.
    assert torch.allclose(c2w[:3, :3], torch.diag(torch.tensor([1.0, -1.0, -1.0])))
    assert torch.allclose(c2w[:3, 3], torch.tensor([1.0, 2.0, 3.0]))
    assert torch.allclose(c2w[3], torch.tensor([0.0, 0, 0, 1]))


def test_round_trip_of_a_known_pose() -> None:
    rot = vtf.SO3.from_rpy_radians(0.3, -1.1, 2.0).as_matrix()
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.from_numpy(rot).float()
    c2w[:3, 3] = torch.tensor([0.5, -2.0, 4.0])
    wxyz, position = opengl_c2w_to_viser(c2w=c2w)
    assert np.isclose(np.linalg.norm(wxyz), 1.0)
    back = viser_to_opengl_c2w(wxyz=wxyz, position=position)
    assert torch.allclose(back, c2w, atol=1e-6)
    # and the other way round: viser pose → OpenGL → viser (quaternion up to sign)
    wxyz2, position2 = opengl_c2w_to_viser(c2w=viser_to_opengl_c2w(wxyz=wxyz, position=position))
    assert np.allclose(wxyz2 * np.sign(wxyz2[0]), wxyz * np.sign(wxyz[0]), atol=1e-6)
    assert np.allclose(position2, position)


def test_camera_looking_at_a_point_renders_it_at_the_centre_with_up_above() -> None:
    """A viser camera pointed at a Gaussian sees it in the image centre; a Gaussian above it (world up) in the
    upper half, one to its right in the right half, through our conversion and the real rasterizer."""
    position, target, up = np.array([3.0, -2.0, 1.5]), np.array([0.2, 0.4, -0.3]), np.array([0.0, 0.0, 1.0])
    wxyz = _look_at_wxyz(position=position, target=target, up=up)
    c2w = viser_to_opengl_c2w(wxyz=wxyz, position=position)
    width, height = 48, 32
    K = intrinsics_from_fov(fov_y=math.radians(50), width=width, height=height)
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    points = {"centre": target, "up": target + 0.4 * up, "right": target + 0.4 * right}
    found = {}
    for name, p in points.items():
        params = {
            "means": torch.from_numpy(np.asarray(p, dtype=np.float32))[None],
            "scales": torch.full((1, 3), math.log(0.06)),
            "quats": torch.tensor([[1.0, 0, 0, 0]]),
            "opacities": torch.tensor([[5.0]]),
            "latents": torch.ones(1, 1),
        }
        out = render_splats(
            params=params,
            viewmats=opengl_c2w_to_viewmat(c2w)[None],
            Ks=K[None],
            width=width,
            height=height,
            content="latent",
            backend="torch",
        )
        img = out.features[0, ..., 0]
        assert img.max() > 0.3, name
        row, col = divmod(int(img.argmax()), width)
        found[name] = (row, col)
    # pixel centres sit at half-integers: the centre point falls on one of the 4 middle pixels
    assert found["centre"][0] in (height // 2 - 1, height // 2) and found["centre"][1] in (width // 2 - 1, width // 2)
    assert found["up"][0] < height // 2 - 2 and abs(found["up"][1] - found["centre"][1]) <= 1
    assert found["right"][1] > width // 2 + 2 and abs(found["right"][0] - found["centre"][0]) <= 1


def test_intrinsics_from_fov_and_back() -> None:
    K = intrinsics_from_fov(fov_y=math.pi / 2, width=96, height=64)
    assert torch.allclose(K, torch.tensor([[32.0, 0, 48], [0, 32, 32], [0, 0, 1]]))
    assert math.isclose(fov_y_of(K=K, height=64), math.pi / 2, rel_tol=1e-6)
    with pytest.raises(SplatentError):
        intrinsics_from_fov(fov_y=0.0, width=8, height=8)


@pytest.mark.parametrize(
    ("aspect", "max_res", "expected"),
    [
        (4 / 3, 128, (128, 96)),
        (0.5, 128, (64, 128)),
        (1.0, 100, (96, 96)),
        (16 / 9, 512, (512, 288)),
        (50.0, 64, (64, 8)),
    ],
)
def test_render_size_is_a_multiple_of_the_downscale(aspect: float, max_res: int, expected: tuple[int, int]) -> None:
    assert render_size(aspect=aspect, max_resolution=max_res, multiple=8) == expected


def test_render_size_rejects_bad_input() -> None:
    with pytest.raises(SplatentError, match="aspect"):
        render_size(aspect=0.0, max_resolution=128, multiple=8)
    with pytest.raises(SplatentError, match="downscale"):
        render_size(aspect=1.0, max_resolution=4, multiple=8)
