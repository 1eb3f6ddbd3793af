"""Spiral and interpolated paths: smooth, valid poses that stay near / pass through the training cameras."""

from __future__ import annotations

import math

import torch

from splatent_viewer.export.camera_paths import (
    CameraPath,
    interpolate_path,
    intrinsics_for_fov,
    look_at,
    look_target,
    nearest_neighbour_order,
    round_to_multiple,
    spiral_path,
    vertical_fov,
)

UP = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
ORIGIN = torch.zeros(3, dtype=torch.float64)
EYE3 = torch.eye(3, dtype=torch.float64)


def _arc(n: int = 6) -> torch.Tensor:
    """Cameras on an uneven arc, looking at the origin."""
    angles = torch.tensor([0.0, 0.3, 0.45, 1.1, 1.3, 2.0])[:n]
    return torch.stack(
        [
            look_at(
                eye=torch.tensor([4 * math.cos(a), 4 * math.sin(a), 1.0 + 0.2 * i], dtype=torch.float64),
                target=ORIGIN,
                up=UP,
            )
            for i, a in enumerate(angles.tolist())
        ]
    )


def _rotation_ok(c2ws: torch.Tensor) -> None:
    R = c2ws[:, :3, :3]
    torch.testing.assert_close(R.transpose(1, 2) @ R, EYE3.expand_as(R), atol=1e-9, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[0], dtype=torch.float64))


def test_open_interpolation_passes_through_every_camera():
    keys = _arc()
    path, fov = interpolate_path(keyframes=keys, num_frames=400, fovs=torch.linspace(0.6, 0.9, 6, dtype=torch.float64))
    _rotation_ok(path)
    torch.testing.assert_close(path[0], keys[0])
    torch.testing.assert_close(path[-1], keys[-1])
    step = (path[1:, :3, 3] - path[:-1, :3, 3]).norm(dim=1)
    for key in keys:  # every key lies within one step of the path, position and orientation
        d = (path[:, :3, 3] - key[:3, 3]).norm(dim=1)
        i = int(d.argmin())
        assert d[i] <= step.max()
        assert (path[i, :3, :3] - key[:3, :3]).abs().max() < 0.05
    # Even speed despite uneven spacing.
    assert step.max() <= 1.2 * step.min()
    assert abs(float(fov[0]) - 0.6) < 1e-12 and abs(float(fov[-1]) - 0.9) < 1e-12 and (fov.diff() >= -1e-12).all()


def test_interpolation_is_smooth_and_does_not_overshoot():
    keys = _arc()
    path, _ = interpolate_path(keyframes=keys, num_frames=300)
    pos = path[:, :3, 3]
    accel = (pos[2:] - 2 * pos[1:-1] + pos[:-2]).norm(dim=1)
    step = (pos[1:] - pos[:-1]).norm(dim=1)
    assert accel.max() < 0.1 * step.mean()  # no kinks in position ...
    R = path[:, :3, :3]
    turn = torch.arccos((((R[1:].transpose(1, 2) @ R[:-1]).diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert turn.diff().abs().max() < 0.05 * turn.mean()  # ... nor in the turning rate at the keyframes
    # Stays within the keys' bounding box (plus a small margin): centripetal Catmull-Rom does not loop.
    lo, hi = keys[:, :3, 3].amin(0), keys[:, :3, 3].amax(0)
    span = (hi - lo).norm()
    assert (pos >= lo - 0.1 * span).all() and (pos <= hi + 0.1 * span).all()
    # Cameras keep looking roughly at the origin, as all keys do.
    forward = -path[:, :3, 2]
    to_origin = -pos / pos.norm(dim=1, keepdim=True)
    assert ((forward * to_origin).sum(1) > math.cos(math.radians(5))).all()


def test_closed_interpolation_wraps_around_and_hits_keys_on_even_spacing():
    n = 8
    keys = torch.stack(
        [
            look_at(
                eye=torch.tensor([4 * math.cos(a), 4 * math.sin(a), 1.0], dtype=torch.float64), target=ORIGIN, up=UP
            )
            for a in (2 * math.pi * i / n for i in range(n))
        ]
    )
    path, _ = interpolate_path(keyframes=keys, num_frames=4 * n, closed=True)
    _rotation_ok(path)
    torch.testing.assert_close(path[::4], keys)  # evenly spaced keys: every 4th frame is a key
    # The closing segment is as long as the others (no jump back to the start).
    step = (path.roll(-1, 0)[:, :3, 3] - path[:, :3, 3]).norm(dim=1)
    torch.testing.assert_close(step, step[:1].expand_as(step), rtol=0.05, atol=0)


def test_spiral_stays_near_its_camera_and_looks_at_the_target():
    centre = look_at(eye=torch.tensor([0.0, -4.0, 0.5], dtype=torch.float64), target=ORIGIN, up=UP)
    target = look_target(c2w=centre, focus=ORIGIN, min_distance=0.5)
    assert (target - ORIGIN).norm() < 0.2  # on the camera's axis, at the depth of the focus
    path = spiral_path(center_c2w=centre, focus=target, num_frames=60, radius=0.3, rotations=2)
    _rotation_ok(path)
    d = (path[:, :3, 3] - centre[:3, 3]).norm(dim=1)
    assert 0.25 < d.max() <= 0.3 * math.sqrt(2) + 1e-9  # it moves, within the spiral's reach
    forward = -path[:, :3, 2]
    to_target = target - path[:, :3, 3]
    to_target = to_target / to_target.norm(dim=1, keepdim=True)
    torch.testing.assert_close(forward, to_target)
    # Two rotations: the in-plane angle around the centre camera wraps twice.
    rel = path[:, :3, 3] - centre[:3, 3]
    ang = torch.atan2(rel @ centre[:3, 1], rel @ centre[:3, 0])
    assert int((ang.diff() < -math.pi).sum()) == 2


def test_look_target_stays_in_front_for_parallel_cameras():
    cam = look_at(
        eye=torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64),
        target=torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64),
        up=UP,
    )
    behind = torch.tensor([0.0, -10.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(
        look_target(c2w=cam, focus=behind, min_distance=2.0), torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64)
    )


def test_nearest_neighbour_order_follows_the_chain():
    keys = _arc()
    shuffled = keys[[0, 3, 1, 5, 2, 4]]
    order = nearest_neighbour_order(shuffled)
    assert [([0, 3, 1, 5, 2, 4])[i] for i in order] == [0, 1, 2, 3, 4, 5]


def test_rounding_keeps_focal_and_centres_and_resizing_keeps_the_fov():
    K = intrinsics_for_fov(fov=math.radians(60), width=100, height=60)
    assert abs(vertical_fov(K=K[0], height=60) - math.radians(60)) < 1e-12
    path = CameraPath(c2ws=_arc(2), Ks=K.expand(2, 3, 3).clone(), width=100, height=60)
    rounded, note = round_to_multiple(path, multiple=8)
    assert (rounded.width, rounded.height) == (96, 64) and "100x60" in note
    torch.testing.assert_close(rounded.Ks[:, :2, :2], path.Ks[:, :2, :2])  # no stretching
    assert float(rounded.Ks[0, 0, 2]) == 48.0 and float(rounded.Ks[0, 1, 2]) == 32.0  # still centred
    same, none = round_to_multiple(rounded, multiple=8)
    assert same is rounded and none is None
    big = path.resized(width=320, height=120)
    assert abs(vertical_fov(K=big.Ks[0], height=120) - math.radians(60)) < 1e-12
    assert float(big.Ks[0, 0, 0]) == float(big.Ks[0, 1, 1]) and float(big.Ks[0, 0, 2]) == 160.0
