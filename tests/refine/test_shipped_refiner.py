"""The refiner shipped in assets/refiner/: what it is, that the tools pick it up, and that it sharpens."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.paths import assets_dir
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.trained import load_refiner_for
from splatent_viewer.training.losses import psnr


def test_the_shipped_refiner_is_a_trained_taef2_refiner_under_50_mb() -> None:
    folder = assets_dir() / "refiner"
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert {"refiner.safetensors", "refiner.json", "README.md"} <= files.keys()
    assert sum(files.values()) <= 50 * 2**20
    refiner = load_refiner("embedded", codec=load_codec("taef2"))
    c = refiner.config
    assert (c.backbone, c.codec, c.latent_channels, c.num_references) == ("embedded", "taef2", 32, 3)
    # Trained: the zero-initialised output conv (identity at init) has weights now.
    assert refiner.backbone.unet.conv_out.weight.abs().max() > 1e-3


def test_the_tools_default_to_the_shipped_refiner_for_taef2_only(tiny_sd_codec_dirs, caplog) -> None:
    cpu = dict(device=torch.device("cpu"), dtype=torch.float32)
    assert load_refiner_for("embedded", codec=load_codec("taef2"), **cpu) is not None
    taesd = load_codec("taesd", path=tiny_sd_codec_dirs[1])  # a 4-channel SD-latent codec (tiny random weights)
    with caplog.at_level(logging.WARNING):
        assert load_refiner_for("embedded", codec=taesd, **cpu) is None
    assert "no enhancement" in caplog.text


@torch.no_grad()
def test_the_shipped_refiner_sharpens_demo_renders_with_their_nearest_training_views() -> None:
    # Latent renders of the demo scene's 3 held-out views by a splatent-demo run (fixtures/, made by
    # make_demo_heldout_latents.py) — the refiner's real input. With the 3 nearest training views (the tools'
    # default) it must lift every decoded render towards the ground truth (the demo measured +1.26 dB).
    from safetensors.torch import load_file

    data = load_file(str(Path(__file__).with_name("fixtures") / "demo_heldout_latents.safetensors"))
    scene = load_scene(assets_dir() / "demo_scene")
    codec = load_codec("taef2")
    refiner = load_refiner("embedded", codec=codec)
    gains = []
    for view, render, nearest in zip(data["views"].tolist(), data["renders"].float(), data["nearest"]):
        gt = scene.load_image(view).permute(2, 0, 1)[None]
        refs = codec.encode(torch.stack([scene.load_image(int(i)) for i in nearest]).permute(0, 3, 1, 2))[None]
        before = psnr(codec.decode(render[None]), gt)
        gains.append(psnr(codec.decode(refiner(target=render[None], references=refs)), gt) - before)
    # Measured with the shipped refiner: +1.19 / +1.23 / +1.35 dB (k=0 gives +1.01 / +1.07 / +1.20 on this
    # procedural, in-distribution scene: there the refiner's prior does most of the work).
    assert min(gains) > 0.9 and sum(gains) / len(gains) > 1.1, gains
