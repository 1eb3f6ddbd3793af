"""Rendering a camera path of a trained scene to an MP4 or a folder of PNG frames.

The core of ``splatent-render`` and of the viewer's "Export flythrough" panel: every frame goes
through :func:`splatent_viewer.frame.render_frame`; references for the enhanced stream come from
:class:`splatent_viewer.references.StickyReferences` (hysteresis) unless switched off. At the end
the temporal flicker of each stream (mean absolute difference of consecutive frames, images in
[0, 1]) and its warped flicker (the same after warping the previous frame into the current one along the Gaussians'
depth, :mod:`splatent_viewer.export.consistency`: the camera's motion taken out) are measured and written with the
other numbers to ``<output stem>.stats.json``.

Outputs appear atomically: the video is renamed from a temporary file, the PNG folder from a
temporary folder, so an interrupted export (an exception from ``progress_callback``, Ctrl-C)
leaves neither a final file nor temporary litter; an output location that cannot be written is refused
before the first frame renders (:func:`check_output_location`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from splatent_viewer.atomic import write_json_atomic
from splatent_viewer.codecs import describe_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.export.camera_paths import CameraPath, round_to_multiple
from splatent_viewer.export.consistency import FlickerMeter, ReprojectionTracker
from splatent_viewer.export.video import cleanup_quietly, write_mp4
from splatent_viewer.frame import render_frame
from splatent_viewer.references import StickyReferences
from splatent_viewer.trained import TrainedScene

Mode = Literal["decoded", "enhanced", "side-by-side", "rgb"]
ProgressCallback = Callable[[int, int], None]
"""Called after each frame with (frames done, total frames); raising from it aborts the export cleanly."""

_FRAME_GLOB = "frame_*.png"
DEFAULT_FPS = 24.0


@dataclass
class ExportConfig:
    """How a camera path is rendered and written."""

    output: Path = Path("renders/flythrough.mp4")
    """``.mp4``: an H.264 (yuv420p) video; any other name: a folder of PNG frames (``frame_00000.png`` ...)."""
    mode: Mode = "decoded"
    """decoded latent render, enhanced (refined; needs a refiner), side-by-side (decoded | enhanced), or rgb (RGB splats)."""
    fps: float | None = None
    """Frame rate of the video; None = the camera path's own (nerfstudio JSON: frames / seconds), else 24."""
    num_references: int | None = None
    """References per enhanced frame; None = the refiner's k."""
    sticky_references: bool = True
    """Keep the reference set until a clearly nearer one exists (hysteresis), for a steadier enhanced video."""
    relative_margin: float = 0.15
    """Hysteresis: the nearest set must be this fraction cheaper than the current one to replace it."""
    absolute_margin: float = 0.0
    """Hysteresis: ... and cheaper by at least this much (scene scales / radians)."""
    measure_flicker: bool = True
    """Measure each stream's flicker and warped flicker: also renders the decoded stream in the enhanced mode (to
    compare the two) and the Gaussians' depth and alpha (for the warp)."""
    quality: int = 8
    """H.264 quality (imageio-ffmpeg scale 0-10)."""
    write_stats: bool = True
    """Write ``<output stem>.stats.json`` next to the output."""
    time_stages: bool = False
    """Record per-stage milliseconds (synchronises the GPU after every stage: slightly slower)."""


@dataclass
class ExportResult:
    """What an export wrote and measured."""

    output: Path
    """The video file or PNG folder."""
    stats_path: Path | None
    """The JSON with these numbers (None when not written)."""
    mode: str
    """The export mode (decoded, enhanced, side-by-side, rgb)."""
    frames: int
    """Frames written."""
    width: int
    """Width of the written frames (2x the render width side by side)."""
    height: int
    """Height of the written frames."""
    fps: float
    """Frame rate of the video."""
    seconds: float
    """Duration of the video (frames / fps)."""
    wall_seconds: float
    """Time the export took."""
    fps_achieved: float
    """Frames rendered (and written) per second of wall time."""
    flicker: dict[str, float] = field(default_factory=dict)
    """Per stream (decoded, enhanced, rgb): mean |frame_t - frame_{t-1}| over pixels and channels, images in [0, 1].
    Counts the camera's motion too: a sharper stream scores higher on the same path."""
    warped_flicker: dict[str, float] = field(default_factory=dict)
    """Per stream: mean |frame_t - warp(frame_{t-1})| over the pixels both frames see, the previous frame warped into
    the current one along the Gaussians' depth (:mod:`splatent_viewer.export.consistency`): the change on the same
    surface point (popping, view-inconsistent detail), the camera's motion taken out. The same pixels for every
    stream."""
    warped_coverage: float | None = None
    """Mean fraction of a frame's pixels the warped flicker scores (None when not measured)."""
    reference_switches: int | None = None
    """Frame transitions where the refiner's reference list (set or order) changed, with the selection used (enhanced modes)."""
    nearest_reference_switches: int | None = None
    """The same count for plain nearest-first selection along the path (what hysteresis is compared with)."""
    num_references: int | None = None
    """References per enhanced frame (None without enhancement)."""
    stage_ms: dict[str, float] = field(default_factory=dict)
    """Mean milliseconds per frame and stage (with ``time_stages``)."""
    notes: list[str] = field(default_factory=list)
    """Adjustments made (e.g. the frame size rounded to the codec's downscale)."""
    decoder: str = ""
    """What decoded the latent frames: the scene codec's name, or e.g. "sd-turbo latents decoded by taesd (live
    decoder)" when a live decoder was set ("" in the rgb mode)."""

    def to_json(self) -> dict:
        """A JSON-serialisable dict (what ``<output stem>.stats.json`` holds)."""
        d = asdict(self)
        d["output"] = str(self.output)
        d["stats_path"] = str(self.stats_path) if self.stats_path else None
        return d


def stats_path_for(output: Path) -> Path:
    """``renders/orbit.mp4`` → ``renders/orbit.stats.json``; a frame folder ``renders/orbit`` → ``renders/orbit.stats.json``."""
    output = Path(output)
    return output.with_name(f"{output.stem if output.suffix.lower() == '.mp4' else output.name}.stats.json")


def _outputs_for(mode: Mode, *, measure_flicker: bool) -> tuple[str, ...]:
    if mode == "decoded":
        return ("decoded",)
    if mode == "rgb":
        return ("rgb",)
    if mode == "side-by-side" or measure_flicker:
        return ("decoded", "enhanced")
    return ("enhanced",)


def _to_uint8(image: Float[Tensor, "H W 3"]) -> np.ndarray:
    return (image.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def _check_frame_folder(path: Path) -> None:
    """A PNG output folder may be replaced only when it is absent, empty or holds just an earlier export's frames."""
    if path.exists() and (not path.is_dir() or any(not p.match(_FRAME_GLOB) for p in path.iterdir())):
        raise SplatentError(f"{path} exists and holds other files; pass a new folder (or a .mp4 name) as the output.")


def _write_png_folder(*, frames: Iterator[np.ndarray], path: Path) -> int:
    """Writes frames into a temporary sibling folder that replaces ``path`` at the end (removed on any error)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)  # a crashed earlier export's
    tmp.mkdir()
    count = 0
    try:
        for frame in frames:
            Image.fromarray(frame).save(tmp / f"frame_{count:05d}.png")
            count += 1
        _check_frame_folder(path)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        cleanup_quietly(lambda: shutil.rmtree(tmp) if tmp.exists() else None, f"remove the partial frames {tmp}")
        raise
    return count


def check_output_location(path: Path, *, option: str = "--output") -> None:
    """Raises a :class:`SplatentError` (naming ``option``) unless ``path`` can be written: its folder exists and
    takes new files, or can be created. Nothing is left behind; run it before the work that produces the output."""
    path = Path(path).absolute()
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise SplatentError(f"{option} {path}: {existing} is a file, not a folder; pass an output in a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".splatent-write-check-")
    except OSError as e:
        raise SplatentError(
            f"{option} {path}: cannot write in {existing} ({e.strerror or e}); pass an output in a "
            "folder you can write to."
        ) from None
    os.close(fd)
    os.unlink(probe)


def export_flythrough(
    *,
    scene: TrainedScene,
    cameras: CameraPath,
    config: ExportConfig,
    progress_callback: ProgressCallback | None = None,
) -> ExportResult:
    """Renders ``cameras`` of ``scene`` as ``config`` says and writes the video / frames and the stats.

    Thread-safe to run in a background thread (the viewer does) as long as nothing else renders
    with the same scene concurrently. Bad options raise :class:`SplatentError` before anything renders.
    """
    output = Path(config.output)
    is_video = output.suffix.lower() == ".mp4"
    if not is_video:
        if output.suffix:
            raise SplatentError(
                f"Output {output}: use a .mp4 name for a video or a folder name without a suffix for PNG frames."
            )
        _check_frame_folder(output)
    if len(cameras) == 0:
        raise SplatentError("The camera path has no frames; give it at least one.")
    check_output_location(output)
    enhanced = config.mode in ("enhanced", "side-by-side")
    if enhanced and scene.refiner is None:
        raise SplatentError(
            f"Mode '{config.mode}' needs a refiner and {scene.source} has none loaded; pass --refiner PATH "
            "(a folder written by `splatent-refiner train`) or use --mode decoded."
        )
    notes: list[str] = []
    cameras, note = round_to_multiple(cameras, multiple=scene.codec.downscale)
    if note:
        notes.append(note)
    fps = float(config.fps or cameras.fps or DEFAULT_FPS)
    streams = _outputs_for(config.mode, measure_flicker=config.measure_flicker)
    outputs = streams + (("depth", "alpha") if config.measure_flicker else ())

    k: int | None = None
    sticky: StickyReferences | None = None
    train_c2ws = scene.references.c2w.detach().cpu()
    if enhanced:
        assert scene.refiner is not None  # checked above
        k = scene.refiner.config.num_references if config.num_references is None else config.num_references
        if config.sticky_references:
            sticky = StickyReferences(
                train_c2ws=train_c2ws,
                k=k,
                scene_scale=scene.references.scene_scale,
                relative_margin=config.relative_margin,
                absolute_margin=config.absolute_margin,
            )
    flicker = {name: FlickerMeter() for name in streams}
    geometry = ReprojectionTracker()
    switches = {"used": 0, "nearest": 0}
    stage_totals: dict[str, float] = {}
    total = len(cameras)

    def frames() -> Iterator[np.ndarray]:
        prev_used: list[int] | None = None
        prev_nearest: list[int] | None = None
        for i in range(total):
            c2w, K = cameras.c2ws[i], cameras.Ks[i]
            refs = sticky.select(c2w) if sticky is not None else None
            frame = render_frame(
                scene=scene,
                c2w=c2w,
                K=K,
                width=cameras.width,
                height=cameras.height,
                outputs=outputs,
                num_references=k,
                references=refs,
                time_stages=config.time_stages,
            )
            if enhanced:
                assert k is not None
                nearest = frame.references if sticky is None else scene.references.nearest(c2w=c2w, k=k)
                for key, now, prev in (("used", frame.references, prev_used), ("nearest", nearest, prev_nearest)):
                    switches[key] += int(prev is not None and list(prev) != list(now))  # set or tile order
                prev_used, prev_nearest = list(frame.references), list(nearest)
            reproj = None
            if config.measure_flicker:
                assert frame.depth is not None and frame.alpha is not None  # asked for
                reproj = geometry.next(depth=frame.depth, alpha=frame.alpha, c2w=c2w, K=K)
            for name in streams:
                flicker[name].add(getattr(frame, name), reproj)
            for stage, ms in frame.timings_ms.items():
                stage_totals[stage] = stage_totals.get(stage, 0.0) + ms
            if config.mode == "side-by-side":
                assert frame.decoded is not None and frame.enhanced is not None  # both in outputs
                image = torch.cat([frame.decoded, frame.enhanced], dim=1)
            else:
                image = getattr(frame, "decoded" if config.mode == "decoded" else config.mode)
            yield _to_uint8(image)
            if progress_callback is not None:
                progress_callback(i + 1, total)

    t0 = time.perf_counter()
    if is_video:
        count = write_mp4(frames=frames(), path=output, fps=fps, quality=config.quality)
    else:
        count = _write_png_folder(frames=frames(), path=output)
    wall = time.perf_counter() - t0
    result = ExportResult(
        output=output,
        stats_path=stats_path_for(output) if config.write_stats else None,
        mode=config.mode,
        frames=count,
        width=cameras.width * (2 if config.mode == "side-by-side" else 1),
        height=cameras.height,
        fps=fps,
        seconds=count / fps,
        wall_seconds=wall,
        fps_achieved=count / wall if wall > 0 else float("inf"),
        flicker={name: f.value() for name, f in flicker.items()},
        warped_flicker={name: v for name, f in flicker.items() if (v := f.warped_value()) is not None},
        warped_coverage=sum(geometry.coverage) / len(geometry.coverage) if geometry.coverage else None,
        reference_switches=switches["used"] if enhanced else None,
        nearest_reference_switches=switches["nearest"] if enhanced else None,
        num_references=k,
        stage_ms={stage: ms / count for stage, ms in stage_totals.items()},
        notes=notes,
        decoder=describe_codec(scene.codec) if config.mode != "rgb" else "",
    )
    if result.stats_path is not None:
        write_json_atomic(result.stats_path, result.to_json())
    return result
