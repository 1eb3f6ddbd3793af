"""One browser client's render thread: latest camera in, preview while moving, full frame at rest.

The viser callbacks only :meth:`ClientSession.update_camera` / :meth:`ClientSession.refresh`; the
thread takes the newest request from a :class:`LatestSlot` (stale poses are dropped, never queued),
renders a cheap preview for a moving camera, and once no newer request came for ``rest_delay``
seconds renders the full frame in the selected mode. A render error is shown to this client and
logged; the thread keeps serving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol, runtime_checkable

from jaxtyping import UInt8
from torch import Tensor

from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.modes import NEEDS_REFINER
from splatent_viewer.viewer.renderer import CameraState, RenderedImage
from splatent_viewer.viewer.slot import LatestSlot
from splatent_viewer.viewer.stats import FrameStats

LOG = logging.getLogger(__name__)

RenderFn = Callable[..., RenderedImage]
"""``render(*, camera: CameraState, settings: ViewSettings, preview: bool) -> RenderedImage``."""


@runtime_checkable  # annotations are checked at run time in the tests
class ClientView(Protocol):
    """Where a session's output goes (the viser client; a recorder in tests)."""

    def settings(self) -> ViewSettings: ...
    def show_frame(self, *, image: UInt8[Tensor, "H W 3"], jpeg_quality: int) -> None: ...
    def show_stats(self, text: str) -> None: ...
    def show_error(self, text: str | None) -> None: ...
    def show_references(self, *, references: list[int], settings: ViewSettings) -> None: ...


class ClientSession:
    """Owns one client's render thread (started on construction; :meth:`stop` joins it)."""

    def __init__(
        self,
        *,
        name: str,
        render: RenderFn,
        view: ClientView,
        rest_delay: float = 0.2,
        preview: bool = True,
        refiner_label: str = "",
    ) -> None:
        self.name = name
        self._render, self._view = render, view
        self._rest_delay, self._preview = rest_delay, preview
        self._slot: LatestSlot[CameraState] = LatestSlot()
        self._last_camera: CameraState | None = None
        self._lock = threading.Lock()
        self.stats = FrameStats(refiner=refiner_label)
        """Frames sent, FPS and the last frame's stage timings."""
        self.errors = 0
        """Render errors so far."""
        self.last_error: str | None = None
        """The message of the last render error (cleared by the next good frame)."""
        self._thread = threading.Thread(target=self._run, name=f"splatent-render-{name}", daemon=True)
        self._thread.start()

    # -- called from viser's threads ------------------------------------------------------------
    def update_camera(self, camera: CameraState) -> None:
        """A new browser pose: supersedes any pose not rendered yet."""
        with self._lock:
            self._last_camera = camera
        self._slot.put(camera)

    def refresh(self) -> None:
        """Re-render the last pose at full quality (a setting changed)."""
        with self._lock:
            camera = self._last_camera
        if camera is not None:
            self._slot.put(replace(camera, moving=False))

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stops the thread (after the frame in flight) and joins it."""
        self._slot.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the render thread ----------------------------------------------------------------------
    def _run(self) -> None:
        pending: CameraState | None = None  # shown as a preview; owes a full frame once at rest
        while True:
            camera = self._slot.take(timeout=self._rest_delay if pending is not None else None)
            if self._slot.closed:
                return
            if camera is None:  # no newer request for rest_delay: the camera is at rest
                if pending is not None:
                    self._frame(pending, preview=False)
                pending = None
                continue
            if camera.moving and self._preview:
                self._frame(camera, preview=True)
                pending = camera
            else:
                self._frame(camera, preview=False)
                pending = None

    def _frame(self, camera: CameraState, *, preview: bool) -> None:
        view = self._view
        try:
            settings = view.settings()
            out = self._render(camera=camera, settings=settings, preview=preview)
            t0 = time.perf_counter()
            quality = settings.preview_jpeg_quality if preview else settings.jpeg_quality
            view.show_frame(image=out.image, jpeg_quality=quality)
            timings = dict(out.timings_ms)
            timings["encode/send"] = (time.perf_counter() - t0) * 1e3
            height, width = out.image.shape[:2]
            mode = str(settings.mode)
            self.stats.record(
                timings_ms=timings,
                size=(width, height),
                kind="preview" if preview else "full",
                mode="decoded" if preview and mode in NEEDS_REFINER else mode,
                references=out.references,
            )
            if self.last_error is not None:
                self.last_error = None
                view.show_error(None)
            view.show_stats(self.stats.markdown())
            if not preview:
                view.show_references(references=out.references, settings=settings)
        except Exception as e:  # noqa: BLE001 - one client's bad frame must not kill its thread or the server
            self.errors += 1
            self.last_error = f"{type(e).__name__}: {e}"
            LOG.exception("viewer client %s: render failed", self.name)
            try:
                view.show_error(f"**Render error:** {self.last_error}")
            except Exception:  # noqa: BLE001 - the client may be gone already
                LOG.exception("viewer client %s: could not show the error", self.name)
