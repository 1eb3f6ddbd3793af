"""sd-turbo (AutoencoderKL) and taesd (AutoencoderTiny) codecs on tiny randomly initialised models."""

from __future__ import annotations

import json

import pytest
import torch

from splatent_viewer.codecs import diffusers_codecs, load_codec
from splatent_viewer.errors import SplatentError

diffusers = pytest.importorskip("diffusers")


def _tiny_kl() -> diffusers.AutoencoderKL:
    torch.manual_seed(0)
    return diffusers.AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=32,
    ).eval()


def _tiny_taesd(**config) -> diffusers.AutoencoderTiny:
    torch.manual_seed(0)
    return diffusers.AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
        latent_channels=4,
        **config,
    ).eval()


@pytest.fixture(scope="module")
def sd_turbo_dir(tmp_path_factory):
    """An SD-Turbo-like folder: the VAE in ``vae/``."""
    root = tmp_path_factory.mktemp("sd_turbo")
    vae = _tiny_kl()
    vae.save_pretrained(root / "vae")
    return root, vae


@pytest.fixture(scope="module")
def taesd_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("taesd")
    vae = _tiny_taesd()
    vae.save_pretrained(root)
    return root, vae


@pytest.mark.parametrize("sub", ["", "vae"], ids=["root", "vae-folder"])
def test_sd_turbo_matches_diffusers_with_scaling(sd_turbo_dir, sub):
    root, vae = sd_turbo_dir
    codec = load_codec("sd-turbo", path=root / sub if sub else root)
    assert (codec.name, codec.latent_channels, codec.downscale) == ("sd-turbo", 4, 2)
    assert codec.scaling_factor == pytest.approx(0.18215)
    images = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        latents = codec.encode(images)
        assert latents.shape == (2, 4, 8, 8)
        expected = vae.encode(images * 2 - 1).latent_dist.mean * 0.18215
        torch.testing.assert_close(latents, expected)
        decoded = codec.decode(latents)
        torch.testing.assert_close(decoded, (vae.decode(latents / 0.18215).sample + 1) / 2)
    assert decoded.shape == (2, 3, 16, 16)
    with pytest.raises(SplatentError, match="multiples of 2"):
        codec.encode(torch.rand(1, 3, 15, 16))


def test_sd_turbo_gradients_and_dtype(sd_turbo_dir):
    codec = load_codec("sd-turbo", path=sd_turbo_dir[0])
    latents = torch.randn(1, 4, 4, 4, dtype=torch.float64, requires_grad=True)
    decoded = codec.decode(latents)
    assert decoded.dtype == torch.float32
    decoded.sum().backward()
    assert latents.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in codec.parameters())


@pytest.mark.parametrize("scaling_factor", [1.0, 2.0])
def test_taesd_matches_diffusers(tmp_path, scaling_factor):
    vae = _tiny_taesd(scaling_factor=scaling_factor)
    vae.save_pretrained(tmp_path)
    codec = load_codec("taesd", path=tmp_path)
    assert (codec.name, codec.latent_channels, codec.downscale) == ("taesd", 4, 8)
    images = torch.rand(1, 3, 32, 16)
    with torch.no_grad():
        latents = codec.encode(images)
        assert latents.shape == (1, 4, 4, 2)
        # AutoencoderTiny takes [-1, 1] and returns raw latents; pipelines scale them by scaling_factor.
        torch.testing.assert_close(latents, vae.encode(images * 2 - 1).latents * scaling_factor)
        decoded = codec.decode(latents)
        torch.testing.assert_close(decoded, (vae.decode(latents / scaling_factor).sample + 1) / 2)
    assert decoded.shape == (1, 3, 32, 16)


def test_taesd_accepts_vae_subfolder(taesd_dir, tmp_path):
    root, _ = taesd_dir
    (tmp_path / "vae").symlink_to(root, target_is_directory=True)
    assert load_codec("taesd", path=tmp_path).latent_channels == 4


@pytest.mark.parametrize("name", ["sd-turbo", "taesd"])
def test_missing_and_empty_folders(tmp_path, name):
    with pytest.raises(SplatentError, match=r"does_not_exist.*huggingface-cli download"):
        load_codec(name, path=tmp_path / "does_not_exist")
    with pytest.raises(SplatentError, match=r"no config\.json.*huggingface-cli download"):
        load_codec(name, path=tmp_path)


def test_config_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "AutoencoderTiny"}))
    with pytest.raises(SplatentError, match=rf"could not load AutoencoderTiny from {tmp_path}"):
        load_codec("taesd", path=tmp_path)


def test_wrong_model_type(sd_turbo_dir, taesd_dir):
    with pytest.raises(SplatentError, match="AutoencoderTiny, not AutoencoderKL"):
        load_codec("sd-turbo", path=taesd_dir[0])
    with pytest.raises(SplatentError, match="AutoencoderKL, not AutoencoderTiny.*madebyollin/taesd"):
        load_codec("taesd", path=sd_turbo_dir[0])


@pytest.mark.parametrize("name, cls", [("sd-turbo", "SDTurboCodec"), ("taesd", "TAESDCodec")])
def test_uncached_repo_fails_without_download(monkeypatch, name, cls):
    # A repo id that is surely not cached; with allow_download=False nothing may be fetched.
    monkeypatch.setattr(getattr(diffusers_codecs, cls), "_repo", "splatent-tests/not-a-real-repo")
    with pytest.raises(SplatentError, match=r"not-a-real-repo.*Hugging Face cache \(downloads off\).*huggingface-cli"):
        load_codec(name)
