"""Writing frames as browser-playable H.264 MP4, atomically."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def write_mp4(*, frames: Iterable[np.ndarray], path: Path, fps: float, quality: int = 8) -> int:
    """Writes uint8 HxWx3 frames to ``path`` (H.264, yuv420p) and returns the frame count.

    Frames go to a temporary file next to ``path`` that is renamed at the end, so an interrupted
    export never leaves a truncated video under the final name. Odd sizes are edge-padded to even
    (yuv420p needs even sizes).
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
    finally:
        writer.close()  # waits for ffmpeg to exit, so it cannot recreate the file after the unlink
        tmp.unlink(missing_ok=True)
    return count
