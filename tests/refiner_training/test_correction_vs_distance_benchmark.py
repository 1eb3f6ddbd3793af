"""benchmarks/correction_vs_distance.py: a held-out camera's distance to the training cameras, in their own spacing."""

from __future__ import annotations

import math

import torch


def _camera(x: float, yaw_deg: float = 0.0) -> torch.Tensor:
    c2w = torch.eye(4)
    a = math.radians(yaw_deg)
    c2w[:3, :3] = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    c2w[0, 3] = x
    return c2w


def test_distance_is_in_training_spacings_and_the_angle_is_between_viewing_directions(load_benchmark) -> None:
    load_benchmark("enhancement")  # the script imports the protocol's held-out views from it
    bench = load_benchmark("correction_vs_distance")
    # training cameras 2 apart on a line, all looking down -z; held-out: 1 from one of them, turned by 30 degrees
    c2ws = torch.stack([_camera(0), _camera(2), _camera(4), _camera(6), _camera(5, yaw_deg=30)])
    distance, angle = bench.nearest_training_camera(c2ws, [0, 1, 2, 3], 4)
    assert math.isclose(distance, 0.5, rel_tol=1e-6) and math.isclose(angle, 30.0, rel_tol=1e-4)
    assert bench.nearest_training_camera(c2ws, [0, 1, 2, 3], 1) == (0.0, 0.0)  # a training view itself
