"""The viewer's "Export flythrough" panel: the exporter (``splatent-render``) in a background thread.

It builds an orbit or a path through the training cameras and calls
:func:`splatent_viewer.export.flythrough.export_flythrough` — the same function and the same
render+enhance path as the CLI — with a progress bar and the output path reported in the GUI.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import torch
import viser

from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import (
    CameraPath,
    interpolate_path,
    intrinsics_for_fov,
    orbit_path,
    vertical_fov,
)
from splatent_viewer.export.flythrough import DEFAULT_FPS, ExportConfig, ExportResult, export_flythrough
from splatent_viewer.trained import TrainedScene

LOG = logging.getLogger(__name__)

PATHS = ("orbit", "interpolate")


class ExportCancelled(Exception):
    """Raised from the progress callback to stop an export (export_flythrough then removes its temporary output)."""


def flythrough_path(*, scene: TrainedScene, kind: str, num_frames: int, max_side: int) -> CameraPath:
    """An orbit around the scene focus or a smooth path through the training cameras, at the first
    training view's field of view, its longer side scaled to ``max_side`` (rounded to the codec's downscale)."""
    bank = scene.references
    train = bank.c2w.detach().cpu().double()
    h0, w0 = (int(v) for v in bank.sizes[0])
    fov = vertical_fov(K=bank.Ks[0].cpu(), height=h0)
    ds = scene.codec.downscale
    s = max_side / max(h0, w0)
    width, height = max(ds, round(w0 * s / ds) * ds), max(ds, round(h0 * s / ds) * ds)
    if kind == "orbit":
        c2ws = orbit_path(train_c2ws=train, num_frames=num_frames)
    elif kind == "interpolate":
        c2ws, _ = interpolate_path(keyframes=train, num_frames=num_frames)
    else:
        raise SplatentError(f"Unknown flythrough path {kind!r}; choose from {PATHS}.")
    fovs = torch.full((c2ws.shape[0],), fov, dtype=torch.float64)
    return CameraPath(
        c2ws=c2ws.float(),
        Ks=intrinsics_for_fov(fov=fovs, width=width, height=height).float(),
        width=width,
        height=height,
    )


class ExportPanel:
    """GUI controls that start one export at a time in a background thread."""

    def __init__(
        self,
        *,
        gui: viser.GuiApi,
        scene: TrainedScene,
        output_dir: Path,
        on_done: Callable[[ExportResult | None, str | None], None] | None = None,
    ) -> None:
        self.scene = scene
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._on_done = on_done
        modes = ["decoded", "rgb"] + (["enhanced", "side-by-side"] if scene.refiner is not None else [])
        with gui.add_folder("Export flythrough", expand_by_default=False):
            self.path = gui.add_dropdown("Path", options=PATHS, initial_value="orbit")
            self.mode = gui.add_dropdown("Mode", options=modes, initial_value=modes[-1])
            self.frames = gui.add_slider("Frames", min=8, max=600, step=8, initial_value=120)
            self.resolution = gui.add_slider(
                "Resolution", min=64, max=2048, step=64, initial_value=512, hint="Longer side of the video"
            )
            self.fps = gui.add_slider("FPS", min=1, max=60, step=1, initial_value=int(DEFAULT_FPS))
            self.output = gui.add_text(
                "Output",
                initial_value=str(output_dir / ExportConfig().output.name),
                hint=".mp4 for H.264, a folder name for PNG frames",
            )
            self.button = gui.add_button("Export")
            self.progress = gui.add_progress_bar(0.0, visible=False, animated=True)
            self.status = gui.add_markdown("")

        def clicked(_event: object) -> None:
            self.start()

        self.button.on_click(clicked)

    def cancel(self) -> None:
        """Stops a running export after its current frame (its temporary output is removed; nothing is written)."""
        self._cancel.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Starts an export with the panel's values; False (and a message) when one is already running."""
        if self.running:
            self.status.content = "_An export is already running._"
            return False
        self._cancel.clear()
        self.button.disabled = True
        self.progress.value, self.progress.visible = 0.0, True
        self.status.content = "Rendering…"
        self._thread = threading.Thread(target=self._run, name="splatent-export", daemon=True)
        self._thread.start()
        return True

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def export(self) -> ExportResult:
        """Runs the export with the panel's current values in this thread, updating the progress bar."""
        cameras = flythrough_path(
            scene=self.scene,
            kind=str(self.path.value),
            num_frames=int(self.frames.value),
            max_side=int(self.resolution.value),
        )
        config = ExportConfig(
            output=Path(self.output.value).expanduser(),
            mode=str(self.mode.value),  # type: ignore[arg-type]
            fps=float(self.fps.value),
        )

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise ExportCancelled("the export was cancelled (the viewer is stopping or the tab closed)")
            self.progress.value = 100.0 * done / max(total, 1)

        return export_flythrough(scene=self.scene, cameras=cameras, config=config, progress_callback=progress)

    def _run(self) -> None:
        result, error = None, None
        try:
            result = self.export()
            flicker = ""
            if result.flicker:
                flicker = " · flicker " + ", ".join(f"{k} {v:.4f}" for k, v in result.flicker.items())
            if result.warped_flicker:
                flicker += " · warped " + ", ".join(f"{k} {v:.4f}" for k, v in result.warped_flicker.items())
            self.status.content = f"Wrote `{result.output}` ({result.frames} frames{flicker})"
            LOG.info("exported %s", result.output)
        except ExportCancelled as e:
            error = str(e)
            self.status.content = "_Export cancelled; nothing written._"
            LOG.info("flythrough export cancelled")
        except Exception as e:  # noqa: BLE001 - reported in the GUI, the viewer keeps running
            error = str(e) if isinstance(e, SplatentError) else f"{type(e).__name__}: {e}"
            self.status.content = f"**Export failed:** {error}"
            LOG.exception("flythrough export failed")
        finally:
            self.progress.visible = False
            self.button.disabled = False
            if self._on_done is not None:
                self._on_done(result, error)
