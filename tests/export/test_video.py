"""MP4 writing: readable, right size/count, and atomic."""

from __future__ import annotations

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
