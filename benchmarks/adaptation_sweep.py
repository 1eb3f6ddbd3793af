"""Issue 17's ablations of scene adaptation: fine-tuning steps and learning rate vs gain, and more references (k=5).

    python benchmarks/adaptation_sweep.py --dataset RUN/adapted_guided/adaptation/dataset --device cpu \\
        --output benchmarks/results/adaptation_sweep_cpu.md

``--dataset`` is an adaptation's unit dataset (``splatent-refiner adapt`` / ``benchmarks/enhancement.py`` write one:
leave-some-out units of the run's training views only). Its last fold is held out, as ``adapt``'s validation holds it
out; each variant fine-tunes the starting refiner (the embedded refiner made RGB-guided: the identity on the guide)
on the other units, exactly as ``adapt`` does (:func:`~splatent_viewer.refiner_training.train.train_refiner`, same
warm-up, constant learning rate, batch and reference sampling), and is scored on the held-out unit: enhanced PSNR / SSIM of renders of training views
that unit's Gaussians never saw. A variant ``LR:STEPS:K`` fine-tunes ``STEPS`` steps (0: the start itself) at ``LR``
with a refiner built for ``K`` references (the embedded one was trained with 3, on a 2×2 grid; 5 gives the same weights
a 2×3 grid with two more of the nearest training views).
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

from splatent_viewer.codecs import load_codec
from splatent_viewer.refine import Refiner
from splatent_viewer.refine.checkpoint import load_refiner, save_refiner
from splatent_viewer.refine.refiner import guided_from
from splatent_viewer.refiner_training.adapt import held_out_unit, interpolate_refiners
from splatent_viewer.refiner_training.dataset import RefinerDataset, read_index
from splatent_viewer.refiner_training.evaluate import ALL, evaluate_refiner
from splatent_viewer.refiner_training.train import RefinerTrainConfig, train_refiner


@dataclass
class Args:
    dataset: Path
    """An adaptation's unit dataset (its last fold is held out)."""
    variants: tuple[str, ...] = ("0:0:3", "0:0:5", "5e-5:25:3", "5e-5:50:3", "1e-5:50:3", "5e-5:50:5")
    """``lr:steps:k[:alpha...]`` (steps 0: the starting refiner, scored as is, alpha 0; each ``alpha`` also scores
    the weights ``start + alpha·(fine-tuned − start)``, WiSE-FT's interpolation, as ``adapt``'s validation does)."""
    batch_size: int = 4
    """Samples per fine-tuning step (adapt's default)."""
    residual: bool = False
    """Residual guided refiners (adapt's default since they exist; needs a dataset that kept the RGB splats). False
    reproduces the plain guided rows in benchmarks/RESULTS.md."""
    device: str = "cpu"
    seed: int = 0
    output: Optional[Path] = None
    """Markdown table (+ .json beside it)."""


def with_references(refiner: Refiner, k: int) -> Refiner:
    """The same weights on the grid of ``k`` references (a larger grid holds the extra nearest training views)."""
    if k == refiner.config.num_references:
        return refiner
    return Refiner(config=replace(refiner.config, num_references=k), backbone=refiner.backbone)


def main(args: Args) -> list[dict]:
    device = torch.device(args.device)
    codec = load_codec("taef2", device=device, dtype=torch.float32)
    held = held_out_unit(read_index(args.dataset))  # as adapt's validation holds it out
    held_out = RefinerDataset(args.dataset, units=[held])
    start = guided_from(load_refiner("embedded", device="cpu", dtype=torch.float32), residual=args.residual)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="adapt_sweep_") as tmp:
        for variant in args.variants:
            lr_text, steps_text, k_text, *alpha_texts = variant.split(":")
            lr, steps, k = float(lr_text), int(steps_text), int(k_text)
            refiner = with_references(start, k)
            seconds = 0.0
            if steps > 0:
                init = save_refiner(refiner, Path(tmp) / f"start_k{k}")
                config = RefinerTrainConfig(
                    dataset=args.dataset,
                    output=Path(tmp) / variant.replace(":", "_"),
                    guided=True,
                    residual=args.residual,
                    init=str(init),
                    steps=steps,
                    lr=lr,
                    batch_size=args.batch_size,
                    warmup_steps=min(50, steps // 10),  # as adapt
                    seed=args.seed,
                    device="cuda" if device.type == "cuda" else "cpu",
                    checkpoint_every=steps,
                    exclude_units=(held,),
                )
                t0 = time.perf_counter()
                result = train_refiner(config, progress=False)
                seconds = time.perf_counter() - t0
                refiner = load_refiner(result.refiner_dir, device=device, dtype=torch.float32)
            candidates = [(1.0 if steps > 0 else 0.0, refiner)] + [
                (float(a), interpolate_refiners(with_references(start, k), refiner, float(a))) for a in alpha_texts
            ]
            for alpha, candidate in candidates:
                candidate = candidate.to(device).eval()
                scored, _ = evaluate_refiner(dataset=held_out, refiner=candidate, codec=codec, ks=[k], progress=False)
                row = next(r for r in scored if r["scene"] == ALL and r["k"] == k)
                rows.append({
                    "variant": variant, "lr": lr, "steps": steps, "k": k, "alpha": alpha, "seconds": seconds,
                    "views": row["views"], "enhanced_psnr": row["enhanced_psnr"], "enhanced_ssim": row["enhanced_ssim"],
                    "decoded_psnr": row["decoded_psnr"], "rgb_psnr": row.get("rgb_psnr"), "rgb_ssim": row.get("rgb_ssim"),
                })  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"Adaptation sweep on {args.dataset} (held-out unit {held}, {rows[0]['views']} training-view renders never "
        f"seen by its Gaussians nor by the fine-tuning), {args.device}, batch {args.batch_size}, seed {args.seed}.",
        "",
        "| lr | steps | k | alpha | enhanced PSNR / SSIM | Δ vs start (k=3) | fine-tune s |",
        "|---|---|---|---|---|---|---|",
    ]
    base = next((r for r in rows if r["steps"] == 0 and r["k"] == 3), rows[0])
    for r in rows:
        lines.append(
            f"| {r['lr']:g} | {r['steps']} | {r['k']} | {r['alpha']:g} | {r['enhanced_psnr']:.2f} / {r['enhanced_ssim']:.3f} | "
            f"{r['enhanced_psnr'] - base['enhanced_psnr']:+.2f} dB / {r['enhanced_ssim'] - base['enhanced_ssim']:+.3f} | "
            f"{r['seconds']:.0f} |"
        )
    if base.get("rgb_psnr") is not None:
        lines += ["", f"RGB splats of the same units on these views: {base['rgb_psnr']:.2f} / {base['rgb_ssim']:.3f}; "
                  f"decoded latent render {base['decoded_psnr']:.2f} dB."]  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
        args.output.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
