"""Cross-fitted validation of a scene adaptation, post hoc: every unit held out once, scored against the truth.

``splatent-refiner adapt`` holds its last fold's unit out of the fine-tuning and picks among the start, WiSE-FT points and
the fine-tuned end by that unit's 3–4 renders. On the GPU that pick has disagreed with the run's held-out views
(benchmarks/RESULTS.md: temple's unit ranked the start first while the fine-tuned end scored +3.5 dB on the held-out
view). This script asks whether more evidence would pick better: it repeats the adaptation's fine-tuning once per
unit (the same settings, read from the adaptation's ``train/train_log.json``, that unit left out), scores each
fold's candidates ``start + α·(fold − start)`` on the unit it left out and pools them over all units (every training
view's unit render scored by a refiner that never trained on it). The run would get the average of the fold
refiners (a "soup": all start from the same weights) at the pooled pick's α, so the soup's candidates are then
scored on the run's held-out views, which neither the adaptation nor this validation ever reads before that.

    python benchmarks/cross_fit.py --run /tmp/enh/temple --device cuda --output candidates_cv_temple.json
    python benchmarks/cross_fit.py --run /tmp/guard/run/demo --steps 60        # a CPU run (fewer fine-tuning steps)
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import tyro
from enhancement import eval_indices, score_enhanced  # this folder's protocol script: the same views, the same scores

from splatent_viewer.data.scene import load_scene
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.refine.refiner import Refiner, with_correction_blur
from splatent_viewer.refiner_training.adapt import ANCHOR_UNIT, interpolate_refiners, score_refiner, start_refiner
from splatent_viewer.refiner_training.dataset import RefinerDataset, read_index
from splatent_viewer.refiner_training.train import RefinerTrainConfig, train_refiner
from splatent_viewer.trained import load_trained_scene


@dataclass
class Args:
    run: Path
    """The benchmark's run folder of one scene (``enhancement.py --output-dir``/SCENE)."""
    adaptation: str = "adapted_guided"
    """The adaptation's folder inside it (``adaptation/dataset``: its units; ``adaptation/train``: its settings)."""
    alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)
    """Candidates: start + α·(fine-tuned − start), for each fold and for the soup."""
    steps: Optional[int] = None
    """Fine-tuning steps of each fold (default: the adaptation's own)."""
    max_seconds: Optional[float] = None
    """Time budget of each fold's fine-tuning (default: none, all its steps)."""
    correction_blur: float = 1.0
    """σ in pixels of the blur of every candidate's correction (the adaptation's default)."""
    downscale: int = 1
    """Image downscale the run was trained and scored at (enhancement.py's --downscale; the demo scene: 1)."""
    max_eval_views: int = 20
    """As enhancement.py: the test split where the scene has one, else val, at most this many, evenly spaced."""
    device: str = "cpu"
    """Torch device of the fine-tunings, the renders and the refiners."""
    output: Optional[Path] = None
    """Also write every score here as JSON."""


def soup(refiners: list[Refiner]) -> Refiner:
    """The refiner whose every weight is the mean of ``refiners``' (same architecture; the first one's config)."""
    states = [r.state_dict() for r in refiners]
    mixed = copy.deepcopy(refiners[0])
    mixed.load_state_dict(
        {k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) for k, v in states[0].items()}
    )
    return mixed


def fold_config(adaptation: Path, *, unit: str, output: Path, args: Args) -> RefinerTrainConfig:
    """The adaptation's own fine-tuning settings with ``unit`` (and the anchors it left out) held out."""
    logged = json.loads((adaptation / "train" / "train_log.json").read_text())["config"]
    excluded = tuple(u for u in logged["exclude_units"] if u == ANCHOR_UNIT) + (unit,)
    return RefinerTrainConfig(
        dataset=adaptation / "dataset", output=output, guided=logged["guided"], residual=logged["residual"],
        init=logged["init"], steps=args.steps or logged["steps"], lr=logged["lr"], batch_size=logged["batch_size"],
        latent_weight=logged["latent_weight"], warmup_steps=min(logged["warmup_steps"], (args.steps or logged["steps"]) // 10),
        max_seconds=args.max_seconds, seed=logged["seed"], device="cuda" if args.device.startswith("cuda") else "cpu",
        checkpoint_every=10**9, exclude_units=excluded,
    )  # fmt: skip


@torch.no_grad()
def score(refiner: Refiner, dataset: RefinerDataset, *, codec, blur: float) -> tuple[float | None, float | None]:
    return score_refiner(with_correction_blur(refiner.float(), blur), dataset, codec=codec)


def main(args: Args) -> dict:
    """Prints and returns the pooled cross-fitted scores and the soup's held-out scores, by alpha."""
    adaptation = args.run / args.adaptation / "adaptation"
    trained = load_trained_scene(args.run, device=args.device, refiner="none")
    assert trained.scene_path is not None
    units = [u["key"] for u in read_index(adaptation / "dataset")["units"] if u["key"] != ANCHOR_UNIT]
    print(f"{args.run}: {len(units)} units ({', '.join(units)})")
    folds, per_unit = [], {}
    with tempfile.TemporaryDirectory() as work:
        configs = {unit: fold_config(adaptation, unit=unit, output=Path(work) / unit, args=args) for unit in units}
        start = start_refiner(configs[units[0]]).to(args.device)  # every fold's (the same weights and seed)
        for unit, config in configs.items():
            started = time.perf_counter()
            result = train_refiner(config, progress=False)
            tuned = load_refiner(result.refiner_dir, device=args.device, dtype=torch.float32)
            held = RefinerDataset(adaptation / "dataset", units=[unit])
            rows = {}
            for alpha in args.alphas:
                psnr, ssim = score(
                    interpolate_refiners(start, tuned, alpha), held, codec=trained.codec, blur=args.correction_blur
                )
                rows[f"{alpha:g}"] = {"psnr": psnr, "ssim": ssim}
            per_unit[unit] = {
                "views": len(held),
                "steps": result.steps_done,
                "seconds": time.perf_counter() - started,
                "scores": rows,
            }
            print(
                f"  {unit} ({len(held)} views, {result.steps_done} steps): "
                + ", ".join(
                    f"α={a} {r['psnr']:.2f}" if r["psnr"] is not None else f"α={a} diverged" for a, r in rows.items()
                )
            )
            folds.append(tuned)
    pooled = {}
    total = sum(u["views"] for u in per_unit.values())
    for alpha in args.alphas:
        key = f"{alpha:g}"
        cells = [(u["views"], u["scores"][key]) for u in per_unit.values()]
        if any(c["psnr"] is None for _, c in cells):
            pooled[key] = {"psnr": None, "ssim": None}
            continue
        pooled[key] = {m: sum(n * c[m] for n, c in cells) / total for m in ("psnr", "ssim")}
    # the truth: the soup's candidates on the run's held-out views
    scene = load_scene(trained.scene_path, downscale=args.downscale, size_multiple=trained.codec.downscale)
    views = eval_indices(scene, args.max_eval_views)
    mixed = soup(folds)
    workers = min(2, torch.get_num_threads()) if torch.device(args.device).type == "cpu" else 1
    truth = {}
    for alpha in args.alphas:
        trained.refiner = with_correction_blur(interpolate_refiners(start, mixed, alpha).float(), args.correction_blur)
        truth[f"{alpha:g}"] = score_enhanced(scene=scene, trained=trained, indices=views, workers=workers)
    print(f"pooled over {total} unit views -> soup on {len(views)} held-out views:")
    for key in pooled:
        p, t = pooled[key], truth[key]
        cv = "diverged" if p["psnr"] is None else f"{p['psnr']:.2f} dB / {p['ssim']:.3f}"
        print(f"  α={key}: cross-fitted {cv}  |  held-out {t['psnr']:.2f} dB / {t['ssim']:.3f}")
    report = {"units": per_unit, "pooled": pooled, "held_out": truth, "held_out_views": len(views)}
    if args.output is not None:
        args.output.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main(tyro.cli(Args))
