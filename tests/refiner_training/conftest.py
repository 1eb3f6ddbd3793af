"""Fixtures of the refiner data/train/eval tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def refiner_dataset_dir(tiny_scene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small refiner dataset with real TAEF2 latents of ``tiny_scene_dir`` (no Gaussians trained, to stay fast):
    ``render`` is the latent of a blurred copy of the view. Scene "a": views 0-2 at 64² (8² latents); scene "b":
    views 3-4 cropped to 32x64 (4x8 latents, its own shard); scene "c": view 5 alone (a fixed batch)."""
    import torch
    import torch.nn.functional as F

    from splatent_viewer.codecs import load_codec
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.refiner_training.dataset import DatasetWriter, RefinerSample

    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    out = tmp_path_factory.mktemp("refiner") / "dataset"
    writer = DatasetWriter(out, codec="taef2", latent_channels=32, downscale=8)

    cache: dict[tuple[int, int], torch.Tensor] = {}

    def encode(img: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return codec.encode(img.permute(2, 0, 1)[None])[0]

    def view_latent(view: int, height: int) -> torch.Tensor:
        if (view, height) not in cache:  # encoding dominates this fixture's time on the CPU
            cache[view, height] = encode(scene.load_image(view)[:height])
        return cache[view, height]

    def sample(view: int, height: int) -> RefinerSample:
        img = scene.load_image(view)[:height]
        blurred = F.interpolate(F.avg_pool2d(img.permute(2, 0, 1)[None], 4), scale_factor=4, mode="bilinear")[0]
        ref_views = [v for v in (0, 1, 2, 3) if v != view][:3]  # 3 of K_MAX stored: the rest zero-padded
        return RefinerSample(
            target=view_latent(view, height),
            render=encode(blurred.permute(1, 2, 0)),
            refs=torch.stack([view_latent(v, height) for v in ref_views]),
            image=(img * 255 + 0.5).to(torch.uint8),
            view=view,
            ref_views=ref_views,
        )

    writer.add_unit(key="a@1", scene="a", info={"num_train_views": 9}, samples=[sample(v, 64) for v in range(3)])
    writer.add_unit(key="b@1", scene="b", info={"num_train_views": 9}, samples=[sample(v, 32) for v in (3, 4)])
    writer.add_unit(key="c@1", scene="c", info={"num_train_views": 9}, samples=[sample(5, 64)])
    return out


@pytest.fixture(scope="session")
def tiny_adapted_run(tiny_trained_scene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny trained run after a one-step adaptation: its unit dataset (2 folds) is in
    ``adaptation/dataset`` (the adaptation benchmarks' input). Read-only for the tests that share it."""
    from splatent_viewer.refiner_training.adapt import AdaptationConfig, AdaptConfig, adapt_refiner

    run = tmp_path_factory.mktemp("adapted") / "run"
    shutil.copytree(tiny_trained_scene_dir, run)
    settings = AdaptationConfig(folds=2, unit_steps=15, steps=1, batch_size=2)
    adapt_refiner(AdaptConfig(load_config=run, adaptation=settings, device="cpu"), progress=False)
    return run
