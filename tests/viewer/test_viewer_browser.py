"""End to end: splatent-viewer on the tiny trained scene, opened in real headless Chromium."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest

from splatent_viewer.viewer.headless import HeadlessChromium, find_chromium

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="needs a Chromium binary (Debian: apt-get install chromium) for the browser test"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _viewport(shot: np.ndarray) -> np.ndarray:
    """The part of the page that shows only the background image (left of the GUI panel, above the axes gizmo)."""
    h, w = shot.shape[:2]
    return shot[int(0.08 * h) : int(0.75 * h), int(0.02 * w) : int(0.40 * w)].astype(np.float32)


def _poll(fn, *, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value is not None or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def run_browser_check(run_dir: Path, export_path: Path) -> dict:
    """Starts the viewer on ``run_dir``, opens it in Chromium, checks frames arrive and a mode switch changes them."""
    from splatent_viewer.run_config import TrainedSceneConfig
    from splatent_viewer.scripts.viewer_cli import start
    from splatent_viewer.viewer import ViewerConfig
    from splatent_viewer.viewer.gui import ViewSettings

    app = start(
        ViewerConfig(
            scene=TrainedSceneConfig(load_config=run_dir, refiner="none", device="cpu"),
            view=ViewSettings(max_resolution=128, preview_resolution=64),
            port=_free_port(),
            rest_delay=0.1,
        )
    )
    result: dict = {}
    try:
        with HeadlessChromium(width=800, height=500) as browser:
            browser.navigate(app.url)
            entry = _poll(lambda: next(iter(app.sessions().values()), None), timeout=30)
            assert entry is not None, "the browser never connected (no camera message reached the server)"
            session, view = entry
            assert view.wait_for_frames(2, timeout=30), "no preview + full frame was sent"

            # client side: the background image is on the page (not a blank canvas)
            def shows_image() -> np.ndarray | None:
                shot = browser.screenshot()
                return shot if _viewport(shot).std() > 8 else None

            first = _poll(shows_image, timeout=20)
            assert first is not None, "the page shows no rendered image"
            assert session.stats.last_mode == "decoded" and session.errors == 0, session.last_error

            sent = view.frames_sent
            view.gui.mode.value = "depth"  # the server-side GUI handle, as a user's click would
            assert view.wait_for_frames(sent + 1, timeout=30), "no frame after the mode switch"

            def shows_new_image() -> np.ndarray | None:
                shot = browser.screenshot()
                return shot if np.abs(_viewport(shot) - _viewport(first)).mean() > 10 else None

            changed = _poll(shows_new_image, timeout=20)
            assert changed is not None, "the page did not change after switching to depth"
            # stats are recorded just after the send: the browser may paint first
            assert _poll(lambda: True if session.stats.last_mode == "depth" else None, timeout=10)
            assert session.errors == 0, session.last_error

            sent = view.frames_sent
            view.gui.show_cameras.value = True
            assert view.wait_for_frames(sent + 1, timeout=30)
            assert _poll(lambda: True if view.frustums.highlighted else None, timeout=10)
            assert view.frustums.shown and len(view.frustums.highlighted) == view.gui.references.value

            # The "Export flythrough" panel runs the exporter in the background and reports the file.
            panel = view.export_panel
            assert panel is not None
            panel.frames.value, panel.resolution.value, panel.mode.value = 8, 64, "decoded"
            panel.output.value = str(export_path)
            assert panel.start() and not panel.start()  # one export at a time
            panel.join(timeout=180)
            assert export_path.is_file() and f"Wrote `{export_path}` (8 frames" in panel.status.content, (
                panel.status.content
            )
            assert not panel.progress.visible and not panel.button.disabled
            result = {"frames": view.frames_sent, "first": first, "depth": changed, "stats": session.stats.markdown()}
        # closing the page disconnects the client: its render thread is stopped and joined
        assert _poll(lambda: True if not app.sessions() and not session.alive else None, timeout=20)
    finally:
        app.close()
    return result


def test_viewer_streams_frames_to_chromium_and_switches_mode(tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    out = run_browser_check(tiny_trained_scene_dir, tmp_path / "flythrough.mp4")
    assert out["frames"] >= 4
    # the stats panel of the last (depth) frame: the RGB/depth raster stage and the send stage
    assert "| rgb |" in out["stats"] and "encode/send" in out["stats"] and "depth" in out["stats"]
