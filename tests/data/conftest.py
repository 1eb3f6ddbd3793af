"""Fixtures for the scene loader and demo-scene tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from splatent_viewer.paths import assets_dir, shared_data_dir


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    path = assets_dir() / "demo_scene"
    assert (path / "transforms.json").is_file(), f"shipped demo scene missing at {path}"
    return path


@pytest.fixture
def small_scene(tmp_path: Path, demo_dir: Path):
    """A 4-view copy of the demo scene in tmp; returns (folder, transforms dict) and a writer."""
    meta = json.loads((demo_dir / "transforms.json").read_text())
    meta["frames"] = meta["frames"][:4]
    meta.pop("ply_file_path")
    (tmp_path / "images").mkdir()
    for f in meta["frames"]:
        shutil.copy(demo_dir / f["file_path"], tmp_path / f["file_path"])

    def write(m: dict) -> Path:
        (tmp_path / "transforms.json").write_text(json.dumps(m))
        return tmp_path

    write(meta)
    return tmp_path, meta, write


@pytest.fixture
def shared_scene():
    """``shared_scene(name)`` → folder of a shared dev scene, skipping the test when absent."""

    def get(name: str) -> Path:
        path = shared_data_dir() / "scenes" / name
        if not path.is_dir():
            pytest.skip(f"shared scene {name} not available at {path}")
        return path

    return get


@pytest.fixture(scope="session")
def distorted_scene(scene_makers, tmp_path_factory):
    """``distorted_scene("OPENCV" | "OPENCV_FISHEYE")`` → a 6-view nerfstudio-data folder of distorted demo views
    (4 train, 2 val = test), made once per model."""
    made: dict[str, Path] = {}

    def get(model: str) -> Path:
        if model not in made:
            made[model] = scene_makers.make_distorted_scene(
                tmp_path_factory.mktemp(f"distorted_{model.lower()}"), model=model
            )
        return made[model]

    return get


@pytest.fixture(scope="session")
def odd_size_scene(scene_makers, tmp_path_factory) -> Path:
    """A 5-view nerfstudio-data folder of demo views at 500x500 and 270x480 (per-frame intrinsics; 4 train, 1 val = test)."""
    return scene_makers.make_odd_size_scene(tmp_path_factory.mktemp("odd_sizes"))
