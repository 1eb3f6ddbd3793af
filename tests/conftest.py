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


@pytest.fixture(scope="session")
def tiny_trained_scene_dir(tiny_scene_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder (splats + reference bank, TAEF2) trained for 150 CPU steps on ``tiny_scene_dir``;
    loadable with :func:`splatent_viewer.trained.load_trained_scene`."""
    import torch

    from splatent_viewer.codecs import load_codec
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.trained import ReferenceBank, save_trained_run
    from splatent_viewer.training.trainer import LatentSplatTrainerConfig, train_latent_splats

    torch.manual_seed(0)
    scene = load_scene(tiny_scene_dir)
    codec = load_codec("taef2")
    result = train_latent_splats(scene=scene, codec=codec, device="cpu", progress=False,
                                 config=LatentSplatTrainerConfig(steps=150, densify=False, sh_degree=1))
    train = scene.split_indices["train"].tolist()
    out = tmp_path_factory.mktemp("runs") / "tiny_run"
    save_trained_run(output_dir=out, params=result.params, codec=codec, sh_degree=result.sh_degree,
                     references=ReferenceBank.from_scene(scene=scene, indices=train, codec=codec, device="cpu"),
                     scene_path=tiny_scene_dir, train_indices=train, extra={"steps": 150})
    return out
