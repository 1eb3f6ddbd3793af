"""``splatent-refiner``: make-dataset (procedural scenes), train and eval through the CLI parser; errors exit 1."""

from __future__ import annotations

import pytest

from splatent_viewer.refiner_training.dataset import read_index
from splatent_viewer.scripts.refiner_cli import entrypoint


def test_cli_make_dataset_with_a_procedural_scene(tmp_path):
    out = tmp_path / "ds"
    entrypoint(
        [
            "make-dataset",
            "--output",
            str(out),
            "--procedural",
            "1",
            "--procedural-seed",
            "5",
            "--procedural-views",
            "4",
            "--procedural-resolution",
            "32",
            "--train-fractions",
            "0.5",
            "--steps",
            "2",
            "--densify",
            "False",
            "--trainer.loss.rgb-weight",
            "0",
            "--device",
            "cpu",
        ]
    )
    index = read_index(out)
    assert (out / "scenes" / "procedural-005" / "transforms.json").is_file()
    assert [(u["key"], u["num_train_views"], u["num_samples"]) for u in index["units"]] == [
        ("procedural-005@0.5", 2, 2)
    ]
    assert {s["scene"] for s in index["samples"]} == {"procedural-005"}


def test_cli_train_then_eval(refiner_dataset_dir, tmp_path, capsys):
    entrypoint(
        [
            "train",
            "--dataset",
            str(refiner_dataset_dir),
            "--output",
            str(tmp_path / "run"),
            "--steps",
            "2",
            "--scenes",
            "b",
            "--batch-size",
            "2",
            "--crop",
            "4",
            "--embedded.block-out-channels",
            "32",
            "--embedded.attention-from-level",
            "1",
            "--device",
            "cpu",
        ]
    )
    assert (tmp_path / "run" / "refiner" / "refiner.safetensors").is_file()
    table = tmp_path / "table.md"
    entrypoint(
        [
            "eval",
            "--dataset",
            str(refiner_dataset_dir),
            "--refiner",
            str(tmp_path / "run" / "refiner"),
            "--scenes",
            "b",
            "--ks",
            "0",
            "2",
            "--output",
            str(table),
            "--device",
            "cpu",
        ]
    )
    rows = [line.split("|")[1:5] for line in table.read_text().splitlines()[4:]]
    assert [[c.strip() for c in r] for r in rows] == [
        ["b", "–", "2", "0"],
        ["b", "–", "2", "2"],
        ["all", "–", "2", "0"],
        ["all", "–", "2", "2"],
    ]


def test_cli_errors_exit_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        entrypoint(["eval", "--dataset", str(tmp_path / "none"), "--refiner", str(tmp_path), "--device", "cpu"])
    assert exc.value.code == 1
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert out.startswith("error:") and "index.json does not exist" in out
