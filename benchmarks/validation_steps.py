"""Does a validation unit trained as long as the run rank an adaptation's candidates as the held-out views do?

``splatent-refiner adapt`` holds its last fold's unit out of the fine-tuning and picks among the start, WiSE-FT points and
the fine-tuned end by that unit's renders. A unit's Gaussians see ¾ of the training views for fewer steps than the
run's (2000 against 7000 on the GPU, 300 against 1200 on the CPU demo), so its renders are weaker than the run's
and the correction that helps them can overshoot on the run's (benchmarks/RESULTS.md: dino, the CPU demo). This
rebuilds the held-out unit (the same views fitted and rendered, read from the adaptation's dataset index; the
adaptation's core-trainer settings) at each of ``--steps`` and scores the candidates ``start + α·(fine-tuned −
start)`` on its renders, beside their scores on the run's held-out views (which only this scoring reads).

    python benchmarks/validation_steps.py --run /tmp/guard/run/demo --steps 300 1200
    python benchmarks/validation_steps.py --run /tmp/vs/run/dino --downscale 2 --steps 1200 --render 2   # fits 13 of 15
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import torch
import tyro
from enhancement import adaptation_refiners, eval_indices, score_enhanced  # this folder's protocol script

from splatent_viewer.data.scene import load_scene
from splatent_viewer.refine.refiner import with_correction_blur
from splatent_viewer.refiner_training.adapt import (
    AdaptationConfig,
    held_out_unit,
    interpolate_refiners,
    score_refiner,
    unit_trainer,
)
from splatent_viewer.refiner_training.build_dataset import evenly_spaced_views, unit_samples
from splatent_viewer.refiner_training.dataset import DatasetWriter, RefinerDataset, read_index
from splatent_viewer.trained import load_trained_scene


@dataclass
class Args:
    run: Path
    """The benchmark's run folder of one scene (``enhancement.py --output-dir``/SCENE)."""
    steps: tuple[int, ...] = (2000, 7000)
    """Core-trainer steps of each rebuilt validation unit (the adaptation's units: 2000 on CUDA, 300 on the CPU)."""
    adaptation: str = "adapted_guided"
    """The adaptation's folder inside the run."""
    unit: Optional[str] = None
    """The unit to rebuild (default: the one the adaptation's validation held out, the last fold)."""
    render: Optional[int] = None
    """Render only this many of the unit's views (evenly spaced) and fit every other training view, so the unit's
    Gaussians see nearly as many views as the run's (default: the unit's own split). Only the unit's views may be
    left out: the fine-tuning never saw them as targets."""
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    """Candidates: start + α·(fine-tuned − start)."""
    correction_blur: float = 1.0
    """σ in pixels of the blur of every candidate's correction (the adaptation's default)."""
    downscale: int = 1
    """Image downscale the run was trained and scored at (enhancement.py's --downscale; the demo scene: 1)."""
    max_eval_views: int = 20
    """As enhancement.py: the test split where the scene has one, else val, at most this many, evenly spaced."""
    device: str = "cpu"
    output: Optional[Path] = None
    """Also write every score here as JSON."""


def main(args: Args) -> dict:
    """Prints and returns each candidate's score on each rebuilt unit and on the held-out views."""
    device = torch.device(args.device)
    adaptation = args.run / args.adaptation / "adaptation"
    trained = load_trained_scene(args.run, device=device, refiner="none")
    assert trained.scene_path is not None
    scene = load_scene(trained.scene_path, downscale=args.downscale, size_multiple=trained.codec.downscale)
    index = read_index(adaptation / "dataset")
    folds = [u for u in index["units"] if u["key"].startswith("fold-")]
    unit = next(u for u in folds if u["key"] == (args.unit or held_out_unit(index)))
    fitted, rendered, fold = unit["train_views"], unit["rendered_views"], unit["fold"]
    if args.render is not None:
        rendered = evenly_spaced_views(rendered, args.render)
        fitted = sorted((set(unit["train_views"]) | set(unit["rendered_views"])) - set(rendered))
    start, tuned = adaptation_refiners(args.run, args.adaptation, device=args.device)
    candidates = {
        f"{a:g}": with_correction_blur(interpolate_refiners(start, tuned, a), args.correction_blur) for a in args.alphas
    }
    defaults = AdaptationConfig()
    report: dict = {"unit": unit["key"], "fitted": len(fitted), "rendered": len(rendered), "units": {}}
    print(f"{args.run}: {unit['key']} (fits {len(fitted)} training views, renders {len(rendered)})")
    with tempfile.TemporaryDirectory() as work:
        for steps in args.steps:
            trainer = replace(unit_trainer(defaults, device=device), steps=steps)  # adapt_to_scene's units
            started = time.perf_counter()
            samples = unit_samples(
                scene=scene, train_views=fitted, heldout_views=rendered, codec=trained.codec,
                trainer=replace(trainer, seed=defaults.seed + fold), device=device, progress=False,
            )  # fmt: skip
            folder = Path(work) / f"steps-{steps}"
            writer = DatasetWriter(
                folder, codec=trained.codec.name, latent_channels=trained.codec.latent_channels,
                downscale=trained.codec.downscale,
            )  # fmt: skip
            writer.add_unit(key=unit["key"], scene=scene.root.name, info={"steps": steps}, samples=samples)
            seconds = time.perf_counter() - started
            dataset = RefinerDataset(folder)
            scores = {}
            for key, refiner in candidates.items():
                psnr, ssim = score_refiner(refiner, dataset, codec=trained.codec)
                scores[key] = {"psnr": psnr, "ssim": ssim}
            report["units"][str(steps)] = {"seconds": seconds, "scores": scores}
            print(f"  unit at {steps} steps ({seconds:.0f} s): " + ", ".join(
                f"α={k} {s['psnr']:.2f} dB / {s['ssim']:.3f}" for k, s in scores.items() if s["psnr"] is not None))  # fmt: skip
    views = eval_indices(scene, args.max_eval_views)
    workers = min(2, torch.get_num_threads()) if device.type == "cpu" else 1
    report["held_out"] = {}
    for key, refiner in candidates.items():
        trained.refiner = refiner
        report["held_out"][key] = score_enhanced(scene=scene, trained=trained, indices=views, workers=workers)
    print(f"  held-out views ({len(views)}): " + ", ".join(
        f"α={k} {s['psnr']:.2f} dB / {s['ssim']:.3f}" for k, s in report["held_out"].items()))  # fmt: skip
    if args.output is not None:
        args.output.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
