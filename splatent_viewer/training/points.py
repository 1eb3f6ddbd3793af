"""Where the Gaussians start: the scene's point cloud, or random points in the training cameras' view frustums.

Shared by the core trainer and ``ns-train splatent`` (which passes nerfstudio's seed points and training cameras),
so a scene without a point cloud (e.g. the Middlebury dino) starts the same way in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.cameras import optical_axes_focus
from splatent_viewer.errors import SplatentError
from splatent_viewer.references import camera_scene_scale


@dataclass
class TrainingCameras:
    """The training views' cameras, as initialisation needs them (CPU tensors)."""

    c2w: Float[Tensor, "N 4 4"] | Float[Tensor, "N 3 4"]
    """OpenGL camera-to-world matrices."""
    Ks: Float[Tensor, "N 3 3"]
    """Pixel intrinsics."""
    widths: Int[Tensor, " N"]
    """Image widths."""
    heights: Int[Tensor, " N"]
    """Image heights."""


def frustum_points(
    *, cameras: TrainingCameras, n: int, generator: torch.Generator, depth_range: tuple[float, float] = (0.2, 2.5)
) -> Float[Tensor, "n 3"]:
    """``n`` random points seen by ``cameras``: a random camera, a random pixel, a depth log-uniform in
    ``depth_range`` × the distance at which the cameras' optical axes meet (:func:`optical_axes_focus`; 3 × the
    cameras' spread when they do not meet, e.g. a perfectly parallel rig).

    Unlike a box around the camera centres, this puts points where the subject is for forward-facing captures too
    (there the centres lie on a plane, and a box around them holds nothing the cameras see)."""
    c2w = cameras.c2w.float()
    focus = optical_axes_focus(c2w)
    depth = focus[1] if focus is not None else 3.0 * camera_scene_scale(c2w)  # (1.0 for a single camera)
    pick = torch.randint(0, len(c2w), (n,), generator=generator)
    K = cameras.Ks.float()[pick]
    w = cameras.widths[pick].float()
    h = cameras.heights[pick].float()
    u = torch.rand(n, generator=generator) * w
    v = torch.rand(n, generator=generator) * h
    lo, hi = math.log(depth_range[0] * depth), math.log(depth_range[1] * depth)
    z = torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator))
    # OpenCV camera coordinates (x right, y down, +z forward) → OpenGL (flip y, z) → world.
    x_cv = (u - K[:, 0, 2]) / K[:, 0, 0] * z
    y_cv = (v - K[:, 1, 2]) / K[:, 1, 1] * z
    cam = torch.stack([x_cv, -y_cv, -z], dim=1)
    rot, centre = c2w[pick, :3, :3], c2w[pick, :3, 3]
    return (rot @ cam[:, :, None])[:, :, 0] + centre


def initial_points(
    *,
    points: tuple[Float[Tensor, "P 3"], Float[Tensor, "P 3"] | None] | None,
    cameras: TrainingCameras | None,
    num_random: int,
    generator: torch.Generator,
) -> tuple[Float[Tensor, "P 3"], Float[Tensor, "P 3"] | None]:
    """``points`` (positions, colours in [0, 1] or None) when the scene has a point cloud, else ``num_random``
    :func:`frustum_points` of the training ``cameras`` (no colours; a scene with neither is an error)."""
    if points is not None and len(points[0]) > 0:
        return points
    if cameras is None:
        raise SplatentError("No point cloud and no training cameras: nothing to place the initial Gaussians in.")
    return frustum_points(cameras=cameras, n=num_random, generator=generator), None


__all__ = ["TrainingCameras", "frustum_points", "initial_points"]
