"""Writing frames as browser-playable H.264 MP4, atomically."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

LOG = logging.getLogger(__name__)


def cleanup_quietly(action: Callable[[], object], what: str) -> None:
    """Runs a cleanup step on an error path: its own failure is logged, never raised, so it cannot hide the error
    that is being handled."""
    try:
        action()
    except Exception as e:  # noqa: BLE001 - the original error is the one to report
        LOG.warning("could not %s: %s: %s", what, type(e).__name__, e)


def write_mp4(*, frames: Iterable[np.ndarray], path: Path, fps: float, quality: int = 8) -> int:
    """Writes uint8 HxWx3 frames to ``path`` (H.264, yuv420p) and returns the frame count.

    Frames go to a temporary file next to ``path`` that is renamed at the end, so an interrupted
    export never leaves a truncated video under the final name. Odd sizes are edge-padded to even
    (yuv420p needs even sizes). If anything fails (a frame, ffmpeg, the rename, Ctrl+C) the temporary
    file is removed and that first error is raised; a failing cleanup is only logged.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    count = 0
    writer = imageio.get_writer(
        tmp, fps=fps, codec="libx264", pixelformat="yuv420p", quality=quality, macro_block_size=1, format="FFMPEG"
    )
    try:
        for frame in frames:
            h, w = frame.shape[:2]
            if h % 2 or w % 2:  # yuv420p needs even sizes
                frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            writer.append_data(frame)
            count += 1
        writer.close()
        os.replace(tmp, path)
    except BaseException:
        # close first: it waits for ffmpeg to exit, so ffmpeg cannot recreate the file after the unlink
        cleanup_quietly(writer.close, f"stop ffmpeg writing {tmp}")
        cleanup_quietly(lambda: tmp.unlink(missing_ok=True), f"remove the partial video {tmp}")
        raise
    return count
