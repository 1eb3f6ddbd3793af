"""benchmarks/stream_consistency.py on the tiny run: every stream scored on the same pixels, the RGB splats warp."""

from __future__ import annotations

import math


def test_every_stream_is_scored_and_the_rgb_splats_warp_onto_themselves(tiny_trained_scene_dir, load_benchmark):
    bench = load_benchmark("stream_consistency")
    out = bench.main(bench.Args(run=tiny_trained_scene_dir, frames=36, first=3))
    assert set(out) == {"rgb", "decoded", "roundtrip"}
    assert all(math.isfinite(v["plain"]) and math.isfinite(v["warped"]) for v in out.values())
    assert 0 < out["rgb"]["warped"] < out["rgb"]["plain"] / 2  # the RGB splats stick to the Gaussians
