"""scripts/train_embedded_refiner.sh end to end at toy size on the CPU: parallel dataset build, the final refiner and
the LOSO folds trained concurrently, one merged table; a failing fold fails the recipe and names its log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from splatent_viewer.refine import load_refiner
from splatent_viewer.refiner_training.dataset import read_index

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "train_embedded_refiner.sh"
TOY = dict(
    SCENES="",
    PROCEDURAL="2",
    PROCEDURAL_VIEWS="6",
    PROCEDURAL_RESOLUTION="32",
    UNIT_STEPS="30",
    STEPS="20",
    LOSO_STEPS="10",
    BATCH="2",
    WORKERS="2",
    DEVICE="cpu",
)


def _run(out: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        env={**os.environ, "PYTHON": sys.executable, **TOY, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_recipe_runs_end_to_end_at_toy_size_on_the_cpu(tmp_path):
    out = tmp_path / "out"
    # REFINER_ARGS reach the final refiner and every fold (architecture and schedule); UNIT_ARGS every unit's trainer.
    proc = _run(
        out,
        REFINER_ARGS="embedded.block-out-channels=32,64 embedded.attention-from-level=1 lr-schedule=cosine guided",
        UNIT_ARGS="loss.decoded-weight=0.5 loss.decoded-every=7",
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]

    index = read_index(out / "work" / "dataset")
    assert [u["key"] for u in index["units"]] == [
        "procedural-001@0.5",
        "procedural-001@0.25",
        "procedural-002@0.5",
        "procedural-002@0.25",
    ]
    trainers = [u["trainer"] for u in index["units"]]
    assert all((t["loss.decoded_weight"], t["loss.decoded_every"], t["steps"]) == (0.5, 7, 30) for t in trainers), (
        trainers
    )
    assert [t["seed"] for t in trainers] == [1, 2, 3, 4]  # trainer seed + the unit's position in the build
    assert all(0 < s["rgb_psnr"] < 60 for s in index["samples"])
    refiner = load_refiner(out / "refiner", device="cpu", dtype=torch.float32)
    assert any(p.abs().sum() > 0 for n, p in refiner.named_parameters() if "conv_out" in n)  # trained, not the identity
    final_log = json.loads((out / "logs" / "train_final_log.json").read_text())
    assert final_log["steps_done"] == 20 and final_log["config"]["mixed_precision"] == "no"
    for folder in (
        out / "refiner",
        *(out / "work" / "loso" / s / "refiner" for s in ("procedural-001", "procedural-002")),
    ):
        config = load_refiner(folder, device="cpu", dtype=torch.float32).config
        assert (config.embedded.block_out_channels, config.embedded.attention_from_level) == ((32, 64), 1), folder
        assert config.guided, folder  # a bare NAME in REFINER_ARGS is a flag: --guided
    fold_log = json.loads((out / "work" / "loso" / "procedural-001" / "train_log.json").read_text())
    assert final_log["config"]["lr_schedule"] == fold_log["config"]["lr_schedule"] == "cosine"
    assert "REFINER_ARGS='embedded.block-out-channels=32,64" in (out / "loso.md").read_text()
    assert "UNIT_ARGS='loss.decoded-weight=0.5 loss.decoded-every=7'" in (out / "loso.md").read_text()
    for name in ("make_dataset", "train_final", "loso_procedural-001", "loso_procedural-002", "merge"):
        assert (out / "logs" / f"{name}.log").is_file(), name

    text = (out / "loso.md").read_text()
    assert text.startswith("Leave-one-scene-out refiner evaluation, CPU, ")
    assert "Command: `SCENES_DIR=" in text and "UNIT_STEPS=30" in text and "Recipe timings: dataset" in text
    assert "steps done/asked: procedural-001 10/10, procedural-002 10/10" in text
    # read from the dataset's index, so a table of a STAGE=train run on an older dataset says how its units were made
    assert "units' core trainer: steps 30, loss.decoded_weight 0.5, loss.decoded_every 7" in text
    table = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines() if line.startswith("| ")]
    assert table[0][:4] == ["scene", "train fraction", "views", "k"] and table[0][7] == "RGB splats PSNR"
    assert [row[:2] + row[3:4] for row in table[1:]] == [
        [s, f, k] for s in ("procedural-001", "procedural-002") for f in ("0.5", "0.25") for k in ("0", "3")
    ]
    assert all(float(row[7]) > 0 and 0 < float(row[10]) <= 1 for row in table[1:])  # the RGB-splat baseline is filled

    # A failing fold fails the whole recipe, naming its log; the dataset is resumed, not rebuilt.
    bad = _run(tmp_path / "bad", WORK_DIR=str(out / "work"), LOSO_SCENES="nope", STEPS="1")
    assert bad.returncode != 0
    assert "FAILED: loso_nope" in bad.stderr and "1 of 2 training processes failed" in bad.stderr
    assert "'nope' is not in" in " ".join(bad.stderr.split())  # the fold's own error, from the tail of its log
    assert " ".join(bad.stdout.split()).count("already built, skipped") == 4  # however narrow the console (COLUMNS)
    assert not (tmp_path / "bad" / "loso.md").exists() and not (tmp_path / "bad" / "refiner").exists()
    # STAGE=final: the final refiner alone on the existing dataset (no dataset build, no folds, no table).
    final = _run(tmp_path / "final", WORK_DIR=str(out / "work"), STAGE="final", STEPS="3")
    assert final.returncode == 0, (final.stdout + final.stderr)[-4000:]
    assert "0 LOSO folds" in final.stdout and "building" not in final.stdout.split("training the final")[1]
    assert json.loads((tmp_path / "final" / "logs" / "train_final_log.json").read_text())["steps_done"] == 3
    assert (tmp_path / "final" / "refiner" / "refiner.safetensors").is_file()
    assert (
        not (tmp_path / "final" / "loso.md").exists()
        and not (tmp_path / "final" / "logs" / "make_dataset.log").exists()
    )
