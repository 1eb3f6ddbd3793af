"""Leave-one-scene-out refiner evaluation over a refiner dataset.

    python benchmarks/refiner_loso.py --dataset data/refiner --output-dir outputs/loso --steps 1500 --batch-size 16

For each scene S of the dataset (or of --scenes): train a refiner on every other scene
(``exclude_scenes=[S]``), then evaluate it on S's samples with each k of --ks (default 0 and 3):
PSNR/SSIM of the decoded render, the enhanced render and the RGB splats against the ground-truth
images, per training fraction of S's units (1.0 = S's standard held-out split, smaller = sparser).
Each fold writes OUTPUT_DIR/<scene>/refiner and OUTPUT_DIR/<scene>/fold.json (its rows, time,
device, command); then the folds run are merged into one markdown table (device, date and command
at the top), OUTPUT_DIR/loso.md (+ loso.json); ``--merge`` makes that table alone from fold.json files.

Folds in parallel (separate processes, e.g. on one GPU), then one merge:

    for s in temple dino; do python benchmarks/refiner_loso.py --dataset D --output-dir O --scenes $s --no-table & done; wait
    python benchmarks/refiner_loso.py --dataset D --output-dir O --merge --scenes temple dino

Size --steps/--batch-size to the budget: the total is (number of scenes) × steps refiner steps
(``--train.max-seconds`` caps a fold's training time).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro

from splatent_viewer.codecs import load_codec
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.refiner_training.dataset import RefinerDataset, read_index
from splatent_viewer.refiner_training.evaluate import evaluate_refiner, markdown_table
from splatent_viewer.refiner_training.train import RefinerTrainConfig, train_refiner
from splatent_viewer.training.trainer import LatentSplatTrainerConfig

FOLD_FILE = "fold.json"


@dataclass
class Args:
    dataset: Path
    """Refiner dataset folder (splatent-refiner make-dataset)."""
    output_dir: Path = Path("outputs/refiner_loso")
    """Folds' refiners, fold.json files and the table go here."""
    scenes: Optional[tuple[str, ...]] = None
    """Held-out scenes to run (default: every scene of the dataset); with --merge, the folds to merge (default: all)."""
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
    table: bool = True
    """After the folds, write OUTPUT_DIR/loso.md from them; --no-table when several processes run folds into
    one OUTPUT_DIR at once (then --merge once at the end)."""
    merge: bool = False
    """Train nothing: merge the folds' fold.json files (of --scenes, default all) into OUTPUT_DIR/loso.md."""
    command: Optional[str] = None
    """Command recorded in the table (default: this process's command line)."""
    note: str = ""
    """Extra text for the table's header (e.g. a recipe's timings)."""


def _device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _command(args: Args) -> str:
    return args.command if args.command is not None else " ".join(shlex.quote(a) for a in sys.argv)


def run_fold(args: Args, scene: str) -> dict:
    """Trains the fold without ``scene``, evaluates it on ``scene``; writes and returns OUTPUT_DIR/<scene>/fold.json."""
    device = _device(args.device)
    start = time.perf_counter()
    fold = replace(
        args.train,
        dataset=args.dataset,
        output=args.output_dir / scene,
        steps=args.steps,
        batch_size=args.batch_size,
        scenes=None,
        exclude_scenes=(scene,),
        device=args.device,
    )
    result = train_refiner(fold)
    train_seconds = time.perf_counter() - start
    dataset = RefinerDataset(args.dataset, scenes=[scene])
    codec = load_codec(dataset.codec, path=args.train.codec_path, device=device)
    refiner = load_refiner(result.refiner_dir, device=device, codec=codec)
    fold_rows, _ = evaluate_refiner(dataset=dataset, refiner=refiner, codec=codec, ks=args.ks)
    data = {
        "scene": scene, "rows": [r for r in fold_rows if r["scene"] == scene],
        "train_scenes": RefinerDataset(args.dataset, exclude_scenes=[scene]).scene_names(),
        "steps": args.steps, "steps_done": result.steps_done, "batch_size": args.batch_size,
        "train_seconds": train_seconds, "seconds": time.perf_counter() - start,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "date": datetime.date.today().isoformat(), "command": _command(args),
    }  # fmt: skip
    _write_atomic(args.output_dir / scene / FOLD_FILE, json.dumps(data, indent=1))
    return data


def unit_trainer_summary(index: dict) -> str:
    """The dataset units' core-trainer settings that differ from the defaults (steps always; seeds left out), e.g.
    "steps 2000, loss.decoded_weight 1.0, loss.decoded_every 1"; "" for datasets built before units recorded them."""
    recorded = [u["trainer"] for u in index.get("units", []) if "trainer" in u]
    if not recorded:
        return ""
    defaults = LatentSplatTrainerConfig().scalar_settings()
    parts = []
    for key in dict.fromkeys(k for t in recorded for k in t):
        values = list(dict.fromkeys(t.get(key) for t in recorded))
        if key != "seed" and (key == "steps" or values != [defaults.get(key)]):
            parts.append(f"{key} {' / '.join(map(str, values))}")
    missing = len(index["units"]) - len(recorded)
    return ", ".join(parts) + (f" ({missing} unit{'s' * (missing > 1)} without a record)" if missing else "")


def merge_folds(args: Args) -> str:
    """One table from the folds' fold.json files in OUTPUT_DIR (those of --scenes, which must all exist); returns it."""
    if args.scenes:
        paths = [args.output_dir / s / FOLD_FILE for s in args.scenes]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SplatentError(
                f"No fold result {', '.join(missing)}: those folds did not finish (see their logs); "
                "rerun them, or merge without them (--scenes)."
            )
    else:
        paths = sorted(args.output_dir.glob(f"*/{FOLD_FILE}"))
        if not paths:
            raise SplatentError(f"No */{FOLD_FILE} in {args.output_dir}: run the folds first.")
    folds = [json.loads(p.read_text()) for p in paths]
    rows = [r for f in folds for r in f["rows"]]
    index = read_index(args.dataset)
    scenes = list(dict.fromkeys(s["scene"] for s in index["samples"]))
    steps = ", ".join(f"{f['scene']} {f['steps_done']}/{f['steps']}" for f in folds)
    seconds = ", ".join(f"{f['scene']} {f['seconds']:.0f}" for f in folds)
    units = unit_trainer_summary(index)
    header = (
        f"Leave-one-scene-out refiner evaluation, {', '.join(sorted({f['device'] for f in folds}))}, "
        f"{', '.join(sorted({f['date'] for f in folds}))}.\n"
        f"Command: `{_command(args)}`\n"
        f"Dataset `{args.dataset}`: {len(index['samples'])} samples, {len(index['units'])} units, {len(scenes)} scenes"
        + (f"; units' core trainer: {units}.\n" if units else ".\n")
        + f"Per fold: train on every other scene (batch {', '.join(sorted({str(f['batch_size']) for f in folds}))}; "
        f"steps done/asked: {steps}), evaluate the held-out scene's samples per training fraction "
        f"(1 = its standard held-out split) against the ground-truth images; RGB splats = the same Gaussians' RGB render.\n"
        f"Fold wall time (s, train + eval): {seconds}\n" + (f"{args.note}\n" if args.note else "") + "\n"
    )
    text = header + markdown_table(rows)
    _write_atomic(args.output_dir / "loso.md", text)
    _write_atomic(args.output_dir / "loso.json", json.dumps({"rows": rows, "folds": folds}, indent=1))
    print(text)
    return text


def main(args: Args) -> str:
    """Runs the folds (unless --merge), then merges them (unless --no-table); returns the markdown (or "")."""
    if args.merge:
        return merge_folds(args)
    all_scenes = RefinerDataset(args.dataset).scene_names()
    if len(all_scenes) < 2:
        raise SplatentError(
            f"Leave-one-scene-out needs a dataset with at least two scenes; {args.dataset} has {all_scenes}."
        )
    scenes = args.scenes or tuple(all_scenes)
    for scene in scenes:
        run_fold(args, scene)
    return merge_folds(replace(args, scenes=scenes)) if args.table else ""


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
