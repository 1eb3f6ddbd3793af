"""Leave-one-scene-out refiner evaluation over a refiner dataset.

    python benchmarks/refiner_loso.py --dataset data/refiner --output-dir outputs/loso --steps 1500 --batch-size 16

For each scene S of the dataset (or of --scenes): train a refiner on every other scene
(``exclude_scenes=[S]``), then evaluate it on S's samples with each k of --ks (default 0 and 3):
PSNR/SSIM of the decoded render vs the enhanced render against the ground-truth images. Writes one
markdown table (device, date and command at the top) to OUTPUT_DIR/loso.md (+ loso.json), and
each fold's refiner to OUTPUT_DIR/<scene>/refiner.

Size --steps/--batch-size to the budget: the total is (number of scenes) × steps refiner steps.
"""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro

from splatent_viewer.codecs import load_codec
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.refine.dataset import RefinerDataset
from splatent_viewer.refine.evaluate import evaluate_refiner, markdown_table
from splatent_viewer.refine.train import RefinerTrainConfig, train_refiner


@dataclass
class Args:
    dataset: Path
    """Refiner dataset folder (splatent-refiner make-dataset)."""
    output_dir: Path = Path("outputs/refiner_loso")
    """Folds' refiners and the table go here."""
    scenes: Optional[tuple[str, ...]] = None
    """Held-out scenes to run (default: every scene of the dataset)."""
    ks: tuple[int, ...] = (0, 3)
    """References to evaluate with."""
    steps: int = 1500
    """Refiner training steps per fold."""
    batch_size: int = 16
    """Samples per step."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Compute device."""
    train: RefinerTrainConfig = field(default_factory=RefinerTrainConfig)
    """Other refiner training settings (dataset, output, steps, batch size and scenes are set per fold)."""


def main(args: Args) -> str:
    """Runs every fold; returns the markdown written."""
    names = list(args.scenes) if args.scenes else RefinerDataset(args.dataset).scene_names()
    if len(RefinerDataset(args.dataset).scene_names()) < 2:
        raise SystemExit("leave-one-scene-out needs a dataset with at least two scenes")
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    rows, timings = [], {}
    for scene in names:
        start = time.perf_counter()
        fold = replace(args.train, dataset=args.dataset, output=args.output_dir / scene, steps=args.steps,
                       batch_size=args.batch_size, scenes=None, exclude_scenes=(scene,), device=args.device)
        result = train_refiner(fold)
        dataset = RefinerDataset(args.dataset, scenes=[scene])
        codec = load_codec(dataset.codec, path=args.train.codec_path, device=device)
        refiner = load_refiner(result.refiner_dir, device=device, codec=codec)
        fold_rows, _ = evaluate_refiner(dataset=dataset, refiner=refiner, codec=codec, ks=args.ks)
        rows += [r for r in fold_rows if r["scene"] == scene]
        timings[scene] = time.perf_counter() - start
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    header = (f"Leave-one-scene-out refiner evaluation, {device_name}, {datetime.date.today().isoformat()}.\n"
              f"Command: `{' '.join(shlex.quote(a) for a in sys.argv)}`\n"
              f"Per fold: train on the other scenes for {args.steps} steps × batch {args.batch_size}, evaluate the held-out "
              f"scene's samples (PSNR/SSIM against the ground-truth images).\n"
              f"Fold wall time (s): {', '.join(f'{s} {t:.0f}' for s, t in timings.items())}\n\n")
    text = header + markdown_table(rows)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "loso.md").write_text(text)
    (args.output_dir / "loso.json").write_text(json.dumps({"rows": rows, "seconds": timings}, indent=1))
    print(text)
    return text


if __name__ == "__main__":
    main(tyro.cli(Args))
