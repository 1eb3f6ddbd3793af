"""Fixtures shared across the suite."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="session")
def load_benchmark():
    """Imports a script of benchmarks/ by name (they are scripts, not a package): load_benchmark("refiner_loso")."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses resolve their module's annotations through sys.modules
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture(scope="session")
def scene_makers() -> ModuleType:
    """``tests/data/scene_makers.py`` (tests/ is not a package): scene folders derived from the demo scene —
    distorted (OPENCV / fisheye), odd image sizes, COLMAP."""
    name = "splatent_test_scene_makers"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parent / "data" / "scene_makers.py"
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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
    result = train_latent_splats(
        scene=scene,
        codec=codec,
        device="cpu",
        progress=False,
        config=LatentSplatTrainerConfig(steps=150, densify=False, sh_degree=1),
    )
    train = scene.split_indices["train"].tolist()
    out = tmp_path_factory.mktemp("runs") / "tiny_run"
    save_trained_run(
        output_dir=out,
        params=result.params,
        codec=codec,
        sh_degree=result.sh_degree,
        references=ReferenceBank.from_scene(scene=scene, indices=train, codec=codec, device="cpu"),
        scene_path=tiny_scene_dir,
        train_indices=train,
        extra={"steps": 150},
    )
    return out


def _tiny_autoencoder_kl(**config):
    """A tiny random diffusers ``AutoencoderKL``: 4 latent channels, /8, SD's scaling factor unless overridden."""
    import diffusers
    import torch

    blocks = config.pop("blocks", 4)
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        block_out_channels=(8,) * blocks,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=32,
        **config,
    ).eval()


def _tiny_autoencoder_tiny(**config):
    """A tiny random diffusers ``AutoencoderTiny`` (TAESD's layout, 8 wide, one block per level): 4 channels, /8."""
    import diffusers
    import torch

    torch.manual_seed(1)
    return diffusers.AutoencoderTiny(
        encoder_block_out_channels=(8,) * 4,
        decoder_block_out_channels=(8,) * 4,
        num_encoder_blocks=(1,) * 4,
        num_decoder_blocks=(1,) * 4,
        **{"latent_channels": 4, **config},
    ).eval()


@pytest.fixture(scope="session")
def tiny_sd_autoencoders():
    """Factories of tiny random SD-latent-space autoencoders: ``kl(blocks=4, **config)`` (downscale 2**(blocks-1))
    and ``tiny(**config)``; keyword arguments override the diffusers config."""
    pytest.importorskip("diffusers")
    from types import SimpleNamespace

    return SimpleNamespace(kl=_tiny_autoencoder_kl, tiny=_tiny_autoencoder_tiny)


@pytest.fixture(scope="session")
def tiny_sd_codec_dirs(tiny_sd_autoencoders, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(sd_turbo_dir, taesd_dir)``: an SD-Turbo-like folder (tiny random VAE in ``vae/``) and a TAESD-like folder
    (tiny random AutoencoderTiny), written with ``save_pretrained``; both the SD latent space, 4 channels, /8."""
    root = tmp_path_factory.mktemp("sd_codecs")
    tiny_sd_autoencoders.kl().save_pretrained(root / "sd_turbo" / "vae")
    tiny_sd_autoencoders.tiny().save_pretrained(root / "taesd")
    return root / "sd_turbo", root / "taesd"


@pytest.fixture(scope="session")
def tiny_sd_run_dir(tiny_scene_dir: Path, tiny_sd_codec_dirs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An sd-turbo run folder for ``tiny_scene_dir`` (load it with ``codec_path=tiny_sd_codec_dirs[0]``): untrained
    Gaussians at the scene's points with random 4-channel latents; the bank holds the tiny VAE's latents of the
    training views."""
    import torch

    from splatent_viewer.codecs import load_codec
    from splatent_viewer.data.scene import load_scene
    from splatent_viewer.splats import init_splats
    from splatent_viewer.trained import ReferenceBank, save_trained_run

    scene = load_scene(tiny_scene_dir)
    codec = load_codec("sd-turbo", path=tiny_sd_codec_dirs[0])
    points, colors = scene.load_points()
    g = torch.Generator().manual_seed(0)
    params = init_splats(
        points=points,
        colors=colors,
        latent_channels=4,
        sh_degree=0,
        init_opacity=0.5,
        latents=torch.randn(points.shape[0], 4, generator=g),
        generator=g,
    )
    train = scene.split_indices["train"].tolist()
    out = tmp_path_factory.mktemp("runs") / "tiny_sd_run"
    save_trained_run(
        output_dir=out,
        params=params,
        codec=codec,
        sh_degree=0,
        references=ReferenceBank.from_scene(scene=scene, indices=train, codec=codec, device="cpu"),
        scene_path=tiny_scene_dir,
        train_indices=train,
    )
    return out
