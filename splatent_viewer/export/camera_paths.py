"""Camera trajectories for flythroughs (OpenGL camera-to-world, like nerfstudio)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from jaxtyping import Float, Int
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.references import camera_scene_scale


def look_at(*, eye: Float[Tensor, "3"], target: Float[Tensor, "3"], up: Float[Tensor, "3"]) -> Float[Tensor, "4 4"]:
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


# ---------------------------------------------------------------------------------------------
# Camera paths with intrinsics, and the spiral / interpolated trajectories.


@dataclass
class CameraPath:
    """Cameras of a flythrough: one pose and pinhole intrinsics per frame, one image size."""

    c2ws: Float[Tensor, "F 4 4"]
    """OpenGL camera-to-world (x right, y up, looking down -z) in the scene's world."""
    Ks: Float[Tensor, "F 3 3"]
    """Pixel intrinsics at ``width`` x ``height``."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: float | None = None
    """Frame rate the path was made for (nerfstudio JSON: frames / seconds); None = the export's choice."""

    def __len__(self) -> int:
        return int(self.c2ws.shape[0])

    def resized(self, *, width: int, height: int) -> CameraPath:
        """The same cameras at another size: the vertical field of view and square pixels are kept (focal
        lengths scale with the height), the principal point scales with each axis."""
        Ks = self.Ks.clone()
        Ks[:, :2, :2] *= height / self.height
        Ks[:, 0, 2] *= width / self.width
        Ks[:, 1, 2] *= height / self.height
        return replace(self, Ks=Ks, width=width, height=height)


def round_to_multiple(path: CameraPath, *, multiple: int) -> tuple[CameraPath, str | None]:
    """Rounds the frame size to the nearest multiple of ``multiple`` (at least one).

    The focal lengths stay as they are and the principal point moves by half the added (or removed)
    pixels, so the view widens or narrows by those few pixels without any stretching. Returns the
    path and a one-line note when the size changed (None otherwise).
    """
    w = max(multiple, int(round(path.width / multiple)) * multiple)
    h = max(multiple, int(round(path.height / multiple)) * multiple)
    if (w, h) == (path.width, path.height):
        return path, None
    note = (
        f"frame size {path.width}x{path.height} rounded to {w}x{h} "
        f"(a multiple of the codec's downscale {multiple}): the view gains or loses those pixels at its edges, unstretched"
    )
    Ks = path.Ks.clone()
    Ks[:, 0, 2] += (w - path.width) / 2
    Ks[:, 1, 2] += (h - path.height) / 2
    return replace(path, Ks=Ks, width=w, height=h), note


def vertical_fov(*, K: Float[Tensor, "3 3"], height: int) -> float:
    """Vertical field of view (radians) of a pinhole camera ``height`` pixels tall."""
    return 2.0 * math.atan(0.5 * height / float(K[1, 1]))


def intrinsics_for_fov(
    *, fov: Float[Tensor, " F"] | Sequence[float] | float, width: int, height: int
) -> Float[Tensor, "F 3 3"]:
    """Centred pinhole intrinsics with square pixels and vertical field of view ``fov`` (radians)."""
    fov = torch.as_tensor(fov, dtype=torch.float64).reshape(-1)
    focal = 0.5 * height / torch.tan(0.5 * fov)
    K = torch.zeros(fov.shape[0], 3, 3, dtype=torch.float64)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = focal, focal, width / 2.0, height / 2.0, 1.0
    return K


def _rotmat_to_quat(R: Float[Tensor, "N 3 3"]) -> Float[Tensor, "N 4"]:
    """Unit quaternions (w, x, y, z) of rotation matrices (Shepperd's method, float64)."""
    R = R.double()
    m00, m11, m22 = R[:, 0, 0], R[:, 1, 1], R[:, 2, 2]
    cands = torch.stack(
        [
            torch.stack(
                [1 + m00 + m11 + m22, R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]], -1
            ),
            torch.stack(
                [R[:, 2, 1] - R[:, 1, 2], 1 + m00 - m11 - m22, R[:, 0, 1] + R[:, 1, 0], R[:, 0, 2] + R[:, 2, 0]], -1
            ),
            torch.stack(
                [R[:, 0, 2] - R[:, 2, 0], R[:, 0, 1] + R[:, 1, 0], 1 - m00 + m11 - m22, R[:, 1, 2] + R[:, 2, 1]], -1
            ),
            torch.stack(
                [R[:, 1, 0] - R[:, 0, 1], R[:, 0, 2] + R[:, 2, 0], R[:, 1, 2] + R[:, 2, 1], 1 - m00 - m11 + m22], -1
            ),
        ],
        dim=1,
    )  # [N, 4 candidates, 4]; the one with the largest diagonal term is well conditioned
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1).argmax(
        -1
    )
    q = cands[torch.arange(R.shape[0]), best]
    return q / q.norm(dim=-1, keepdim=True)


def _quat_to_rotmat(q: Float[Tensor, "N 4"]) -> Float[Tensor, "N 3 3"]:
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        dim=-2,
    )


def _extend(points: Float[Tensor, "N D"], *, closed: bool) -> Float[Tensor, "M D"]:
    """Control points with one neighbour added at each end: the wrap-around for closed curves
    (``[p_{n-1}, p_0 .. p_{n-1}, p_0, p_1]``), a reflection for open ones (so they end exactly at the ends)."""
    if closed:
        return torch.cat([points[-1:], points, points[:2]])
    return torch.cat([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])


def _align_signs(quats: Float[Tensor, "M 4"]) -> Float[Tensor, "M 4"]:
    """q and -q are the same rotation: flip each quaternion to the hemisphere of its predecessor."""
    out = quats.clone()
    for i in range(1, out.shape[0]):
        if (out[i] * out[i - 1]).sum() < 0:
            out[i] = -out[i]
    return out


def _catmull_rom(
    ext: Float[Tensor, "M D"], *, knots: Float[Tensor, " M"], seg: Int[Tensor, " F"], t: Float[Tensor, " F"]
) -> Float[Tensor, "F D"]:
    """Catmull-Rom spline through the control points ``ext[1:-1]`` (see :func:`_extend`) with the
    increasing knot values ``knots``, at parameter ``t`` in [0, 1] of segment ``seg`` (from ``ext[seg + 1]``
    to ``ext[seg + 2]``). C1 in the knot parameter across segments. Barry-Goldman's pyramidal form."""
    p0, p1, p2, p3 = ext[seg], ext[seg + 1], ext[seg + 2], ext[seg + 3]
    t0, t1, t2, t3 = (knots[seg + i][:, None] for i in range(4))
    u = t1 + (t2 - t1) * t[:, None]
    a1 = (t1 - u) / (t1 - t0) * p0 + (u - t0) / (t1 - t0) * p1
    a2 = (t2 - u) / (t2 - t1) * p1 + (u - t1) / (t2 - t1) * p2
    a3 = (t3 - u) / (t3 - t2) * p2 + (u - t2) / (t3 - t2) * p3
    b1 = (t2 - u) / (t2 - t0) * a1 + (u - t0) / (t2 - t0) * a2
    b2 = (t3 - u) / (t3 - t1) * a2 + (u - t1) / (t3 - t1) * a3
    return (t2 - u) / (t2 - t1) * b1 + (u - t1) / (t2 - t1) * b2


def _pose_steps(
    pos: Float[Tensor, "M 3"], quats: Float[Tensor, "M 4"], *, scale: float, angle_weight: float
) -> Float[Tensor, " M-1"]:
    """Distances between consecutive poses: centre distance / scale + angle_weight x rotation angle."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    angle = 2 * torch.arccos((q[1:] * q[:-1]).sum(-1).abs().clamp(max=1.0))
    return (pos[1:] - pos[:-1]).norm(dim=-1) / scale + angle_weight * angle


def nearest_neighbour_order(c2ws: Float[Tensor, "N 4 4"]) -> list[int]:
    """A greedy chain through the cameras by centre distance, starting at camera 0."""
    centres = c2ws[:, :3, 3].double()
    order, left = [0], set(range(1, c2ws.shape[0]))
    while left:
        rest = sorted(left)
        d = (centres[rest] - centres[order[-1]]).norm(dim=-1)
        order.append(rest[int(d.argmin())])
        left.remove(order[-1])
    return order


def interpolate_path(
    *,
    keyframes: Float[Tensor, "N 4 4"],
    num_frames: int,
    fovs: Float[Tensor, " N"] | None = None,
    closed: bool = False,
    angle_weight: float = 0.5,
) -> tuple[Float[Tensor, "F 4 4"], Float[Tensor, " F"] | None]:
    """A smooth path through ``keyframes`` (in the given order): a centripetal Catmull-Rom spline on the
    camera centres and on sign-aligned quaternions (one knot sequence for both, so position and rotation
    are C1 in the same parameter), vertical fields of view ``fovs`` linear per segment.

    Pose distance = centre distance in scene scales + ``angle_weight`` x rotation angle (the
    reference-selection metric). Frames are spaced evenly in it along the spline (arc-length
    parametrisation), so the camera moves at an even speed. An open path starts at the first keyframe and ends at the last;
    a ``closed`` one returns to the first after the last (the last frame stops one step short of it).
    Returns the poses and the per-frame fields of view (None when ``fovs`` is None).
    """
    n = keyframes.shape[0]
    if n < 2:
        raise SplatentError(f"An interpolated path needs at least 2 cameras, got {n}.")
    if num_frames < 2:
        raise SplatentError(f"An interpolated path needs at least 2 frames, got {num_frames}.")
    c2ws = keyframes.double()
    pos_ext = _extend(c2ws[:, :3, 3], closed=closed)
    quats = _rotmat_to_quat(c2ws[:, :3, :3])
    # Align signs along the sequence actually traversed (wrap-around included) before extrapolating ends.
    quat_ext = _align_signs(_extend(quats, closed=True)) if closed else _extend(_align_signs(quats), closed=False)
    num_seg = n if closed else n - 1
    scale = camera_scene_scale(c2ws)
    # Centripetal knots (square root of the pose distance), shared by centres and rotations so both are
    # C1 in the same parameter: no overshoot or cusps on uneven spacing, no kinks at the keyframes.
    steps = _pose_steps(pos_ext, quat_ext, scale=scale, angle_weight=angle_weight).clamp_min(1e-12).sqrt()
    knots = torch.cat([torch.zeros(1, dtype=torch.float64), steps.cumsum(0)])

    def evaluate(u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Spline at global parameter u in [0, num_seg]: centres, quaternions, segment, local t."""
        seg = u.floor().long().clamp(0, num_seg - 1)
        t = (u - seg).clamp(0, 1)
        return (
            _catmull_rom(pos_ext, knots=knots, seg=seg, t=t),
            _catmull_rom(quat_ext, knots=knots, seg=seg, t=t),
            seg,
            t,
        )

    # Arc-length parametrisation (the same pose distance) from a dense sampling: an even speed.
    dense = torch.linspace(0, num_seg, 256 * num_seg + 1, dtype=torch.float64)
    p, q, _, _ = evaluate(dense)
    length = torch.cat(
        [torch.zeros(1, dtype=torch.float64), _pose_steps(p, q, scale=scale, angle_weight=angle_weight).cumsum(0)]
    )
    if closed:
        s = torch.arange(num_frames, dtype=torch.float64) / num_frames * length[-1]
    else:
        s = torch.linspace(0, 1, num_frames, dtype=torch.float64) * length[-1]
    j = (torch.searchsorted(length, s, right=True) - 1).clamp(0, dense.shape[0] - 2)
    frac = ((s - length[j]) / (length[j + 1] - length[j]).clamp_min(1e-15)).clamp(0, 1)
    pos, q, seg, t = evaluate(dense[j] + frac * (dense[j + 1] - dense[j]))
    out = torch.eye(4, dtype=torch.float64).repeat(num_frames, 1, 1)
    out[:, :3, :3] = _quat_to_rotmat(q)
    out[:, :3, 3] = pos
    fov_out = None
    if fovs is not None:
        f = fovs.double()
        fov_out = f[seg] * (1 - t) + f[(seg + 1) % n] * t
    return out.to(keyframes.dtype), fov_out


def spiral_path(
    *,
    center_c2w: Float[Tensor, "4 4"],
    focus: Float[Tensor, "3"],
    num_frames: int,
    radius: float,
    depth_radius: float | None = None,
    rotations: float = 2.0,
    zrate: float = 0.5,
) -> Float[Tensor, "F 4 4"]:
    """A spiral around one camera, always looking at ``focus`` (like nerfstudio's / LLFF's spiral).

    The camera centre circles ``radius`` around ``center_c2w``'s centre in its image plane
    (``rotations`` turns) while moving ``depth_radius`` (default ``radius``) forward and back along its
    viewing axis at ``zrate`` times the angular rate; "up" is the centre camera's up axis.
    """
    c = center_c2w.double()
    right, up, back, eye = c[:3, 0], c[:3, 1], c[:3, 2], c[:3, 3]
    target = focus.double()
    if depth_radius is None:
        depth_radius = radius
    frames = []
    for f in range(num_frames):
        a = 2 * math.pi * rotations * f / num_frames
        pos = eye + radius * (math.cos(a) * right + math.sin(a) * up) - depth_radius * math.sin(a * zrate) * back
        frames.append(look_at(eye=pos, target=target, up=up))
    return torch.stack(frames).to(center_c2w.dtype)


def look_target(*, c2w: Float[Tensor, "4 4"], focus: Float[Tensor, "3"], min_distance: float) -> Float[Tensor, "3"]:
    """A point on ``c2w``'s viewing axis at the depth of ``focus`` (at least ``min_distance`` ahead).

    Used as the spiral's look-at point: for forward-facing captures, where the cameras' axes barely
    converge and ``scene_focus`` is ill-defined, it stays in front of the camera.
    """
    c = c2w.double()
    forward = -c[:3, 2] / c[:3, 2].norm()
    depth = max(float((focus.double() - c[:3, 3]) @ forward), min_distance)
    return (c[:3, 3] + depth * forward).to(c2w.dtype)
