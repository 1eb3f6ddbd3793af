"""benchmarks/refiner_loso.py: folds run as separate processes (--no-table) and one --merge table, with the
RGB-splat columns and the per-fold steps/device; a missing fold is one clear error."""

from __future__ import annotations

import json

import pytest

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import EmbeddedUNetConfig, load_refiner
from splatent_viewer.refiner_training.train import RefinerTrainConfig


def test_folds_then_merge_write_one_table(refiner_dataset_dir, tmp_path, load_benchmark):
    loso = load_benchmark("refiner_loso")
    train = RefinerTrainConfig(
        embedded=EmbeddedUNetConfig(block_out_channels=(32,), attention_from_level=1),
        crop=4,
        mixed_precision="no",
        checkpoint_every=1000,
    )
    base = dict(
        dataset=refiner_dataset_dir,
        output_dir=tmp_path / "loso",
        steps=2,
        batch_size=1,
        device="cpu",
        train=train,
        ks=(0, 2),
    )
    for scene in ("b", "c"):  # as the recipe's separate processes would, each without a table
        assert loso.main(loso.Args(**base, scenes=(scene,), table=False)) == ""
        fold = json.loads((tmp_path / "loso" / scene / "fold.json").read_text())
        assert fold["scene"] == scene and fold["steps_done"] == 2 and fold["device"] == "CPU"
        assert scene not in fold["train_scenes"] and len(fold["train_scenes"]) == 2
        assert [(r["scene"], r["k"]) for r in fold["rows"]] == [(scene, 0), (scene, 2)]
        load_refiner(tmp_path / "loso" / scene / "refiner")
    assert not (tmp_path / "loso" / "loso.md").exists()

    text = loso.main(loso.Args(**base, scenes=("b", "c"), merge=True, command="recipe.sh OUT", note="timings: x"))
    assert (tmp_path / "loso" / "loso.md").read_text() == text
    assert "Command: `recipe.sh OUT`" in text and "timings: x" in text and "b 2/2, c 2/2" in text
    assert "CPU" in text.splitlines()[0] and "6 samples, 3 units, 3 scenes" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert "RGB splats PSNR" in table[0]
    assert [[c.strip() for c in line.split("|")[1:5]] for line in table[1:]] == [
        ["b", "–", "2", "0"],
        ["b", "–", "2", "2"],
        ["c", "–", "1", "0"],
        ["c", "–", "1", "2"],
    ]
    merged = json.loads((tmp_path / "loso" / "loso.json").read_text())
    assert [f["scene"] for f in merged["folds"]] == ["b", "c"] and len(merged["rows"]) == 4

    with pytest.raises(SplatentError, match="did not finish"):
        loso.main(loso.Args(**base, scenes=("a", "b"), merge=True))


def test_unit_trainer_summary_names_what_differs_from_the_defaults(load_benchmark):
    loso = load_benchmark("refiner_loso")
    base = {"steps": 2000, "loss.decoded_weight": 0.0, "lr.latents": 0.025, "densify": True, "seed": 1}
    units = [
        {"trainer": {**base, "seed": 1}},
        {"trainer": {**base, "loss.decoded_weight": 1.0, "seed": 2}},
        {"key": "old"},
    ]
    summary = loso.unit_trainer_summary({"units": units})
    # seeds always differ per unit and are left out; defaults (lr.latents, densify) are not repeated
    assert summary == "steps 2000, loss.decoded_weight 0.0 / 1.0 (1 unit without a record)"
    assert loso.unit_trainer_summary({"units": [{"key": "old"}]}) == ""
