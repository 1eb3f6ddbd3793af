"""The stats panel: the last frame's time always, the frame rate only while the camera moves, references only in
the modes that use them."""

from __future__ import annotations

from splatent_viewer.viewer.stats import FrameStats


def _record(stats: FrameStats, *, now: float, kind: str, mode: str, references: tuple[int, ...] = (0, 11, 1)) -> None:
    stats.record(
        timings_ms={"raster": 20.0, "decode": 15.0, "encode/send": 5.0},
        size=(512, 384),
        kind=kind,
        mode=mode,
        references=list(references),
        now=now,
    )


def test_a_frame_at_rest_shows_its_time_and_no_rate() -> None:
    stats = FrameStats()
    assert stats.markdown() == "Waiting for the first frame…"
    _record(stats, now=0.0, kind="preview", mode="decoded")
    _record(stats, now=10.0, kind="full", mode="decoded")  # the camera came to rest long after the last preview
    text = stats.markdown(now=10.5)
    head = text.splitlines()[0]
    assert head == "**40.0 ms** · full 512×384 · decoded"
    assert "FPS" not in text and "references" not in text  # decoded mode uses no references
    assert "| raster | 20.0 |" in text and "| **total** | **40.0** |" in text


def test_moving_camera_shows_the_rate_of_its_previews() -> None:
    stats = FrameStats(window_s=2.0)
    for i in range(5):  # five previews 0.1 s apart: 10 FPS
        _record(stats, now=1.0 + 0.1 * i, kind="preview", mode="decoded")
    assert stats.markdown(now=1.45).splitlines()[0] == "**10.0 FPS** · **40.0 ms** · preview 512×384 · decoded"
    fresh = FrameStats()
    _record(fresh, now=0.0, kind="preview", mode="decoded")  # a single preview: no rate yet, never "0.0 FPS"
    assert "FPS" not in fresh.markdown(now=0.0)


def test_references_are_listed_only_where_the_refiner_uses_them() -> None:
    for mode, shown in (
        ("enhanced", True),
        ("split", True),
        ("split-rgb", True),
        ("decoded", False),
        ("rgb", False),
        ("latent", False),
        ("depth", False),
    ):
        stats = FrameStats()
        _record(stats, now=0.0, kind="full", mode=mode)
        assert ("references: 0, 11, 1" in stats.markdown(now=0.0)) == shown, mode
    stats = FrameStats()
    _record(stats, now=0.0, kind="full", mode="enhanced", references=())  # k = 0
    assert "references: none" in stats.markdown(now=0.0)


def test_the_refiner_in_use_is_named_where_the_mode_uses_it() -> None:
    stats = FrameStats(refiner="adapted to this scene, RGB-guided")
    _record(stats, now=0.0, kind="full", mode="split-rgb")
    assert "refiner: adapted to this scene, RGB-guided" in stats.markdown(now=0.0)
    _record(stats, now=1.0, kind="full", mode="rgb")
    assert "refiner:" not in stats.markdown(now=1.0)
