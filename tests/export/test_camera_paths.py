"""Orbit path around the scene focus."""

from __future__ import annotations

import math

import torch

from splatent_viewer.export.camera_paths import look_at, orbit_path, scene_focus


def _ring(n=8, radius=3.0, height=1.0, target=(0.5, -0.2, 0.1)):
    t = torch.tensor(target, dtype=torch.float64)
    up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    eyes = [
        t + torch.tensor([radius * math.cos(a), radius * math.sin(a), height], dtype=torch.float64)
        for a in (2 * math.pi * i / n for i in range(n))
    ]
    return torch.stack([look_at(eye=e, target=t, up=up) for e in eyes]), t


def test_focus_is_where_cameras_look():
    cams, target = _ring()
    torch.testing.assert_close(scene_focus(cams), target)


def test_orbit_keeps_radius_height_and_looks_at_focus():
    cams, target = _ring()
    path = orbit_path(train_c2ws=cams, num_frames=12)
    assert path.shape == (12, 4, 4)
    rel = path[:, :3, 3] - target
    torch.testing.assert_close(rel[:, 2], torch.full((12,), 1.0, dtype=torch.float64))
    torch.testing.assert_close(rel[:, :2].norm(dim=1), torch.full((12,), 3.0, dtype=torch.float64))
    forward = -path[:, :3, 2]
    torch.testing.assert_close(forward, -rel / rel.norm(dim=1, keepdim=True))
    # rotation part orthonormal, and consecutive frames are evenly spaced
    torch.testing.assert_close(
        path[:, :3, :3].transpose(1, 2) @ path[:, :3, :3], torch.eye(3, dtype=torch.float64).expand(12, 3, 3)
    )
    steps = (path[1:, :3, 3] - path[:-1, :3, 3]).norm(dim=1)
    torch.testing.assert_close(steps, steps[:1].expand(11))
