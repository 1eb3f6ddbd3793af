"""SceneRenderer on the tiny trained scene: every mode through render_frame, preview sizes, thumbnails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.trained import load_trained_scene
from splatent_viewer.viewer.gui import ViewSettings
from splatent_viewer.viewer.renderer import CameraState, SceneRenderer, max_references


@pytest.fixture(scope="module")
def renderer(tiny_trained_scene_dir: Path) -> SceneRenderer:
    return SceneRenderer(scene=load_trained_scene(tiny_trained_scene_dir, device="cpu", refiner="none"))


def _training_camera(renderer: SceneRenderer, index: int = 0) -> CameraState:
    bank = renderer.scene.references
    h = int(bank.sizes[index, 0])
    fov = 2 * math.atan(0.5 * h / float(bank.Ks[index, 1, 1]))
    return CameraState(c2w=bank.c2w[index].cpu(), fov_y=fov, aspect=float(bank.sizes[index, 1] / bank.sizes[index, 0]))


def test_each_mode_renders_a_distinct_image(renderer: SceneRenderer) -> None:
    camera = _training_camera(renderer)
    images = {}
    for mode in ("decoded", "rgb", "latent", "depth"):
        out = renderer.render(camera=camera, settings=ViewSettings(mode=mode, max_resolution=64), preview=False)
        assert out.image.shape == (64, 64, 3) and out.image.dtype == torch.uint8, mode
        image = out.image.cpu().numpy().astype(np.float32)
        assert image.std() > 5, f"{mode} is flat"
        assert "compose" in out.timings_ms
        images[mode] = image
    assert "raster" in out.timings_ms or "rgb" in out.timings_ms
    names = list(images)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(images[a] - images[b]).mean() > 5, f"{a} and {b} look the same"
    # the decoded render of a training view resembles that training image's decoded latent
    ref = renderer.thumbnail(0, max_side=64).astype(np.float32)
    assert np.abs(images["decoded"] - ref).mean() < np.abs(images["depth"] - ref).mean()


def test_preview_is_smaller_and_full_frame_reports_nearest_references(renderer: SceneRenderer) -> None:
    camera = _training_camera(renderer, 3)
    settings = ViewSettings(mode="decoded", max_resolution=64, preview_resolution=32, num_references=2)
    preview = renderer.render(camera=camera, settings=settings, preview=True)
    full = renderer.render(camera=camera, settings=settings, preview=False)
    assert preview.image.shape == (32, 32, 3) and full.image.shape == (64, 64, 3)
    assert preview.references == [] and len(full.references) == 2
    assert full.references == renderer.scene.references.nearest(c2w=camera.c2w, k=2)


def test_enhanced_without_refiner_is_a_clear_error(renderer: SceneRenderer) -> None:
    assert renderer.scene.refiner is None and max_references(renderer.scene) == 5
    with pytest.raises(SplatentError, match="refiner"):
        renderer.render(
            camera=_training_camera(renderer), settings=ViewSettings(mode="enhanced", max_resolution=64), preview=False
        )
