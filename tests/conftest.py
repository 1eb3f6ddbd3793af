"""Fixtures shared across the suite."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small procedural scene (12 views at 64², seed 1; 11 train / 1 held out) made by our own ray tracer."""
    from splatent_viewer.data.demo_scene import DemoSceneConfig, render_demo_scene

    out = tmp_path_factory.mktemp("scenes") / "tiny"
    return render_demo_scene(
        DemoSceneConfig(output=out, num_views=12, resolution=64, seed=1, supersample=1, num_points=1500)
    )
