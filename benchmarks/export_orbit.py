"""Flythrough export cost and temporal flicker: an enhanced orbit through ``export_flythrough``.

    python benchmarks/export_orbit.py --load-config outputs/demo              # GPU: 120 frames at 512²
    python benchmarks/export_orbit.py                                         # trains the demo scene first
    python benchmarks/export_orbit.py --size 64 --frames 4 --train-steps 10   # CPU smoke run

Renders the same orbit (``splatent-render orbit`` defaults: the training cameras' radius and
height, the first training camera's field of view) twice in the enhanced mode, each a full
export to MP4 exactly as ``splatent-render`` does it:

1. with reference hysteresis (``StickyReferences``, the default), and
2. with plain nearest references,

after an untimed 2-frame warm-up export. Each export also decodes the plain latent render
(``measure_flicker``), so the decoded and the enhanced flicker (mean |frame_t - frame_t-1|,
images in [0, 1]) come from the same frames; the total time includes that extra decode and the
H.264 encode. Without ``--load-config`` the embedded demo scene is trained first with the core
trainer (``--train-steps``). The refiner is the one ``--refiner`` names, else the shipped
embedded one, else a freshly initialised embedded UNet (flagged UNTRAINED in the table: its
numbers are then only timings, and enhanced = decoded). Writes a markdown table to ``--output``
(atomically) and prints it; the videos go to ``--video-dir``.
"""

from __future__ import annotations

import datetime
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro
from rich.console import Console

from splatent_viewer.codecs import load_codec
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.export.camera_paths import CameraPath, intrinsics_for_fov, orbit_path, vertical_fov
from splatent_viewer.export.flythrough import ExportConfig, ExportResult, export_flythrough
from splatent_viewer.paths import assets_dir
from splatent_viewer.run_config import TrainedSceneConfig
from splatent_viewer.trained import TrainedScene, trained_scene_from_splats

CONSOLE = Console()


@dataclass
class Args:
    load_config: Optional[Path] = None
    """A trained scene (splatent-demo folder or nerfstudio config.yml); default: train the demo scene here."""
    refiner: str = "embedded"
    """A refiner folder, or embedded (the shipped one; a fresh UNTRAINED one when none is shipped)."""
    size: int = 512
    """Square frame size (a multiple of 8)."""
    frames: int = 120
    """Frames of the orbit."""
    fps: float = 24.0
    """Frame rate of the videos."""
    device: DeviceName = "auto"
    """Compute device."""
    train_steps: Optional[int] = None
    """Core-trainer steps when there is no --load-config (default: 3000 on CUDA, 20 on CPU)."""
    video_format: Literal["mp4", "png"] = "mp4"
    """H.264 MP4 (needs imageio-ffmpeg's ffmpeg) or PNG frames (a folder per export)."""
    video_dir: Path = Path("outputs/bench_export_orbit")
    """Where the two videos and their stats go."""
    output: Path = Path("benchmarks/export_orbit.md")
    """Markdown table written here."""


def _train_demo_scene(*, steps: int, device: torch.device) -> TrainedScene:
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.training.trainer import LatentSplatTrainerConfig, train_latent_splats

    scene = load_scene(assets_dir() / "demo_scene")
    codec = load_codec("taef2", device=device, dtype=torch.float32)
    config = LatentSplatTrainerConfig(steps=steps, densify=device.type == "cuda")
    if device.type == "cuda":
        config.strategy.refine_stop_iter = steps // 2
    result = train_latent_splats(scene=scene, codec=codec, config=config, device=device)
    if device.type == "cuda":  # render with the codec the way load_trained_scene sets it up on CUDA
        codec = load_codec("taef2", device=device, dtype=torch.float16)
    return trained_scene_from_splats(
        scene=scene,
        params=result.params,
        codec=codec,
        sh_degree=result.sh_degree,
        train_indices=scene.split_indices["train"].tolist(),
        device=device,
        name=f"demo scene, {steps} steps",
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )


def _refiner(args: Args, scene: TrainedScene, device: torch.device) -> str:
    from splatent_viewer.refine import RefinerConfig, load_refiner

    dtype = torch.float16 if device.type == "cuda" else torch.float32
    if args.refiner != "embedded":
        scene.refiner = load_refiner(Path(args.refiner), device=device, dtype=dtype, codec=scene.codec)
        return f"{args.refiner}"
    try:
        scene.refiner = load_refiner("embedded", device=device, dtype=dtype, codec=scene.codec)
        return "embedded (shipped)"
    except SplatentError:
        config = RefinerConfig(
            backbone="embedded", codec=scene.codec.name, latent_channels=scene.codec.latent_channels, num_references=3
        )
        scene.refiner = config.setup(device=device, dtype=dtype).eval()
        return "embedded, UNTRAINED (fresh init: enhanced = decoded)"


def orbit_cameras(scene: TrainedScene, *, frames: int, size: int) -> CameraPath:
    """``splatent-render orbit``'s default path at ``size``²."""
    bank = scene.references
    c2ws = orbit_path(train_c2ws=bank.c2w.detach().cpu().double(), num_frames=frames).float()
    fov = vertical_fov(K=bank.Ks[0].cpu(), height=int(bank.sizes[0][0]))
    return CameraPath(
        c2ws=c2ws, Ks=intrinsics_for_fov(fov=[fov] * frames, width=size, height=size).float(), width=size, height=size
    )


def _row(label: str, r: ExportResult) -> str:
    return (
        f"| {label} | {r.frames} | {r.wall_seconds:.1f} | {1e3 * r.wall_seconds / r.frames:.1f} | {r.fps_achieved:.2f} | "
        f"{r.flicker['decoded']:.4f} | {r.flicker['enhanced']:.4f} | {r.reference_switches} |"
    )


def main(args: Args) -> str:
    device = resolve_device(args.device)
    if args.size % 8:
        raise SplatentError(f"--size must be a multiple of 8, got {args.size}.")
    if args.load_config is not None:
        # the refiner is attached below (--refiner); plain modules, as the export runs by default on the CPU
        scene = TrainedSceneConfig(
            load_config=args.load_config, device=args.device, refiner="none", cuda_graphs=False
        ).setup(device=device)
        source = str(args.load_config)
    else:
        steps = args.train_steps if args.train_steps is not None else (3000 if device.type == "cuda" else 20)
        scene = _train_demo_scene(steps=steps, device=device)
        source = f"embedded demo scene trained here ({steps} core-trainer steps)"
    refiner_note = _refiner(args, scene, device)
    k = scene.refiner.config.num_references
    cams = orbit_cameras(scene, frames=args.frames, size=args.size)
    CONSOLE.print(
        f"{source}: {scene.params['means'].shape[0]:,} Gaussians; refiner {refiner_note}, k={k}; "
        f"{args.frames} frames at {args.size}² on {device}"
    )

    with tempfile.TemporaryDirectory() as tmp:  # warm-up (CUDA kernels, cuDNN autotuning), untimed
        export_flythrough(
            scene=scene,
            cameras=orbit_cameras(scene, frames=2, size=args.size),
            config=ExportConfig(
                output=Path(tmp) / ("warmup.mp4" if args.video_format == "mp4" else "warmup"),
                mode="enhanced",
                write_stats=False,
            ),
        )
    results = {}
    for label, sticky in (("sticky references", True), ("nearest references", False)):
        out = (
            args.video_dir / f"orbit_{'sticky' if sticky else 'nearest'}{'.mp4' if args.video_format == 'mp4' else ''}"
        )
        results[label] = export_flythrough(
            scene=scene,
            cameras=cams,
            config=ExportConfig(
                output=out, mode="enhanced", fps=args.fps, sticky_references=sticky, measure_flicker=True
            ),
        )
        CONSOLE.print(f"{label}: {results[label].wall_seconds:.1f} s → {out}")

    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    plain = results["nearest references"]
    cmd = (
        f"python benchmarks/export_orbit.py --size {args.size} --frames {args.frames}"
        + (
            f" --load-config {args.load_config}"
            if args.load_config
            else f" --train-steps {args.train_steps}"
            if args.train_steps
            else ""
        )
        + (f" --refiner {args.refiner}" if args.refiner != "embedded" else "")
        + (f" --video-format {args.video_format}" if args.video_format != "mp4" else "")
    )
    table = (
        f"Enhanced orbit export, {args.frames} frames at {args.size}×{args.size} ({'H.264 MP4' if args.video_format == 'mp4' else 'PNG frames'}), k={k}; scene: {source}; "
        f"refiner: {refiner_note}; {name}; torch {torch.__version__}; {datetime.date.today().isoformat()}.\n"
        f"Command: `{cmd}`\n\n"
        "| references | frames | total s | ms/frame | frames/s | flicker decoded | flicker enhanced | reference switches |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "\n".join(_row(label, r) for label, r in results.items())
        + f"\n\nPlain nearest selection changes the reference list (set or order) on {plain.nearest_reference_switches} "
        f"of {plain.frames - 1} frame transitions. Flicker = mean |frame_t − frame_t−1| over pixels and channels "
        "(images in [0, 1]); the camera moves, so it is never 0 — compare enhanced with decoded on the same frames.\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.output.with_name(f".{args.output.name}.partial")
    tmp_out.write_text(table)
    os.replace(tmp_out, args.output)
    CONSOLE.print(table)
    return table


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
