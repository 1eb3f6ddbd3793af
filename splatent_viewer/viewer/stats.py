"""Per-client render statistics for the stats panel: the last frame's time and stages, the frame rate while
the camera moves, and the references where the mode uses them."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from splatent_viewer.viewer.modes import NEEDS_REFINER

# Display order of render_frame's stage names (others follow alphabetically).
_STAGE_ORDER = ("raster", "rgb", "guide", "decode", "refine", "decode_enhanced", "compose", "encode/send")


@dataclass
class FrameStats:
    """Sliding-window frame rate and the stage timings of the last frame."""

    window_s: float = 2.0
    """Frames sent within this many seconds count towards the frame rate."""
    sent: int = 0
    """Frames sent to the client so far."""
    last_ms: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage of the last frame."""
    last_size: tuple[int, int] = (0, 0)
    """(width, height) of the last frame."""
    last_kind: str = ""
    """``"preview"`` (the camera is moving) or ``"full"`` (at rest, or a settings change)."""
    last_mode: str = ""
    """Display mode of the last frame (a preview of enhanced/split is decoded)."""
    last_references: list[int] = field(default_factory=list)
    """Reference indices of the last frame (the refiner's in enhanced/split, else the nearest training views)."""
    refiner: str = ""
    """Which refiner renders the enhanced view (:attr:`TrainedScene.refiner_label`), named in the modes that use it."""
    _times: deque = field(default_factory=deque)

    def record(
        self,
        *,
        timings_ms: dict[str, float],
        size: tuple[int, int],
        kind: str,
        mode: str,
        references: list[int],
        now: float | None = None,
    ) -> None:
        """Counts one frame sent."""
        now = time.perf_counter() if now is None else now
        self.sent += 1
        self._times.append(now)
        while self._times and now - self._times[0] > self.window_s:
            self._times.popleft()
        self.last_ms, self.last_size, self.last_kind = dict(timings_ms), size, kind
        self.last_mode, self.last_references = mode, list(references)

    def fps(self, *, now: float | None = None) -> float:
        """Frames per second over the window (0 with fewer than two frames in it)."""
        now = time.perf_counter() if now is None else now
        times = [t for t in self._times if now - t <= self.window_s]
        if len(times) < 2:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    @property
    def last_frame_ms(self) -> float:
        """Milliseconds the last frame took (sum of its stages, render to send)."""
        return sum(self.last_ms.values())

    def markdown(self, *, now: float | None = None) -> str:
        """The stats panel's text: the last frame's time; the frame rate only while the camera moves (previews
        stream; a frame at rest has no rate); the references only in the modes that use them."""
        if self.sent == 0:
            return "Waiting for the first frame…"
        w, h = self.last_size
        head = f"**{self.last_frame_ms:.1f} ms** · {self.last_kind} {w}×{h} · {self.last_mode}"
        if self.last_kind == "preview":
            rate = self.fps(now=now)
            if rate > 0:
                head = f"**{rate:.1f} FPS** · {head}"
        if self.last_mode in NEEDS_REFINER:
            if self.refiner:
                head += f"  \nrefiner: {self.refiner}"
            head += "  \nreferences: " + (", ".join(str(i) for i in self.last_references) or "none")
        stages = sorted(self.last_ms, key=lambda s: (_STAGE_ORDER.index(s) if s in _STAGE_ORDER else 99, s))
        rows = "\n".join(f"| {s} | {self.last_ms[s]:.1f} |" for s in stages)
        return f"{head}\n\n| stage | ms |\n|---|---|\n{rows}\n| **total** | **{self.last_frame_ms:.1f}** |"
