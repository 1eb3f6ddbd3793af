"""Distorted scenes (OPENCV k1, k2, p1, p2; OPENCV_FISHEYE k1..k4) load undistorted, as nerfstudio undistorts them.

The scenes are demo views photographed through known lenses (tests/data/scene_makers.py): undistorting them must
give back the original views, resampled to the undistorted intrinsics, up to interpolation.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from splatent_viewer.data.scene import load_scene

FRAMES = (0, 5, 11, 17, 23, 29)  # the demo frames make_distorted_scene uses


def _psnr_vs_original(makers, image: np.ndarray, K: np.ndarray, frame: int) -> float:
    """PSNR of ``image`` (intrinsics ``K``) against demo ``frame`` sampled along the same rays, over the pixels
    whose rays fall inside the original image."""
    reference, valid = makers.demo_along_rays(image, K, frame)
    assert valid.mean() > 0.8
    return float(-10 * np.log10(((image - reference) ** 2)[valid].mean()))


@pytest.mark.parametrize("model", ["OPENCV", "OPENCV_FISHEYE"])
def test_distorted_scene_loads_undistorted(scene_makers, distorted_scene, model: str, capsys) -> None:
    root = distorted_scene(model)
    scene = load_scene(root, size_multiple=8)
    out = capsys.readouterr().out
    assert (
        out.count("views undistorted as nerfstudio does") == 1
        and f"6 of 6 views undistorted as nerfstudio does: {model} 256x256" in out
    )
    assert (
        len(scene) == 6
        and scene.split_indices["train"].tolist() == [0, 1, 2, 3]
        and scene.split_indices["val"].tolist() == [4, 5]
    )
    assert (scene.widths % 8 == 0).all() and (scene.heights % 8 == 0).all() and (scene.widths <= 256).all()
    # undistorted intrinsics: about the lens's focal length, principal point near the image centre
    K0 = scene_makers.demo_K()
    assert torch.allclose(scene.Ks[:, 0, 0], torch.tensor(K0[0, 0], dtype=torch.float32), rtol=0.1)
    assert (scene.Ks[:, 0, 2] - 128).abs().max() < 4 and (scene.Ks[:, 1, 2] - 128).abs().max() < 4
    assert torch.equal(scene.Ks[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(6, 3))
    for i in (0, 1, 5):  # both lenses, a train and a val view
        image = scene.load_image(i)
        assert image.shape == (int(scene.heights[i]), int(scene.widths[i]), 3) and image.dtype == torch.float32
        undistorted = _psnr_vs_original(scene_makers, image.numpy(), scene.Ks[i].double().numpy(), FRAMES[i])
        # the file itself, taken as a pinhole image with the lens's K, is far off: the test can fail
        file = np.asarray(Image.open(scene.image_paths[i]), dtype=np.float32) / 255.0
        as_pinhole = _psnr_vs_original(scene_makers, file, K0, FRAMES[i])
        assert undistorted > 30.0 and as_pinhole < undistorted - 8.0, (i, undistorted, as_pinhole)


def test_distortion_is_per_camera_and_split_views_match(distorted_scene) -> None:
    """Per-frame lenses give per-frame undistorted cameras; split/subset views load the same pixels."""
    scene = load_scene(distorted_scene("OPENCV"))
    assert (scene.widths == 255).all() and (scene.heights == 255).all()  # alpha=0 crop of both lenses, no fitting
    barrel, pincushion = scene.Ks[0], scene.Ks[1]
    assert (
        torch.equal(scene.Ks[2], barrel)
        and torch.equal(scene.Ks[3], pincushion)
        and not torch.equal(barrel, pincushion)
    )
    val = scene.split("val")
    assert torch.equal(val.Ks, scene.Ks[4:6]) and val.image_paths == scene.image_paths[4:6]
    assert torch.equal(val.load_image(1), scene.load_image(5))
    assert val.sources is not None and val.sources.cameras.shape == (2,)


def test_pinhole_scene_is_not_resampled(small_scene) -> None:
    """Zero distortion (the demo scene's OPENCV with k = 0): the file's pixels, exactly."""
    root, meta, _ = small_scene
    scene = load_scene(root)
    file = torch.from_numpy(np.asarray(Image.open(root / meta["frames"][2]["file_path"]), dtype=np.float32) / 255.0)
    assert torch.equal(scene.load_image(2), file)
    assert torch.equal(
        scene.Ks[2],
        torch.tensor([[meta["fl_x"], 0, meta["cx"]], [0, meta["fl_y"], meta["cy"]], [0, 0, 1]], dtype=torch.float32),
    )


def test_distorted_scene_downscaled_on_load(distorted_scene) -> None:
    """downscale without images_2/: the dataparser's cameras at half resolution, undistorted there (as ns-train
    does with images_2), images resized on load."""
    root = distorted_scene("OPENCV")
    assert not (root / "images_2").exists()
    half = load_scene(root, downscale=2)
    assert (half.widths <= 128).all() and (half.widths > 120).all()
    assert torch.allclose(half.Ks[:, 0, 0], load_scene(root).Ks[:, 0, 0] / 2, rtol=0.02)
    assert half.load_image(0).shape == (int(half.heights[0]), int(half.widths[0]), 3)
    assert not (root / "images_2").exists()  # nothing written
