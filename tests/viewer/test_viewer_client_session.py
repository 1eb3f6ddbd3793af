"""A client's render thread: preview then full frame, latest pose wins, errors shown and survived, stop joins."""

from __future__ import annotations

import threading

import pytest
import torch

from splatent_viewer.viewer.client_session import ClientSession
from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.renderer import CameraState, RenderedImage


class RecordingView:
    """A ClientView that records what the session sends (stands in for the browser)."""

    def __init__(self, settings: ViewSettings | None = None) -> None:
        self.current = settings or ViewSettings(mode="decoded")
        self.frames: list[tuple[torch.Tensor, int]] = []
        self.errors: list[str | None] = []
        self.stats: list[str] = []
        self.references: list[list[int]] = []
        self.cond = threading.Condition()

    def settings(self) -> ViewSettings:
        return self.current

    def show_frame(self, *, image: torch.Tensor, jpeg_quality: int) -> None:
        with self.cond:
            self.frames.append((image, jpeg_quality))
            self.cond.notify_all()

    def show_stats(self, text: str) -> None:
        self.stats.append(text)

    def show_error(self, text: str | None) -> None:
        with self.cond:
            self.errors.append(text)
            self.cond.notify_all()

    def show_references(self, *, references: list[int], settings: ViewSettings) -> None:
        self.references.append(references)

    def wait(self, predicate, timeout: float = 10.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=timeout)


def _camera(tag: float, *, moving: bool = True) -> CameraState:
    c2w = torch.eye(4)
    c2w[0, 3] = tag  # identifies the pose
    return CameraState(c2w=c2w, fov_y=1.0, aspect=1.0, moving=moving)


class TaggingRenderer:
    """Renders a 2x2 image whose value is the pose tag; records (tag, preview); can block or fail on demand."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_tags: set[int] = set()

    def __call__(self, *, camera: CameraState, settings: ViewSettings, preview: bool) -> RenderedImage:
        tag = int(camera.c2w[0, 3])
        self.calls.append((tag, preview))
        self.started.set()
        self.gate.wait(timeout=10)
        if tag in self.fail_tags:
            raise RuntimeError(f"boom at pose {tag}")
        return RenderedImage(
            image=torch.full((2, 2, 3), tag, dtype=torch.uint8), timings_ms={"raster": 1.0}, references=[tag]
        )


@pytest.fixture
def session_parts():
    renderer, view = (
        TaggingRenderer(),
        RecordingView(ViewSettings(mode="decoded", jpeg_quality=91, preview_jpeg_quality=41)),
    )
    session = ClientSession(name="t", render=renderer, view=view, rest_delay=0.05)
    yield session, renderer, view
    session.stop()


def test_moving_camera_gets_a_preview_then_a_full_frame_at_rest(session_parts) -> None:
    session, renderer, view = session_parts
    session.update_camera(_camera(7))
    assert view.wait(lambda: len(view.frames) >= 2)
    assert renderer.calls[:2] == [(7, True), (7, False)]
    assert [q for _, q in view.frames[:2]] == [41, 91]  # preview JPEG quality, then full
    assert view.references == [[7]]  # frustum highlight only after the full frame
    assert session.stats.sent == 2 and "raster" in view.stats[-1] and "encode/send" in view.stats[-1]


def test_settings_change_renders_full_at_once(session_parts) -> None:
    session, renderer, view = session_parts
    session.refresh()  # nothing to refresh before a first pose
    session.update_camera(_camera(3, moving=False))
    assert view.wait(lambda: len(view.frames) >= 1)
    session.refresh()
    assert view.wait(lambda: len(view.frames) >= 2)
    assert renderer.calls[:2] == [(3, False), (3, False)]


def test_newest_pose_supersedes_stale_ones(session_parts) -> None:
    session, renderer, view = session_parts
    renderer.gate.clear()
    session.update_camera(_camera(1))
    assert renderer.started.wait(timeout=10)  # the thread is busy with pose 1
    for tag in range(2, 7):
        session.update_camera(_camera(tag))
    renderer.gate.set()
    assert view.wait(lambda: any(img[0, 0, 0] == 6 and q == 91 for img, q in view.frames))
    tags = [t for t, _ in renderer.calls]
    assert tags[0] == 1 and tags[1] == 6 and not {2, 3, 4, 5} & set(tags)


def test_render_error_is_shown_and_the_thread_keeps_serving(session_parts) -> None:
    session, renderer, view = session_parts
    renderer.fail_tags = {5}
    session.update_camera(_camera(5, moving=False))
    assert view.wait(lambda: any(e and "boom at pose 5" in e for e in view.errors))
    assert session.alive and session.errors == 1 and "RuntimeError" in session.last_error
    session.update_camera(_camera(8, moving=False))
    assert view.wait(lambda: len(view.frames) >= 1)
    assert view.wait(lambda: view.errors[-1] is None)  # the good frame clears the error line
    assert session.last_error is None and view.frames[-1][0][0, 0, 0] == 8


def test_a_failing_view_does_not_kill_the_thread(session_parts) -> None:
    session, renderer, view = session_parts

    def broken_send(**_kwargs) -> None:
        raise ConnectionError("client gone")

    view.show_frame = broken_send  # the browser went away mid-frame
    session.update_camera(_camera(2, moving=False))
    assert view.wait(lambda: any(e and "client gone" in e for e in view.errors))
    assert session.alive


def test_stop_joins_the_thread_even_while_idle() -> None:
    session = ClientSession(name="s", render=TaggingRenderer(), view=RecordingView(), rest_delay=0.05)
    assert session.alive
    session.stop(timeout=5)
    assert not session.alive
