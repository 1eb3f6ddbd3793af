"""Camera trajectories for flythroughs (OpenGL camera-to-world, like nerfstudio)."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor


def look_at(
    *, eye: Float[Tensor, "3"], target: Float[Tensor, "3"], up: Float[Tensor, "3"]
) -> Float[Tensor, "4 4"]:
    """OpenGL camera-to-world of a camera at ``eye`` looking at ``target``."""
    back = eye - target
    back = back / back.norm()
    right = torch.linalg.cross(up, back)
    right = right / right.norm().clamp_min(1e-12)
    cam_up = torch.linalg.cross(back, right)
    c2w = torch.eye(4, dtype=eye.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, back, eye
    return c2w


def scene_focus(c2ws: Float[Tensor, "N 4 4"]) -> Float[Tensor, "3"]:
    """The point nearest (least squares) to all cameras' optical axes: where they look."""
    origins = c2ws[:, :3, 3].double()
    dirs = -c2ws[:, :3, 2].double()
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    proj = torch.eye(3, dtype=torch.float64) - dirs[:, :, None] * dirs[:, None, :]  # [N, 3, 3]
    a = proj.sum(0)
    b = (proj @ origins[:, :, None]).sum(0)
    return torch.linalg.lstsq(a, b).solution[:, 0].to(c2ws.dtype)


def mean_up(c2ws: Float[Tensor, "N 4 4"]) -> Float[Tensor, "3"]:
    """Average camera up axis (the world's up for captures taken upright)."""
    up = c2ws[:, :3, 1].mean(0)
    return up / up.norm()


def orbit_path(
    *,
    train_c2ws: Float[Tensor, "N 4 4"],
    num_frames: int,
    radius_scale: float = 1.0,
    elevation_offset: float = 0.0,
    turns: float = 1.0,
) -> Float[Tensor, "F 4 4"]:
    """Circle around the scene focus at the training cameras' mean distance and height.

    ``radius_scale`` multiplies the radius; ``elevation_offset`` raises the orbit plane by that
    many radii along the up axis; ``turns`` full revolutions over ``num_frames`` frames.
    """
    c2ws = train_c2ws.double()
    focus, up = scene_focus(c2ws), mean_up(c2ws)
    rel = c2ws[:, :3, 3] - focus
    height = (rel @ up).mean()
    planar = rel - (rel @ up)[:, None] * up
    radius = planar.norm(dim=-1).mean() * radius_scale
    e1 = planar[0] / planar[0].norm()
    e2 = torch.linalg.cross(up, e1)
    frames = []
    for f in range(num_frames):
        a = 2 * math.pi * turns * f / num_frames
        eye = focus + up * (height + elevation_offset * radius) + radius * (math.cos(a) * e1 + math.sin(a) * e2)
        frames.append(look_at(eye=eye, target=focus, up=up))
    return torch.stack(frames).to(train_c2ws.dtype)
