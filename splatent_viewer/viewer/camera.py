"""Browser camera (viser) ↔ our camera (OpenGL camera-to-world + pinhole K).

viser reports a camera as ``wxyz``/``position`` of an OpenCV camera (x right, y down, looking
down +z) in world coordinates. Our scenes use nerfstudio's OpenGL camera-to-world (x right, y up,
looking down -z): the same camera frame rotated 180° about its x axis, i.e. the rotation's y and
z columns negated. The world frame is the scene's own (no rescaling, unlike nerfstudio's viewer).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import viser.transforms as vtf
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.errors import SplatentError

# Right-multiplying by this flips the camera's y and z axes (180° about x); it is its own inverse.
_FLIP_YZ = np.diag([1.0, -1.0, -1.0])


def viser_to_opengl_c2w(*, wxyz: np.ndarray, position: np.ndarray) -> Float[Tensor, "4 4"]:
    """A viser camera (OpenCV orientation ``wxyz``, ``position``) → OpenGL camera-to-world (float32)."""
    rot_cv = vtf.SO3(np.asarray(wxyz, dtype=np.float64)).as_matrix()
    c2w = np.eye(4)
    c2w[:3, :3] = rot_cv @ _FLIP_YZ
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return torch.from_numpy(c2w).float()


def opengl_c2w_to_viser(*, c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"]) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`viser_to_opengl_c2w`: ``(wxyz, position)`` for viser (camera pose, frustums)."""
    m = c2w.detach().double().cpu().numpy()
    rot = m[:3, :3]
    # Re-orthonormalise (training poses may carry tiny scale/shear) before turning into a quaternion.
    u, _, vt = np.linalg.svd(rot)
    rot = u @ vt
    return vtf.SO3.from_matrix(np.asarray(rot @ _FLIP_YZ, dtype=np.float64)).wxyz, m[:3, 3].copy()


def render_size(*, aspect: float, max_resolution: int, multiple: int) -> tuple[int, int]:
    """``(width, height)`` of a render whose longer side is at most ``max_resolution``, both multiples of ``multiple``.

    ``aspect`` is width / height (viser's). Sides never drop below ``multiple``.
    """
    if not (aspect > 0 and math.isfinite(aspect)):
        raise SplatentError(f"Camera aspect ratio must be positive, got {aspect}.")
    if max_resolution < multiple:
        raise SplatentError(
            f"max resolution {max_resolution} is smaller than the codec's downscale {multiple}; raise it."
        )
    if aspect >= 1.0:
        width, height = float(max_resolution), max_resolution / aspect
    else:
        width, height = max_resolution * aspect, float(max_resolution)

    def snap(v: float) -> int:
        return max(multiple, int(v) // multiple * multiple)

    return snap(width), snap(height)


def intrinsics_from_fov(*, fov_y: float, width: int, height: int) -> Float[Tensor, "3 3"]:
    """Pinhole K of a camera with vertical field of view ``fov_y`` (radians) imaged at ``width``x``height``.

    Square pixels and a centred principal point, as in viser's three.js camera.
    """
    if not 0.0 < fov_y < math.pi:
        raise SplatentError(f"Vertical field of view must be in (0, pi) radians, got {fov_y}.")
    f = 0.5 * height / math.tan(0.5 * fov_y)
    return torch.tensor([[f, 0.0, 0.5 * width], [0.0, f, 0.5 * height], [0.0, 0.0, 1.0]])


def fov_y_of(*, K: Float[Tensor, "3 3"], height: int) -> float:
    """Vertical field of view (radians) of intrinsics ``K`` for an image ``height`` pixels tall."""
    return 2.0 * math.atan(0.5 * height / float(K[1, 1]))
