"""MP4 writing: readable, right size/count, and atomic."""

from __future__ import annotations

import logging

import imageio.v3 as iio
import numpy as np
import pytest

from splatent_viewer.export.video import write_mp4


def test_writes_h264_that_reads_back(tmp_path):
    frames = [np.full((48, 64, 3), 10 * i, dtype=np.uint8) for i in range(12)]
    out = tmp_path / "v.mp4"
    assert write_mp4(frames=frames, path=out, fps=12) == 12
    back = iio.imread(out, plugin="pyav")
    assert back.shape == (12, 48, 64, 3)
    assert abs(int(back[5].mean()) - 50) <= 3
    meta = iio.immeta(out, plugin="pyav")
    assert meta["codec"] == "h264"


def test_odd_sizes_are_padded(tmp_path):
    write_mp4(frames=[np.zeros((33, 45, 3), np.uint8)] * 2, path=tmp_path / "odd.mp4", fps=5)
    assert iio.imread(tmp_path / "odd.mp4", plugin="pyav").shape[1:3] == (34, 46)


def test_interrupted_export_leaves_no_file(tmp_path):
    def frames():
        yield np.zeros((32, 32, 3), np.uint8)
        raise KeyboardInterrupt

    out = tmp_path / "cut.mp4"
    with pytest.raises(KeyboardInterrupt):
        write_mp4(frames=frames(), path=out, fps=5)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failing_cleanup_never_hides_the_error(tmp_path, caplog):
    """The export fails, and so does removing its temporary file: the export's error is the one raised."""
    out = tmp_path / "v.mp4"
    tmp = tmp_path / ".v.partial.mp4"

    def frames():
        yield np.zeros((32, 32, 3), np.uint8)
        # A folder where the temporary video is: removing it fails (and so may ffmpeg, if it had not opened it yet).
        tmp.unlink(missing_ok=True)
        tmp.mkdir()
        (tmp / "keep").write_text("x")
        raise RuntimeError("the render failed")

    with (
        caplog.at_level(logging.WARNING, logger="splatent_viewer.export.video"),
        pytest.raises(RuntimeError, match="the render failed"),
    ):
        write_mp4(frames=frames(), path=out, fps=5)
    assert not out.exists()
    assert [r.message for r in caplog.records if "could not remove the partial video" in r.message], caplog.text
