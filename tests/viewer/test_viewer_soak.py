"""benchmarks/viewer_soak.py at smoke size: one headless Chromium orbits the tiny scene for a few seconds; frames
arrive, the server's memory is sampled, nothing fails, and the viewer stops cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from splatent_viewer.viewer.headless import find_chromium

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="needs a Chromium binary (Debian: apt-get install chromium) for the soak clients"
)


def test_soak_smoke_run(load_benchmark, tiny_trained_scene_dir: Path, tmp_path: Path) -> None:
    soak = load_benchmark("viewer_soak")
    out = tmp_path / "soak.json"
    args = soak.Args(
        load_config=tiny_trained_scene_dir,
        clients=2,
        minutes=0.25,
        refiner="none",
        device="cpu",
        viewer_args=("--max-resolution", "128", "--preview-resolution", "64"),
        drag_seconds=1.0,
        rest_seconds=1.0,
        sample_seconds=2.0,
        work_dir=tmp_path / "work",
        output=out,
        window=(800, 500),
    )
    record = soak.soak(args)
    assert json.loads(out.read_text()) == json.loads(json.dumps(record))
    s = record["summary"]
    assert s["killed_client"] == 1 and record["clients"][1]["killed_at"] is not None
    assert all(n > 0 for n in s["frames_received"]), s  # frames reached both pages (the killed one before it died)
    assert record["clients"][0]["drags"] >= 2
    assert len(record["server_samples"]) >= 4 and s["rss_mb_min"] > 0
    assert s["server_render_errors"] == s["server_tracebacks"] == s["client_errors"] == 0, record["server_log_tail"]
    assert s["server_disconnects_logged"] >= 1  # the killed client's session was dropped
    assert s["server_exit_code"] == 0
