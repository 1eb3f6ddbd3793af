"""Lens undistortion exactly as nerfstudio's full-image datamanager does it.

nerfstudio 1.1.5's ``FullImageDatamanager`` (what ``ns-train splatfacto`` and ``ns-train splatent`` use)
undistorts every cached image with ``_undistort_image`` from
``nerfstudio/data/datamanagers/full_images_datamanager.py``: OpenCV ``undistort`` with
``getOptimalNewCameraMatrix(alpha=0)`` and a crop to its valid region for perspective cameras
(OPENCV: k1, k2, k3, p1, p2), ``cv2.fisheye`` with ``balance=0`` for OPENCV_FISHEYE (k1..k4). The
image size and intrinsics change. Here we call that very function:

- :func:`undistorted_camera` runs it once per distinct camera on an empty image to learn the new
  intrinsics and size at load time (cached), so a scene knows its views' cameras before decoding;
- :func:`undistort_image` runs it on the pixels.

A camera whose distortion parameters are all zero is left alone, as nerfstudio does. The datamanager
module imports slowly (~1.5 s), so it is imported on the first distorted camera only.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras, CameraType
from torch import Tensor

UNDISTORTED_CAMERA_TYPES = (CameraType.PERSPECTIVE, CameraType.FISHEYE)
"""Camera types whose images nerfstudio undistorts to pinhole images that splatent can train on."""


def is_distorted(camera: Cameras) -> bool:
    """Whether nerfstudio's datamanager would undistort images of this (single) camera."""
    params = camera.distortion_params
    return params is not None and bool(torch.any(params != 0))


def _single(camera: Cameras) -> Cameras:
    return camera.reshape(()) if camera.shape != () else camera


def _nerfstudio_undistort(camera: Cameras, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nerfstudio's ``_undistort_image`` with the arguments its datamanager passes (float32 K and
    distortion parameters taken from the camera)."""
    from nerfstudio.data.datamanagers.full_images_datamanager import _undistort_image

    assert camera.distortion_params is not None  # only distorted cameras come here
    K = camera.get_intrinsics_matrices().numpy()
    distortion_params = camera.distortion_params.numpy()
    K, image, _ = _undistort_image(camera, distortion_params, {}, image, K)
    return np.asarray(K, dtype=np.float32), image


@lru_cache(maxsize=4096)
def _undistorted_key(key: tuple) -> tuple[tuple[float, ...], int, int]:
    camera_type, fx, fy, cx, cy, width, height, *params = key
    camera = Cameras(
        camera_to_worlds=torch.eye(4)[:3],
        fx=fx,
        fy=fy,
        cx=cx,
        cy=cy,
        width=width,
        height=height,
        distortion_params=torch.tensor(params, dtype=torch.float32),
        camera_type=camera_type,
    )
    K, image = _nerfstudio_undistort(camera, np.zeros((height, width), dtype=np.uint8))
    return tuple(float(v) for v in K.reshape(-1)), int(image.shape[1]), int(image.shape[0])


def _key(camera: Cameras) -> tuple:
    c = _single(camera)
    params = c.distortion_params.tolist() if c.distortion_params is not None else [0.0] * 6
    return (
        int(c.camera_type),
        float(c.fx),
        float(c.fy),
        float(c.cx),
        float(c.cy),
        int(c.width),
        int(c.height),
        *params,
    )


def undistorted_camera(camera: Cameras) -> tuple[Float[Tensor, "3 3"], int, int]:
    """Intrinsics ``K`` and ``(width, height)`` of a (single) camera's images after nerfstudio's
    undistortion; the camera's own when it has no distortion. Computed once per distinct camera."""
    c = _single(camera)
    if not is_distorted(c):
        return c.get_intrinsics_matrices().float(), int(c.width), int(c.height)
    flat, width, height = _undistorted_key(_key(c))
    return torch.tensor(flat, dtype=torch.float32).reshape(3, 3), width, height


def undistort_image(camera: Cameras, image: np.ndarray) -> tuple[np.ndarray, Float[Tensor, "3 3"]]:
    """An image (numpy [H, W, C], uint8 or float32) of a (single) camera undistorted by nerfstudio's
    ``_undistort_image``, and its new intrinsics; unchanged when the camera has no distortion."""
    c = _single(camera)
    if not is_distorted(c):
        return image, c.get_intrinsics_matrices().float()
    K, out = _nerfstudio_undistort(c, image)
    return out, torch.from_numpy(K)


__all__ = ["UNDISTORTED_CAMERA_TYPES", "is_distorted", "undistort_image", "undistorted_camera"]
