"""Temporal consistency of a rendered stream, with the camera's motion taken out.

The plain flicker (:class:`~splatent_viewer.export.flythrough.ExportResult` ``flicker``) is the mean
``|frame_t - frame_{t-1}|``: it counts every change, so a camera that moves makes a sharp stream "flicker" more than a
blurry one even when neither pops. The **warped flicker** compares frame ``t`` with frame ``t-1`` warped into it along
the Gaussians' own geometry: every pixel of frame ``t`` is lifted to 3D with its expected depth, projected into frame
``t-1`` and frame ``t-1``'s colour is read there (bilinear). What is left is what changes on the same surface point
from one frame to the next: view-inconsistent detail, popping references, noise (plus view-dependent colour and the
bilinear resampling's own small error, the same for every stream). As in the warping error of video temporal
consistency (Lai et al., ECCV 2018), only pixels both frames see count: solid in both (alpha), inside frame ``t-1``,
and not occluded there (the projected depth agrees with frame ``t-1``'s own). The pixels and their source positions
depend on the Gaussians and the cameras alone (:func:`reprojection`), so every stream of one export is scored on the
same pixels.

Cameras: ``c2w`` OpenGL camera-to-world, ``K`` pinhole intrinsics with pixel ``(i, j)``'s centre at ``(i + 0.5,
j + 0.5)`` (gsplat's convention), depth the camera-space z that the rasterizer's expected depth is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from splatent_viewer.cameras import opengl_c2w_to_viewmat


@dataclass(frozen=True)
class Reprojection:
    """Where each pixel of the current frame lies in the previous one, and which pixels both frames see."""

    grid: Float[Tensor, "H W 2"]
    """The previous frame's position of each current pixel, in ``grid_sample``'s normalised coordinates
    (``align_corners=False``: -1 and 1 are the image's outer edges)."""
    mask: Bool[Tensor, "H W"]
    """Pixels solid in both frames, inside the previous one and not occluded there."""

    @property
    def coverage(self) -> float:
        """Fraction of the current frame's pixels that are scored."""
        return float(self.mask.float().mean())


def reprojection(
    *,
    depth: Float[Tensor, "H W"],
    alpha: Float[Tensor, "H W"],
    c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"],
    K: Float[Tensor, "3 3"],
    prev_depth: Float[Tensor, "H0 W0"],
    prev_alpha: Float[Tensor, "H0 W0"],
    prev_c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"],
    prev_K: Float[Tensor, "3 3"],
    min_alpha: float = 0.5,
    depth_tolerance: float = 0.05,
) -> Reprojection:
    """Lifts the current frame's pixels with ``depth`` (camera z) into the world and projects them into the previous
    frame (``prev_*``). A pixel is scored when ``alpha`` and the previous frame's alpha there exceed ``min_alpha``,
    its bilinear footprint lies inside the previous frame, and its depth in the previous camera is within
    ``depth_tolerance`` (relative) of the previous frame's own depth there (else it was hidden)."""
    dev = depth.device
    H, W = depth.shape
    H0, W0 = prev_depth.shape
    z = depth.float()
    v, u = torch.meshgrid(
        torch.arange(H, device=dev, dtype=torch.float32) + 0.5,
        torch.arange(W, device=dev, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    K, prev_K = K.to(dev, torch.float32), prev_K.to(dev, torch.float32)
    # pixel -> OpenCV camera (x right, y down, z forward) -> world -> previous camera
    x = (u - K[0, 2] - K[0, 1] * (v - K[1, 2]) / K[1, 1]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    points = torch.stack([x, y, z, torch.ones_like(z)], dim=-1).reshape(-1, 4)
    cam_to_world = torch.linalg.inv(opengl_c2w_to_viewmat(c2w.to(dev, torch.float32)))
    to_prev = opengl_c2w_to_viewmat(prev_c2w.to(dev, torch.float32)) @ cam_to_world
    p = (points @ to_prev.T)[:, :3].reshape(H, W, 3)
    zp = p[..., 2]
    safe_z = zp.clamp(min=1e-6)
    up = prev_K[0, 0] * p[..., 0] / safe_z + prev_K[0, 1] * p[..., 1] / safe_z + prev_K[0, 2]
    vp = prev_K[1, 1] * p[..., 1] / safe_z + prev_K[1, 2]
    grid = torch.stack([up / W0 * 2 - 1, vp / H0 * 2 - 1], dim=-1)
    # the four bilinear taps inside the previous frame: the pixel centres span [0.5, W0 - 0.5]
    inside = (zp > 1e-6) & (up >= 0.5) & (up <= W0 - 0.5) & (vp >= 0.5) & (vp <= H0 - 0.5)
    prev = torch.stack([prev_depth.float(), prev_alpha.float()])[None].to(dev)
    sampled = F.grid_sample(prev, grid[None], mode="bilinear", padding_mode="border", align_corners=False)[0]
    seen = (sampled[0] - zp).abs() <= depth_tolerance * zp.abs()
    mask = inside & seen & (alpha.to(dev) > min_alpha) & (sampled[1] > min_alpha)
    return Reprojection(grid=grid, mask=mask)


def warp(image: Float[Tensor, "H0 W0 C"], reproj: Reprojection) -> Float[Tensor, "H W C"]:
    """The previous frame's ``image`` read at the current frame's pixels (bilinear)."""
    src = image.float().permute(2, 0, 1)[None]
    out = F.grid_sample(
        src, reproj.grid[None].to(src.device), mode="bilinear", padding_mode="border", align_corners=False
    )
    return out[0].permute(1, 2, 0)


def warped_difference(
    image: Float[Tensor, "H W C"], prev_image: Float[Tensor, "H0 W0 C"], reproj: Reprojection
) -> float | None:
    """Mean ``|image - warp(prev_image)|`` over the scored pixels and channels (None when no pixel is scored)."""
    mask = reproj.mask.to(image.device)
    if not bool(mask.any()):
        return None
    diff = (image.float() - warp(prev_image, reproj).to(image.device)).abs()
    return float(diff[mask].mean())


class FlickerMeter:
    """Running means of one stream's |frame_t - frame_{t-1}| (:meth:`value`) and of its warped form over the pixels a
    :class:`ReprojectionTracker` gives (:meth:`warped_value`)."""

    def __init__(self) -> None:
        self.prev: Tensor | None = None
        self.total, self.count = 0.0, 0
        self.warped_total, self.warped_count = 0.0, 0

    def add(self, image: Float[Tensor, "H W 3"], reproj: Reprojection | None = None) -> None:
        if self.prev is not None:
            self.total += float((image - self.prev).abs().mean())
            self.count += 1
            warped = None if reproj is None else warped_difference(image, self.prev, reproj)
            if warped is not None:
                self.warped_total += warped
                self.warped_count += 1
        self.prev = image

    def value(self) -> float:
        return self.total / self.count if self.count else 0.0

    def warped_value(self) -> float | None:
        return self.warped_total / self.warped_count if self.warped_count else None


class ReprojectionTracker:
    """The previous frame's depth, alpha and camera: each new frame's :class:`Reprojection` into it."""

    def __init__(self) -> None:
        self.prev: tuple[Tensor, Tensor, Tensor, Tensor] | None = None
        self.coverage: list[float] = []

    def next(self, *, depth: Tensor, alpha: Tensor, c2w: Tensor, K: Tensor) -> Reprojection | None:
        reproj = None
        if self.prev is not None:
            prev_depth, prev_alpha, prev_c2w, prev_K = self.prev
            reproj = reprojection(
                depth=depth, alpha=alpha, c2w=c2w, K=K,
                prev_depth=prev_depth, prev_alpha=prev_alpha, prev_c2w=prev_c2w, prev_K=prev_K,
            )  # fmt: skip
            self.coverage.append(reproj.coverage)
        self.prev = (depth, alpha, c2w, K)
        return reproj


__all__ = ["FlickerMeter", "Reprojection", "ReprojectionTracker", "reprojection", "warp", "warped_difference"]
