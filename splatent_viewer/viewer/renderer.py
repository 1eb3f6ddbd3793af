"""Server-side rendering of one viewer frame: browser camera + settings → image, via ``render_frame``."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from jaxtyping import Float, UInt8
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import render_frame
from splatent_viewer.pca import LatentPCA
from splatent_viewer.trained import TrainedScene
from splatent_viewer.viewer.camera import intrinsics_from_fov, render_size
from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.modes import NEEDS_REFINER, frame_image, outputs_for


@dataclass(frozen=True)
class CameraState:
    """A browser camera, already in our convention."""

    c2w: Float[Tensor, "4 4"]
    """OpenGL camera-to-world."""
    fov_y: float
    """Vertical field of view, radians."""
    aspect: float
    """Canvas width / height."""
    moving: bool = True
    """True for a camera message (preview first, full frame at rest); False for a settings change (full now)."""


@dataclass
class RenderedImage:
    """A frame ready to send."""

    image: UInt8[Tensor, "H W 3"]
    """The frame, on the render device (JPEG-encoded there by the client view)."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage (render_frame's stages + ``compose``)."""
    references: list[int] = field(default_factory=list)
    """The references of this view (used by the refiner, or the nearest ones for the frustum highlight)."""


def max_references(scene: TrainedScene) -> int:
    """Largest reference count the GUI offers: 5, the bank size, and the refiner's trained k."""
    k = min(5, len(scene.references))
    if scene.refiner is not None:
        k = min(k, int(scene.refiner.config.num_references))
    return k


class SceneRenderer:
    """Renders viewer frames of one :class:`TrainedScene`; thread-safe (one frame at a time per device)."""

    def __init__(self, *, scene: TrainedScene, lock: threading.Lock | None = None) -> None:
        self.scene = scene
        self.lock = lock or threading.Lock()
        """Held while the device renders: clients render in turn, bounding memory."""
        self._pca: LatentPCA | None = None

    def pca(self) -> LatentPCA:
        """The latent-mode PCA basis, fitted once on the reference latents."""
        if self._pca is None:
            bank = self.scene.references
            self._pca = LatentPCA.fit(latents=[bank.latent(i) for i in range(len(bank))])
        return self._pca

    def render(self, *, camera: CameraState, settings: ViewSettings, preview: bool) -> RenderedImage:
        """Renders ``camera`` in ``settings.mode`` (a preview: lower resolution, no refiner)."""
        scene = self.scene
        if settings.mode is None or settings.num_references is None:  # initial values: the scene's defaults
            settings = settings.resolved(
                has_refiner=scene.refiner is not None,
                max_references=max_references(scene),
                refiner_references=scene.refiner.config.num_references if scene.refiner is not None else None,
            )
        mode, asked = settings.mode, settings.num_references
        assert mode is not None and asked is not None  # resolved above
        if mode in NEEDS_REFINER and scene.refiner is None:
            raise SplatentError(f"Mode {mode!r} needs a refiner and none is loaded; restart with --refiner PATH.")
        resolution = settings.preview_resolution if preview else settings.max_resolution
        width, height = render_size(aspect=camera.aspect, max_resolution=resolution, multiple=scene.codec.downscale)
        K = intrinsics_from_fov(fov_y=camera.fov_y, width=width, height=height)
        outputs = outputs_for(mode=mode, preview=preview)
        k = min(asked, max_references(scene))
        pca = self.pca() if mode == "latent" else None
        with self.lock:
            frame = render_frame(
                scene=scene,
                c2w=camera.c2w,
                K=K,
                width=width,
                height=height,
                outputs=outputs,
                num_references=k,
                time_stages=True,
            )
        t0 = time.perf_counter()
        image = frame_image(
            frame=frame,
            mode=mode,
            preview=preview,
            image_size=(height, width),
            split_position=settings.split_position,
            pca=pca,
        )
        timings = dict(frame.timings_ms)
        timings["compose"] = (time.perf_counter() - t0) * 1e3
        references = list(frame.references)
        if not references and not preview and k > 0:
            references = scene.references.nearest(c2w=camera.c2w, k=k)
        return RenderedImage(image=image, timings_ms=timings, references=references)

    @torch.no_grad()
    def thumbnail(self, index: int, *, max_side: int = 128) -> np.ndarray:
        """Reference ``index``'s latent, decoded, as ``uint8`` HxWx3 (longer side ``max_side``)."""
        scene = self.scene
        with self.lock:
            latent = scene.references.latent(index).to(scene.device)
            img = scene.codec.decode(latent[None]).float().clamp(0, 1)  # [1, 3, H, W]
        h, w = img.shape[-2:]
        s = min(1.0, max_side / max(h, w))
        if s < 1.0:
            img = torch.nn.functional.interpolate(
                img,
                size=(max(1, round(h * s)), max(1, round(w * s))),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )
        return img[0].permute(1, 2, 0).mul(255).add(0.5).to(torch.uint8).cpu().numpy()
