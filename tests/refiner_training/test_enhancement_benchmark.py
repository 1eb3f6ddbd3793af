"""benchmarks/enhancement.py (issue 17's protocol): every refiner variant is scored on the held-out views, generic
cells from a refiner that saw the scene are marked, splatfacto rows merge in, and the goals are checked."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.refiner_training.adapt import AdaptationConfig
from splatent_viewer.trained import ADAPTED_REFINER_DIR


def test_held_out_views_are_the_test_split_evenly_thinned(load_benchmark) -> None:
    bench = load_benchmark("enhancement")
    blender = SimpleNamespace(split_indices={"test": torch.arange(100, 200), "val": torch.arange(100, 200)})
    views = bench.eval_indices(blender, 20)
    assert len(views) == 20 and views[0] == 100 and views[-1] == 199 and views == sorted(set(views))
    nerfstudio = SimpleNamespace(
        split_indices={"test": torch.tensor([], dtype=torch.long), "val": torch.tensor([3, 9])}
    )
    assert bench.eval_indices(nerfstudio, 20) == [3, 9]


def test_protocol_scores_every_refiner_and_marks_a_scene_the_shipped_refiner_saw(
    tiny_scene_dir: Path, tmp_path: Path, load_benchmark
) -> None:
    bench = load_benchmark("enhancement")
    root = tmp_path / "scenes"
    root.mkdir()
    (root / "dino").symlink_to(tiny_scene_dir)  # a name the shipped refiner was trained on
    splatfacto = tmp_path / "ns.json"
    splatfacto.write_text(
        json.dumps(
            [
                {"method": "splatfacto", "scene": "dino", "metrics": {"psnr": 21.5, "ssim": 0.7}},
                {"method": "splatent", "scene": "dino", "metrics": {"psnr": 1.0, "ssim": 0.1}},
            ]
        )
    )
    args = bench.Args(
        scenes=("dino",),
        root=root,
        steps=5,
        max_eval_views=1,
        orbit_frames=2,
        device="cpu",
        splatfacto=splatfacto,
        output_dir=tmp_path / "runs",
        output=tmp_path / "out" / "table.md",
        adaptation=AdaptationConfig(folds=2, unit_steps=3, steps=1, batch_size=2, max_seconds=None),
        adapt_fresh=False,
    )  # the fresh start: tests/refiner_training/test_adapt.py
    (row,) = bench.main(args)

    for variant in ("decoded", "generic latent", "generic guided", "adapted guided", "rgb"):
        assert 0 < row[variant]["psnr"] < 100 and 0 < row[variant]["ssim"] <= 1, variant
    assert set(row["flicker"]) == {"decoded", "generic latent", "generic guided", "adapted guided"}
    assert "SAW" in row["notes"]["generic latent"] and "identity on the guide" in row["notes"]["generic guided"]
    assert (tmp_path / "runs" / "dino" / "adapted_guided" / ADAPTED_REFINER_DIR / "refiner.json").is_file()

    text = args.output.read_text()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| dino 64×64 ")]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert len(cells) == 10 and cells[1] == "1" and cells[3].endswith("(SAW)") and cells[6] == "—"
    assert cells[8] == "21.50 / 0.700"
    assert "Goals: adapted guided PSNR ≥" in text and "generic guided ≥ RGB − 0.5 dB" in text
    assert json.loads(args.output.with_suffix(".json").read_text())[0]["scene"] == "dino"
    assert not list(args.output.parent.glob(".*partial"))

    # benchmarks/score_candidates.py: the adaptation's candidates on the same held-out views; α=0 is the start, the
    # RGB splats themselves (residual identity), so it scores what the protocol's RGB column does
    candidates = load_benchmark("score_candidates")
    scores = candidates.main(
        candidates.Args(
            run=tmp_path / "runs" / "dino", alphas=(0.0, 1.0), max_eval_views=1, guard_views=2,
            output=tmp_path / "candidates.json",
        )
    )  # fmt: skip
    assert set(scores) == {0.0, 1.0} and scores[0.0]["psnr"] == pytest.approx(row["rgb"]["psnr"], abs=1e-3)
    # as the guard scores them: the run's own renders of 2 training views, a finite PSNR for each candidate
    assert all(0 < s["guard_psnr"] < 100 for s in scores.values())
    assert set(json.loads((tmp_path / "candidates.json").read_text())) == {"0", "1"}

    # benchmarks/cross_fit.py: the fine-tuning again with each unit left out, pooled over the units, the soup of the
    # fold refiners on the held-out views; α=0 is the start there too (the RGB splats)
    cross_fit = load_benchmark("cross_fit")
    report = cross_fit.main(cross_fit.Args(run=tmp_path / "runs" / "dino", alphas=(0.0, 1.0), max_eval_views=1))
    assert set(report["units"]) == {"fold-0", "fold-1"} and all(u["steps"] == 1 for u in report["units"].values())
    assert report["held_out"]["0"]["psnr"] == pytest.approx(row["rgb"]["psnr"], abs=1e-3)
    views = sum(u["views"] for u in report["units"].values())
    pooled = sum(u["views"] * u["scores"]["1"]["psnr"] for u in report["units"].values()) / views
    assert report["pooled"]["1"]["psnr"] == pytest.approx(pooled)

    # benchmarks/validation_steps.py: the validation's unit rebuilt at the steps it was built with (the run's 5, as
    # long as the run) scores the candidates exactly as the adaptation's validation did
    rebuild = load_benchmark("validation_steps")
    rebuilt = rebuild.main(
        rebuild.Args(run=tmp_path / "runs" / "dino", steps=(5,), alphas=(0.0, 1.0), max_eval_views=1)
    )
    record = json.loads((tmp_path / "runs" / "dino" / "adapted_guided" / "refiner_adapted.json").read_text())
    validation = record["validation"]
    assert rebuilt["unit"] == validation["unit"] and validation["unit_steps"] == 5
    for candidate in (c for c in validation["candidates"] if c["step"] in (0, 1) and not c["early"]):
        key = f"{candidate['alpha']:g}"
        if key in rebuilt["units"]["5"]["scores"]:
            assert rebuilt["units"]["5"]["scores"][key]["psnr"] == pytest.approx(candidate["psnr"], abs=1e-3)
    assert rebuilt["held_out"]["0"]["psnr"] == pytest.approx(row["rgb"]["psnr"], abs=1e-3)
    # --render 1: one of the unit's views rendered, every other training view fitted
    one = rebuild.main(
        rebuild.Args(run=tmp_path / "runs" / "dino", steps=(2,), render=1, alphas=(0.0,), max_eval_views=1)
    )
    assert one["rendered"] == 1 and one["fitted"] == rebuilt["fitted"] + rebuilt["rendered"] - 1


def test_merge_writes_one_table_from_per_scene_runs(tmp_path: Path, load_benchmark) -> None:
    bench = load_benchmark("enhancement")
    m = {"psnr": 20.0, "ssim": 0.5}
    row = {"scene": "fern", "views": 2, "size": [496, 368], "gaussians": 10, "steps": 7000, "train_seconds": 1.0,
           "decoded": m, "generic latent": m, "generic guided": m, "adapted guided": {"psnr": 27.0, "ssim": 0.9},
           "rgb": {"psnr": 25.0, "ssim": 0.8}, "roundtrip": {"psnr": 29.0}, "flicker": {}, "adapt_seconds": {},
           "notes": {"generic latent": "shipped (SAW this scene)"}}  # fmt: skip
    runs = []
    for name in ("fern", "lego"):
        runs.append(tmp_path / f"{name}.json")
        runs[-1].write_text(json.dumps([{**row, "scene": name}]))
    out = tmp_path / "all.md"
    rows = bench.main(bench.Args(merge=tuple(runs), output=out, device="cpu"))
    assert [r["scene"] for r in rows] == ["fern", "lego"]
    text = out.read_text()
    assert "| fern 496×368 | 2 |" in text and "| lego 496×368 | 2 |" in text
    assert "adapted guided PSNR ≥ 26.00: met" in text  # max(RGB 25, decoded 20 + 3) + 1 (ceiling − RGB ≥ 3)
    with pytest.raises(SplatentError, match="--merge"):
        bench.main(bench.Args(merge=(tmp_path / "gone.json",), output=out, device="cpu"))
