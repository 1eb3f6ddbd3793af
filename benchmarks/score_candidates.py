"""Scores an adaptation's validation candidates on the run's held-out views: what the validation could not see.

``benchmarks/enhancement.py`` scores only the refiner the adaptation kept. This scores the start (the shipped refiner
made guided and residual), WiSE-FT interpolations toward the fine-tuned end point and the end point itself (the
adaptation's ``train/refiner``; earlier snapshots are pruned once it finishes) on the same held-out views, so a
validation rule (the held-out unit alone, or with the run's own renders as a guard) can be checked against the truth.

    python benchmarks/score_candidates.py --run /tmp/guard/run/demo --adaptation adapted_guided --alphas 0 0.25 0.5 1
    python benchmarks/score_candidates.py --run /tmp/guard/run/dino --downscale 2
    python benchmarks/score_candidates.py --run /tmp/exp/lego_snap/lego --downscale 4 --alphas 1 --correction-blur 1
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from enhancement import (  # this folder's protocol script: the same views, the same scores
    adaptation_refiners,
    eval_indices,
    score_enhanced,
)

from splatent_viewer.data.scene import load_scene
from splatent_viewer.refine.refiner import with_correction_blur
from splatent_viewer.refiner_training.adapt import interpolate_refiners, run_check_dataset, score_refiner
from splatent_viewer.refiner_training.dataset import RefinerDataset
from splatent_viewer.trained import load_trained_scene


@dataclass
class Args:
    run: Path
    """The benchmark's run folder of one scene (``enhancement.py --output-dir``/SCENE)."""
    adaptation: str = "adapted_guided"
    """The adaptation's folder inside it (its ``adaptation/train/refiner`` is the fine-tuned end point)."""
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    """Candidates: start + α·(fine-tuned − start)."""
    downscale: int = 1
    """Image downscale the run was trained and scored at (enhancement.py's --downscale; the demo scene: 1)."""
    correction_blur: float = 0.0
    """σ in pixels of the blur of each candidate's correction (``RefinerConfig.correction_blur``; the adaptation's
    default since the twelfth session is 1; the runs before it kept 0)."""
    max_eval_views: int = 20
    """As enhancement.py: the test split where the scene has one, else val, at most this many, evenly spaced."""
    output: Path | None = None
    """Also write the scores here as JSON (``{alpha: {psnr, ssim}}``)."""
    device: str = "cpu"
    """Torch device of the renders and the refiners (``cuda`` in benchmarks/enhancement_gpu.sh's ``SCORE=1``)."""
    guard_views: int = 0
    """Also score each candidate as the adaptation's guard does (``AdaptationConfig.guard_views``): on the run's own
    renders of this many of its training views, for runs adapted before the guard existed (0: not)."""


@torch.no_grad()
def main(args: Args) -> dict[float, dict[str, float]]:
    """Prints and returns each candidate's mean held-out PSNR / SSIM, by alpha."""
    trained = load_trained_scene(args.run, device=args.device, refiner="none")
    assert trained.scene_path is not None
    scene = load_scene(trained.scene_path, downscale=args.downscale, size_multiple=trained.codec.downscale)
    views = eval_indices(scene, args.max_eval_views)
    start, tuned = adaptation_refiners(args.run, args.adaptation, device=args.device)
    print(f"{args.run}: {len(views)} held-out views")
    workers = min(2, torch.get_num_threads()) if torch.device(args.device).type == "cpu" else 1
    with tempfile.TemporaryDirectory() as work:
        guard = None
        if args.guard_views > 0:
            train = scene.split_indices["train"].tolist()
            folder, _ = run_check_dataset(
                trained=trained, scene=scene, train_views=train, views=args.guard_views, output=Path(work) / "guard"
            )
            guard = RefinerDataset(folder)
        results = {}
        for alpha in args.alphas:
            trained.refiner = with_correction_blur(
                interpolate_refiners(start, tuned, alpha).float(), args.correction_blur
            )
            scores = score_enhanced(scene=scene, trained=trained, indices=views, workers=workers)
            line = f"alpha {alpha:g}: {scores['psnr']:.2f} dB / {scores['ssim']:.3f}"
            if guard is not None:  # as the adaptation's validation scores its candidates there
                guard_psnr, _ = score_refiner(trained.refiner, guard, codec=trained.codec)
                scores["guard_psnr"] = float("nan") if guard_psnr is None else guard_psnr
                line += f" (the run's own renders {scores['guard_psnr']:.2f} dB)"
            print(line)
            results[alpha] = scores
    if args.output is not None:
        args.output.write_text(json.dumps({f"{a:g}": s for a, s in results.items()}, indent=1))
    return results


if __name__ == "__main__":
    main(tyro.cli(Args))
