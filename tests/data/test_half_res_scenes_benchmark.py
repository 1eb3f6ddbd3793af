"""benchmarks/half_res_scenes.py: a scene copied at 1/2 loads as the loader's own 1/2 downscale of the original."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.data.scene import load_scene
from splatent_viewer.errors import SplatentError


def test_nerfstudio_copy_matches_the_loaders_downscale(tiny_scene_dir, tmp_path, load_benchmark) -> None:
    half = load_benchmark("half_res_scenes")
    copy = half.copy_scene(tiny_scene_dir, tmp_path / "out", 2)
    assert copy == tmp_path / "out" / tiny_scene_dir.name
    ours, theirs = load_scene(copy), load_scene(tiny_scene_dir, downscale=2)
    assert ours.widths.tolist() == theirs.widths.tolist() == [32] * len(theirs.widths)
    assert ours.heights.tolist() == theirs.heights.tolist()
    torch.testing.assert_close(ours.Ks, theirs.Ks)
    torch.testing.assert_close(ours.camera_to_worlds, theirs.camera_to_worlds)
    assert ours.split_indices["val"].tolist() == theirs.split_indices["val"].tolist()
    assert not list((tmp_path / "out").glob(".*.tmp")), "the temporary folder is renamed into place"


def test_blender_copy_halves_the_images(scene_makers, tmp_path, load_benchmark) -> None:
    half = load_benchmark("half_res_scenes")
    root = tmp_path / "lego"
    root.mkdir()
    scene_makers.make_blender_scene(root, size=(16, 8))
    copy = half.copy_scene(root, tmp_path / "out", 2)
    ours, theirs = load_scene(copy), load_scene(root)
    assert ours.widths.tolist() == [8] * len(theirs.widths) and ours.heights.tolist() == [4] * len(theirs.heights)
    torch.testing.assert_close(ours.Ks[:, :2, :2], theirs.Ks[:, :2, :2] / 2)  # focal length from camera_angle_x
    assert len(ours.split_indices["test"]) == len(theirs.split_indices["test"]) == 2


def test_a_folder_without_transforms_is_one_clear_error(tmp_path, load_benchmark) -> None:
    half = load_benchmark("half_res_scenes")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SplatentError, match="no transforms"):
        half.copy_scene(tmp_path / "empty", tmp_path / "out", 2)
