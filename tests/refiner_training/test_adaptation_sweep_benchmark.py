"""benchmarks/adaptation_sweep.py (issue 17's steps/lr/k ablation): fine-tunes the guided start on an adaptation's
units but the last and scores each variant on that held-out unit."""

from __future__ import annotations

import json
from pathlib import Path


def test_adaptation_sweep_scores_start_and_fine_tuned_variants(
    tiny_adapted_run: Path, tmp_path: Path, load_benchmark
) -> None:
    run = tiny_adapted_run
    bench = load_benchmark("adaptation_sweep")
    out = tmp_path / "sweep.md"
    rows = bench.main(
        bench.Args(
            dataset=run / "adaptation" / "dataset",
            variants=("0:0:3", "0:0:5", "1e-3:2:5:0:0.5"),
            batch_size=2,
            output=out,
        )
    )
    assert [(r["steps"], r["k"], r["alpha"]) for r in rows] == [(0, 3, 0), (0, 5, 0), (2, 5, 1), (2, 5, 0), (2, 5, 0.5)]
    for r in rows:
        assert r["views"] >= 1 and 5.0 < r["enhanced_psnr"] < 60.0 and 0.0 < r["enhanced_ssim"] <= 1.0
    assert rows[0]["seconds"] == 0.0 and rows[2]["seconds"] > 0.0
    assert rows[2]["enhanced_psnr"] != rows[1]["enhanced_psnr"]  # the fine-tuning changed the k=5 refiner
    # WiSE-FT's ends: alpha 0 is the start's weights exactly; 0.5 lies elsewhere
    assert rows[3]["enhanced_psnr"] == rows[1]["enhanced_psnr"] and rows[4]["enhanced_psnr"] != rows[2]["enhanced_psnr"]
    assert "held-out unit fold-1" in out.read_text() and len(json.loads(out.with_suffix(".json").read_text())) == 5
