"""``splatent-demo``: the whole pipeline on the embedded demo scene with the embedded TAEF2 codec.

image → TAEF2 latent → latent+RGB Gaussians (trained here) → latent render → decode → video.

Writes to ``--output-dir``: ``splats.safetensors`` (the trained Gaussians) and ``references.safetensors``
(training cameras + latents; together a run folder for ``splatent-viewer``/``splatent-render``), ``metrics.json``
(held-out PSNR/SSIM of the decoded latent render, [the enhanced render,] the RGB splats and the codec's
own round trip; wall seconds per phase), ``compare.png`` (ground truth | codec round trip | decoded latent
render | [enhanced |] RGB splats) and ``orbit.mp4`` (decoded latent render | [enhanced |] RGB splats along an
orbit); "enhanced" when a refiner is given or shipped.

On the CPU the run is sized for a few minutes on 2 cores: the training views are encoded once (the trainer's
targets are also the reference bank), the refiner loads while they encode, and held-out views and video
frames render two at a time, one core each (:func:`~splatent_viewer.evaluation.threaded_map`).
"""

from __future__ import annotations

import importlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import tyro
from PIL import Image
from rich.console import Console
from rich.table import Table

from splatent_viewer.atomic import write_atomic, write_json_atomic
from splatent_viewer.codecs import CodecConfig
from splatent_viewer.data.fit import FitMode
from splatent_viewer.data.scene import load_scene
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import exit_on_error
from splatent_viewer.evaluation import evaluate_views, mean_metrics, threaded_map
from splatent_viewer.export.camera_paths import orbit_path
from splatent_viewer.export.video import write_mp4
from splatent_viewer.frame import render_frame
from splatent_viewer.paths import assets_dir
from splatent_viewer.progress import track
from splatent_viewer.refiner_training.adapt import AdaptationConfig, adapt_to_scene
from splatent_viewer.trained import SHIPPED_REFINERS, load_refiner_for, trained_scene_from_splats
from splatent_viewer.training.encode import LatentCache
from splatent_viewer.training.trainer import LatentSplatTrainerConfig, encode_views, train_latent_splats

CONSOLE = Console()


@dataclass
class DemoConfig:
    """Train latent Gaussians on a scene and render a decoded flythrough."""

    scene: Path = field(default_factory=lambda: assets_dir() / "demo_scene")
    """Scene folder: nerfstudio-data (transforms.json; PINHOLE/OPENCV/OPENCV_FISHEYE, undistorted as nerfstudio
    does), blender-data (transforms_train.json) or COLMAP (sparse/0 + images/). Default: the embedded demo scene."""
    fit: FitMode = "crop"
    """Images whose size is not a multiple of the codec's downscale: crop (top-left, intrinsics kept) or resize
    (intrinsics scaled); as ns-train splatent's --pipeline.datamanager.fit."""
    latent_cache_dir: Optional[Path] = None
    """Where encoded training latents are cached (<dir>/<codec>/<sha256>.safetensors; shared with ns-train splatent).
    Default: $SPLATENT_LATENT_CACHE, else ~/.cache/splatent/latents."""
    output_dir: Path = Path("outputs/demo")
    """Where the splats, metrics, comparison image and video go."""
    codec: CodecConfig = field(default_factory=CodecConfig)
    """Latent codec (default: the embedded TAEF2)."""
    device: DeviceName = "auto"
    """Compute device; auto = cuda when available."""
    steps: Optional[int] = None
    """Training steps (default: 400 on CPU, 7000 on CUDA)."""
    densify: Optional[bool] = None
    """Densify (gsplat DefaultStrategy) during training (default: on for CUDA, off on CPU to stay within minutes)."""
    trainer: LatentSplatTrainerConfig = field(default_factory=LatentSplatTrainerConfig)
    """Trainer settings (``--steps`` overrides ``trainer.steps``)."""
    video_frames: Optional[int] = None
    """Frames of the orbit video (default: 32 on CPU, 120 on CUDA)."""
    fps: int = 16
    """Frame rate of the video."""
    seed: int = 0
    """Random seed."""
    refiner: str = "guided"
    """Refiner for the enhanced render: guided (the shipped refiner made RGB-guided: the RGB splats plus what it
    changes, the RGB splats exactly until --adapt), embedded (the shipped pure-latent refiner, the paper's setting),
    none, or a folder from `splatent-refiner train`. With one, metrics, compare.png and the video include the enhanced
    render."""
    render_workers: Optional[int] = None
    """Held-out views and video frames rendered at once, each on its share of the CPU threads (default: 2 on
    a CPU with 2+ threads, where it is ~1.4x faster than one frame on all threads; 1 on CUDA)."""
    adapt: bool = False
    """After training, adapt the refiner to this scene's training views (`splatent-refiner adapt`; written to the
    output folder as refiner_adapted/) and evaluate and render with it; metrics.json also keeps the generic
    refiner's held-out numbers."""
    adaptation: AdaptationConfig = field(default_factory=AdaptationConfig)
    """How the refiner is adapted with --adapt (starting weights: --refiner)."""

    def interrupted_message(self) -> str:
        """What Ctrl+C leaves behind (printed by the CLI): every file is written whole (temp file + rename)."""
        return (
            f"{self.output_dir} keeps the files finished so far (splats + references once training has ended); "
            "none is half-written"
        )


def _to_uint8(img: torch.Tensor) -> np.ndarray:
    return (img.clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


class _Phases:
    """Wall seconds per phase of the run (reported in metrics.json)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._t, 2)
        self._t = now


def main(config: DemoConfig) -> dict:
    """Runs the demo and returns the metrics it wrote."""
    t_start = time.perf_counter()
    phases = _Phases()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    # Defaults sized so the CPU run ends in a few minutes on 2 cores, and the GPU run trains fully.
    on_cpu = device.type == "cpu"
    trainer_cfg = config.trainer
    trainer_cfg.steps = config.steps if config.steps is not None else (400 if on_cpu else 7000)
    trainer_cfg.densify = config.densify if config.densify is not None else not on_cpu
    if on_cpu and config.steps is None:
        trainer_cfg.rgb_downscale = max(trainer_cfg.rgb_downscale, 2)
    if not on_cpu and config.steps is None:
        trainer_cfg.strategy.refine_stop_iter = trainer_cfg.steps // 2
    video_frames = config.video_frames if config.video_frames is not None else (32 if on_cpu else 120)
    trainer_cfg.seed = config.seed
    workers = (
        config.render_workers
        if config.render_workers is not None
        else (min(2, torch.get_num_threads()) if on_cpu else 1)
    )

    codec = config.codec.setup(device=device, dtype=torch.float32)
    scene = load_scene(config.scene, size_multiple=codec.downscale, fit=config.fit)
    CONSOLE.print(
        f"[bold]scene[/] {config.scene} ({len(scene.split_indices['train'])} train / "
        f"{len(scene.split_indices['val'])} held-out views) · [bold]codec[/] {codec.name} "
        f"({codec.latent_channels} ch, /{codec.downscale}) · [bold]device[/] {device}"
    )

    # The training views are encoded once: the trainer's targets and the refiner's reference bank. The
    # refiner loads meanwhile, and a bad --refiner fails here, before the minutes of training. So does
    # torch._dynamo, which torch.optim imports on the first optimizer (~2.5 s on the 2-core CPU).
    train_indices = scene.split_indices["train"].tolist()
    with ThreadPoolExecutor(1, thread_name_prefix="splatent-preload") as loader:
        refiner = loader.submit(
            load_refiner_for,
            config.refiner,
            codec=codec,
            device=device,
            dtype=torch.float16 if device.type == "cuda" else torch.float32,
        )
        loader.submit(importlib.import_module, "torch._dynamo")
        with CONSOLE.status(f"encoding {len(train_indices)} training views"):
            train_latents = encode_views(
                scene=scene,
                indices=train_indices,
                codec=codec,
                device=device,
                cache=LatentCache(codec_name=codec.name, root=config.latent_cache_dir),
            )
        refiner = refiner.result()
    phases.done("load_and_encode")

    result = train_latent_splats(
        scene=scene, codec=codec, config=trainer_cfg, device=device, train_latents=train_latents
    )
    params = result.params
    phases.done("train")
    config.output_dir.mkdir(parents=True, exist_ok=True)
    trained = trained_scene_from_splats(
        scene=scene,
        params=params,
        codec=codec,
        sh_degree=result.sh_degree,
        train_indices=train_indices,
        device=device,
        refiner=refiner,
        name=config.output_dir.name,
        train_latents=train_latents,
        output_dir=config.output_dir,
        extra={"steps": trainer_cfg.steps},
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )
    generic: list[dict] = []
    if config.adapt and refiner is not None:
        # The generic refiner's held-out numbers first, then the scene-adapted refiner's (trained on training views only).
        generic = [
            ev.metrics
            for ev in evaluate_views(
                scene=scene, indices=scene.split_indices["val"].tolist(), trained=trained, workers=workers
            )
        ]
        settings = (
            config.adaptation
            if config.refiner in SHIPPED_REFINERS
            else replace(config.adaptation, refiner=config.refiner)
        )
        adapted = adapt_to_scene(
            scene=scene,
            train_views=train_indices,
            codec=codec,
            run=config.output_dir,
            config=settings,
            device=device,
            trained=trained,
        )
        trained.refiner = load_refiner_for(
            adapted.refiner, codec=codec, device=device, dtype=torch.float16 if device.type == "cuda" else torch.float32
        )
        phases.done("adapt")

    # Held-out evaluation: decoded latent render vs RGB splats vs the codec's own round trip.
    rows, panels = [], None
    evaluations = evaluate_views(
        scene=scene, indices=scene.split_indices["val"].tolist(), trained=trained, workers=workers
    )
    for ev in track(
        evaluations, total=len(scene.split_indices["val"]), description="evaluating held-out views", console=CONSOLE
    ):
        rows.append(ev.metrics)
        if panels is None:
            panels = torch.cat(
                [ev.ground_truth, ev.roundtrip, ev.decoded]
                + ([ev.enhanced] if ev.enhanced is not None else [])
                + [ev.rgb],
                dim=1,
            )
    if panels is None:
        CONSOLE.print(
            "[yellow]the scene has no held-out views (nerfstudio's 90/10 split left none): skipping evaluation"
        )
    else:
        image = Image.fromarray(_to_uint8(panels))
        write_atomic(config.output_dir / "compare.png", lambda tmp: image.save(tmp, format="PNG"))
    phases.done("evaluate")

    # Orbit video: decoded latent render | [enhanced |] RGB splats.
    path = orbit_path(train_c2ws=scene.camera_to_worlds[scene.split_indices["train"]], num_frames=video_frames)
    w, h = int(scene.widths[0]), int(scene.heights[0])
    K = scene.Ks[0].to(device)
    outputs = ("decoded", "enhanced", "rgb") if trained.refiner is not None else ("decoded", "rgb")

    def frame(c2w: torch.Tensor) -> np.ndarray:
        f = render_frame(scene=trained, c2w=c2w, K=K, width=w, height=h, outputs=outputs)
        assert f.decoded is not None and f.rgb is not None
        return _to_uint8(torch.cat([f.decoded] + ([f.enhanced] if f.enhanced is not None else []) + [f.rgb], dim=1))

    frames = track(
        threaded_map(frame, path, workers=workers),
        total=len(path),
        description="rendering orbit video",
        console=CONSOLE,
    )
    n_frames = write_mp4(frames=frames, path=config.output_dir / "orbit.mp4", fps=config.fps)
    phases.done("video")

    mean = mean_metrics(rows)
    metrics = {
        "scene": str(config.scene),
        "codec": codec.name,
        "device": str(device),
        "steps": trainer_cfg.steps,
        "num_gaussians": int(params["means"].shape[0]),
        "mean": mean,
        "views": rows,
        **({"generic_refiner_mean": mean_metrics(generic)} if generic else {}),
        "video_frames": n_frames,
        "seconds": time.perf_counter() - t_start,
        "phase_seconds": phases.seconds,
        "render_workers": workers,
    }
    write_json_atomic(config.output_dir / "metrics.json", metrics)

    if not rows:
        CONSOLE.print(f"wrote {config.output_dir} in {metrics['seconds']:.0f} s")
        return metrics
    table = Table(title=f"held-out views ({len(rows)}), {params['means'].shape[0]} Gaussians")
    for col in ("", "PSNR", "SSIM"):
        table.add_column(col)
    table.add_row("decoded latent render", f"{mean['decoded_psnr']:.2f}", f"{mean['decoded_ssim']:.3f}")
    if generic:
        g = mean_metrics(generic)
        table.add_row("enhanced (generic refiner)", f"{g['enhanced_psnr']:.2f}", f"{g['enhanced_ssim']:.3f}")
    if "enhanced_psnr" in mean:
        label = "enhanced (adapted refiner)" if generic else "enhanced (refiner)"
        table.add_row(label, f"{mean['enhanced_psnr']:.2f}", f"{mean['enhanced_ssim']:.3f}")
    table.add_row("RGB splats", f"{mean['rgb_psnr']:.2f}", f"{mean['rgb_ssim']:.3f}")
    table.add_row(f"{codec.name} round trip of the ground truth (ceiling)", f"{mean['codec_psnr']:.2f}", "")
    CONSOLE.print(table)
    CONSOLE.print(
        f"wrote {config.output_dir}/{{splats.safetensors, references.safetensors, metrics.json, compare.png, orbit.mp4}} "
        f"in {metrics['seconds']:.0f} s"
    )
    return metrics


def entrypoint() -> None:
    """CLI entry point."""
    config = tyro.cli(DemoConfig)
    exit_on_error(main, config)


if __name__ == "__main__":
    entrypoint()
