"""benchmarks/decoder_adaptation.py (issue 17's decoder ablation): fine-tunes a copy of the decoder on a run's
adaptation units but the last, and scores before/after on that unit and on the run's held-out views."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.parametrize("source", ["render", "guide"])
def test_decoder_adaptation_scores_both_decoders(
    tiny_adapted_run: Path, tmp_path: Path, load_benchmark, source: str
) -> None:
    run = tiny_adapted_run
    bench = load_benchmark("decoder_adaptation")
    out = tmp_path / "decoder.md"
    record = bench.main(
        bench.Args(run=run, dataset=run / "adaptation" / "dataset", steps=2, batch_size=2, source=source, output=out)
    )
    assert record["held_unit"] == "fold-1" and record["samples"]["test"] >= 1
    assert record["samples"]["train"] + record["samples"]["validation"] == len(
        json.loads((run / "adaptation" / "dataset" / "index.json").read_text())["samples"]
    )
    for when in ("before", "after"):
        for split in ("validation", "test"):
            psnr_db, ssim_value = record[when][split]
            assert 5.0 < psnr_db < 60.0 and 0.0 < ssim_value <= 1.0
    assert record["before"] != record["after"]  # the fine-tuning changed the decoder
    assert "adapted to the scene" in out.read_text() and json.loads(out.with_suffix(".json").read_text())["after"]
