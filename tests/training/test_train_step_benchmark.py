"""benchmarks/train_step_gpu.py runs (on the CPU, tiny) and reports every stage of both paths."""

from __future__ import annotations

import math


def test_train_step_benchmark_runs_on_cpu(load_benchmark, tiny_scene_dir, tmp_path):
    bench = load_benchmark("train_step_gpu")
    args = bench.Args(
        scene=tiny_scene_dir,
        device="cpu",
        steps=2,
        warmup=2,
        max_views=2,
        num_random=0,
        refine_every=2,
        output=tmp_path / "steps.md",
        json_out=tmp_path / "steps.json",
    )
    record = bench.main(args)
    assert record["agreement"] == 0.0  # the spelled-out stages are render_step's computation
    for path in ("shared", "two-pass"):
        stages = record["results"][path]["staged"]["stages"]
        expected = set(bench.STAGES) - ({"projection"} if path == "two-pass" else set())
        assert set(stages) == expected
        assert all(math.isfinite(v) and v > 0 for v in stages.values())
        assert record["results"][path]["plain"]["ms_per_step"] > 0
    text = (tmp_path / "steps.md").read_text()
    assert "| rasterize_latent |" in text and "| densification |" in text and (tmp_path / "steps.json").is_file()
