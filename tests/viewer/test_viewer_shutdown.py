"""Stopping the viewer while a closed tab's frame and export are still running: close() waits for them (torch work
left running in a thread when the interpreter exits aborts the process: "terminate called without an active
exception", seen at the end of a CPU soak run), and the export is cancelled without leaving files."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from splatent_viewer.viewer.headless import HeadlessChromium, find_chromium

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="needs a Chromium binary (Debian: apt-get install chromium) for the browser test"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _viewer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("splatent-render-", "splatent-export"))]


def test_close_waits_for_a_closed_tabs_frame_and_cancels_its_export(
    tiny_trained_scene_dir: Path, tmp_path: Path
) -> None:
    from splatent_viewer.run_config import TrainedSceneConfig
    from splatent_viewer.scripts.viewer_cli import start
    from splatent_viewer.viewer import ViewerConfig
    from splatent_viewer.viewer.gui import ViewSettings

    app = start(
        ViewerConfig(
            scene=TrainedSceneConfig(load_config=tiny_trained_scene_dir, refiner="none", device="cpu"),
            view=ViewSettings(max_resolution=128, preview_resolution=64),
            port=_free_port(),
            rest_delay=0.1,
        )
    )
    try:
        browser = HeadlessChromium(width=800, height=500)
        try:
            browser.navigate(app.url)
            assert _wait(lambda: bool(app.sessions()), timeout=60), "the browser never connected"
            session, view = next(iter(app.sessions().values()))
            assert view.wait_for_frames(2, timeout=60)
            panel = view.export_panel
            # 600 frames at 256 px: tens of seconds on the CPU, so the export outlasts the disconnect (at 64 px it
            # could end first when noticing the closed tab took long, and nothing was left in flight)
            panel.frames.value, panel.resolution.value, panel.mode.value = 600, 256, "decoded"
            panel.output.value = str(tmp_path / "long.mp4")
            assert panel.start()
            assert _wait(lambda: panel.progress.value > 0, timeout=60), "the export did not start"
            sent = view.frames_sent
            view.gui.max_resolution.value = 2048  # a slow full frame (seconds on the CPU) starts now
            assert _wait(lambda: len(session.stats.last_ms) and view.frames_sent == sent and session.alive, timeout=5)
        finally:
            browser.kill()  # the tab dies mid-frame and mid-export
        assert _wait(lambda: not app.sessions(), timeout=30), "the disconnect was not noticed"
        assert session.alive or panel.running  # something is still in flight when the viewer stops
    finally:
        app.close()
    assert _viewer_threads() == [], "close() returned while a render thread or export was still running"
    assert not panel.running and "cancelled" in panel.status.content, panel.status.content
    assert list(tmp_path.iterdir()) == []  # no video, no temporary file
