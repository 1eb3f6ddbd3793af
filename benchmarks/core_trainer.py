"""Core latent-splat trainer on one or more scenes: held-out quality and wall time.

    python benchmarks/core_trainer.py --scenes assets/demo_scene PATH/temple --steps 7000 [--device cuda]

For each scene: encode the training views with TAEF2, train latent+RGB Gaussians (gsplat on CUDA,
torch rasterizer on CPU; DefaultStrategy densification), then report held-out PSNR/SSIM of the
decoded latent render and of the RGB splats, the codec's own round trip, Gaussian count and
seconds. Prints a markdown table (and writes it to --output if given).

``--inits frustums camera-box`` compares the random initialisation of scenes without a point cloud: the
trainer's (points in the training views' frustums) against the box around the camera centres it used
before (2026-11-21), which holds nothing a forward-facing rig (LLFF fern) sees (here the box of the training
cameras' centres; the old one also spanned the held-out cameras). ``--downscale`` loads the scenes smaller (sizes
fitted to multiples of 8 by the scene loader, as every tool does) for CPU runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.evaluation import evaluate_views, mean_metrics
from splatent_viewer.refiner_training.build_dataset import evenly_spaced
from splatent_viewer.trained import trained_scene_from_splats
from splatent_viewer.training import points as points_module
from splatent_viewer.training.trainer import LatentSplatTrainerConfig, train_latent_splats


@dataclass
class Args:
    scenes: tuple[Path, ...] = (Path("assets/demo_scene"),)
    """Scene folders (nerfstudio, blender or COLMAP format; fitted to multiples of 8 by the loader, as every tool does)."""
    steps: int = 7000
    """Training steps per scene."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Torch device."""
    output: Optional[Path] = None
    """Also write the table here."""
    trainer: LatentSplatTrainerConfig = field(default_factory=LatentSplatTrainerConfig)
    """Trainer settings (steps overridden by --steps; densification stops at half the steps)."""
    inits: tuple[Literal["frustums", "camera-box"], ...] = ("frustums",)
    """Random initialisations to run (scenes without a point cloud): the trainer's, and/or the old camera box."""
    downscale: int = 1
    """Load the scenes at 1/downscale resolution."""
    train_views: int = 0
    """Also score this many evenly spaced training views (0 = none): their gap to the held-out views shows how much
    the latents overfit the views they were fitted to."""


def _camera_box_points(*, cameras, n, generator):
    """Stands in for ``points.frustum_points``: the random initialisation before 2026-11-21, uniform in the box
    around the (training) camera centres."""
    centres = cameras.c2w[:, :3, 3]
    lo, hi = centres.min(0).values, centres.max(0).values
    return lo + (hi - lo) * torch.rand(n, 3, generator=generator)


def main(args: Args) -> str:
    device = torch.device(args.device)
    codec = load_codec("taef2", device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [
        f"device {name}, torch {torch.__version__}, {args.steps} steps, downscale {args.downscale}, "
        f"{args.trainer.num_random} random initial points (scenes without a point cloud)\n",
        "| scene | size | init | train/held-out | Gaussians | decoded PSNR | decoded SSIM | RGB PSNR | RGB SSIM | TAEF2 round trip PSNR | train s |"
        + (" train views: decoded / RGB PSNR |" if args.train_views else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.train_views else ""),
    ]
    runs = [(path, init) for path in args.scenes for init in args.inits]
    frustums = points_module.frustum_points
    for path, init in runs:
        scene = load_scene(path, downscale=args.downscale, size_multiple=codec.downscale)
        points_module.frustum_points = frustums if init == "frustums" else _camera_box_points
        cfg = args.trainer
        cfg.steps = args.steps
        cfg.strategy.refine_stop_iter = args.steps // 2
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        try:
            result = train_latent_splats(scene=scene, codec=codec, config=cfg, device=device)
        finally:
            points_module.frustum_points = frustums
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        trained = trained_scene_from_splats(
            scene=scene,
            params=result.params,
            codec=codec,
            sh_degree=result.sh_degree,
            train_indices=scene.split_indices["train"].tolist(),
            device=device,
            rgb_background=result.rgb_background,
            latent_background=result.latent_background,
        )
        rows = [
            ev.metrics
            for ev in evaluate_views(scene=scene, indices=scene.split_indices["val"].tolist(), trained=trained)
        ]
        m = mean_metrics(rows)
        extra = ""
        if args.train_views:
            train = scene.split_indices["train"].tolist()
            picked = evenly_spaced(train, min(args.train_views, len(train)) / len(train))
            t = mean_metrics([ev.metrics for ev in evaluate_views(scene=scene, indices=picked, trained=trained)])
            extra = f" {t['decoded_psnr']:.2f} / {t['rgb_psnr']:.2f} |"
        lines.append(
            f"| {Path(path).name} | {int(scene.widths[0])}×{int(scene.heights[0])} | {init} | "
            f"{len(scene.split_indices['train'])}/{len(rows)} | {result.params['means'].shape[0]} | "
            f"{m['decoded_psnr']:.2f} | {m['decoded_ssim']:.3f} | {m['rgb_psnr']:.2f} | {m['rgb_ssim']:.3f} | "
            f"{m['codec_psnr']:.2f} | {seconds:.0f} |" + extra
        )
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    if args.output is not None:
        args.output.write_text(table + "\n")
    return table


if __name__ == "__main__":
    print(main(tyro.cli(Args)))
