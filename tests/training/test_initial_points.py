"""Random initial Gaussians when a scene has no point cloud: in the training cameras' frustums, for ring and
forward-facing rigs alike (a box around the camera centres holds nothing a forward-facing rig sees)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from splatent_viewer.cameras import intrinsics_matrix, opengl_c2w_to_viewmat, optical_axes_focus
from splatent_viewer.data.scene import Scene
from splatent_viewer.training.points import initial_points
from splatent_viewer.training.trainer import training_cameras


def _look_at(eye, target) -> torch.Tensor:
    """OpenGL camera-to-world at ``eye`` looking at ``target`` (world z up)."""
    eye, target = torch.tensor(eye, dtype=torch.float32), torch.tensor(target, dtype=torch.float32)
    back = (eye - target) / (eye - target).norm()  # camera +z points away from the target
    up = torch.tensor([0.0, 0.0, 1.0]) if abs(float(back[2])) < 0.99 else torch.tensor([0.0, 1.0, 0.0])
    right = torch.linalg.cross(up, back)
    right = right / right.norm()
    c2w = torch.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, torch.linalg.cross(back, right), back, eye
    return c2w


def _scene(c2ws: list[torch.Tensor], train: list[int], size=(40, 30)) -> Scene:
    n = len(c2ws)
    f = torch.full((n,), 35.0)
    Ks = intrinsics_matrix(fx=f, fy=f, cx=torch.full((n,), size[0] / 2), cy=torch.full((n,), size[1] / 2))
    held = [i for i in range(n) if i not in train]
    return Scene(
        root=Path("synthetic"),
        image_paths=[Path(f"{i}.png") for i in range(n)],
        camera_to_worlds=torch.stack(c2ws),
        Ks=Ks,
        widths=torch.full((n,), size[0]),
        heights=torch.full((n,), size[1]),
        split_indices={"train": torch.tensor(train), "val": torch.tensor(held), "test": torch.tensor(held)},
    )


def _seen_by(points: torch.Tensor, scene: Scene, views: list[int]) -> torch.Tensor:
    """Per point: in front of (depth > 0.05) and inside the image of at least one of ``views``."""
    seen = torch.zeros(len(points), dtype=torch.bool)
    homo = torch.cat([points, torch.ones(len(points), 1)], 1)
    for i in views:
        cam = (opengl_c2w_to_viewmat(scene.camera_to_worlds[i]) @ homo.T).T[:, :3]  # OpenCV: +z forward
        uv = (scene.Ks[i] @ cam.T).T
        u, v = uv[:, 0] / uv[:, 2], uv[:, 1] / uv[:, 2]
        seen |= (cam[:, 2] > 0.05) & (u >= 0) & (u <= scene.widths[i]) & (v >= 0) & (v <= scene.heights[i])
    return seen


def _points(scene: Scene, n=3000) -> torch.Tensor:
    points, colors = initial_points(
        points=scene.load_points(),
        cameras=training_cameras(scene, scene.split_indices["train"].tolist()),
        num_random=n,
        generator=torch.Generator().manual_seed(0),
    )
    assert colors is None and points.shape == (n, 3)
    return points


def test_ring_capture_points_surround_the_subject_the_cameras_look_at():
    ring = [
        _look_at((2 * torch.cos(torch.tensor(a)).item(), 2 * torch.sin(torch.tensor(a)).item(), 0.5), (0, 0, 0))
        for a in torch.linspace(0, 6.0, 12).tolist()
    ]
    focus = optical_axes_focus(torch.stack(ring))
    assert focus is not None
    torch.testing.assert_close(focus[0], torch.zeros(3), atol=1e-4, rtol=0)
    assert focus[1] == pytest.approx((2**2 + 0.5**2) ** 0.5, rel=1e-4)
    scene = _scene(ring, train=list(range(11)))
    points = _points(scene)
    assert bool(_seen_by(points, scene, list(range(11))).all())
    assert float(points.norm(dim=1).median()) < 1.5  # around the subject, not on the camera ring (radius 2.06)


@pytest.mark.parametrize("toe_in", [True, False])
def test_forward_facing_points_lie_in_front_of_the_camera_plane(toe_in):
    # A 3x3 LLFF-like grid on the plane y = 0 looking along +y: converging slightly on (0, 10, 0), or exactly parallel.
    grid = [(x, 0.0, z) for x in (-0.5, 0.0, 0.5) for z in (-0.5, 0.0, 0.5)]
    rig = [_look_at(e, (0.0, 10.0, 0.0) if toe_in else (e[0], 10.0, e[2])) for e in grid]
    focus = optical_axes_focus(torch.stack(rig))
    if toe_in:
        assert focus is not None and focus[1] == pytest.approx(10.0, rel=0.01)
    else:
        assert focus is None  # parallel axes: the spread sets the depth instead
    scene = _scene(rig, train=list(range(9)))
    points = _points(scene)
    assert bool(_seen_by(points, scene, list(range(9))).all())
    assert float(points[:, 1].min()) > 0.1  # in front of the cameras' plane: a box around the centres has y = 0


def test_only_the_training_cameras_place_points():
    # Train on a ring's front half; the held-out camera looks the other way, away from everything.
    cams = [
        _look_at((2.0, 0.0, 0.3), (0, 0, 0)),
        _look_at((0.0, 2.0, 0.3), (0, 0, 0)),
        _look_at((1.4, 1.4, 0.3), (0, 0, 0)),
        _look_at((0.0, 0.0, 5.0), (0.0, 0.0, 10.0)),
    ]
    scene = _scene(cams, train=[0, 1, 2])
    points = _points(scene)
    assert bool(_seen_by(points, scene, [0, 1, 2]).all())
    assert not bool(_seen_by(points, scene, [3]).any())
