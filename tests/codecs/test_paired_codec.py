"""PairedCodec / LiveDecoderConfig: encode with the scene codec, decode with a live decoder of the same latent space."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.codecs import LiveDecoderConfig, PairedCodec, describe_codec, load_codec
from splatent_viewer.codecs.diffusers_codecs import SDTurboCodec, TAESDCodec
from splatent_viewer.errors import SplatentError

pytest.importorskip("diffusers")


def test_pair_encodes_with_the_vae_and_decodes_with_taesd(tiny_sd_autoencoders):
    vae, taesd = tiny_sd_autoencoders.kl(), tiny_sd_autoencoders.tiny()
    pair = PairedCodec(codec=SDTurboCodec(vae), decoder=TAESDCodec(taesd))
    assert (pair.name, pair.latent_channels, pair.downscale, pair.latent_space) == ("sd-turbo", 4, 8, "sd")
    assert pair.decoder_name == "taesd" and describe_codec(pair) == "sd-turbo latents decoded by taesd (live decoder)"
    images = torch.rand(2, 3, 32, 16)
    with torch.no_grad():
        latents = pair.encode(images)
        # The VAE's posterior mean, scaled into the SD latent space ...
        torch.testing.assert_close(latents, vae.encode(images * 2 - 1).latent_dist.mean * 0.18215)
        decoded = pair.decode(latents)
        # ... and TAESD decodes those scaled latents as they are (scaling_factor 1), [-1, 1] → [0, 1].
        torch.testing.assert_close(decoded, (taesd.decode(latents).sample + 1) / 2)
        vae_decoded = (vae.decode(latents / 0.18215).sample + 1) / 2
    assert decoded.shape == vae_decoded.shape == (2, 3, 32, 16)
    assert (decoded - vae_decoded).abs().mean() > 1e-2  # really not the VAE's decoder
    assert not any(p.requires_grad for p in pair.parameters())


def test_decoder_follows_the_codec_device_and_dtype(tiny_sd_autoencoders):
    codec = SDTurboCodec(tiny_sd_autoencoders.kl()).to(dtype=torch.float64)
    pair = PairedCodec(codec=codec, decoder=TAESDCodec(tiny_sd_autoencoders.tiny()))
    assert pair.decoder.dtype == torch.float64 and pair.dtype == torch.float64
    assert pair.decode(torch.randn(1, 4, 2, 2)).dtype == torch.float64


def test_live_decoder_config_loads_from_folders(tiny_sd_codec_dirs):
    sd_dir, taesd_dir = tiny_sd_codec_dirs
    codec = load_codec("sd-turbo", path=sd_dir)
    assert LiveDecoderConfig().setup(codec=codec) is codec  # default: no live decoder
    pair = LiveDecoderConfig(name="taesd", path=taesd_dir).setup(codec=codec)
    assert isinstance(pair, PairedCodec) and pair.codec is codec and pair.decoder_name == "taesd"
    latents = torch.randn(1, 4, 3, 2)
    with torch.no_grad():
        torch.testing.assert_close(pair.decode(latents), load_codec("taesd", path=taesd_dir).decode(latents))


def test_live_decoder_config_errors_name_its_own_options(tmp_path, tiny_sd_codec_dirs):
    codec = load_codec("sd-turbo", path=tiny_sd_codec_dirs[0])
    with pytest.raises(SplatentError, match=r"--live-decoder\.path .* without --live-decoder\.name"):
        LiveDecoderConfig(path=tiny_sd_codec_dirs[1]).setup(codec=codec)
    with pytest.raises(SplatentError, match=r"^live decoder: .*absent.*--live-decoder\.path DIR") as info:
        LiveDecoderConfig(name="taesd", path=tmp_path / "absent").setup(codec=codec)
    assert "--codec." not in str(info.value)


def test_sd_and_sdxl_vaes_declare_different_latent_spaces(tiny_sd_autoencoders):
    assert SDTurboCodec(tiny_sd_autoencoders.kl()).latent_space == "sd"
    assert SDTurboCodec(tiny_sd_autoencoders.kl(scaling_factor=0.13025)).latent_space == "sdxl"
    other = SDTurboCodec(tiny_sd_autoencoders.kl(scaling_factor=0.5, shift_factor=0.1)).latent_space
    assert other not in ("sd", "sdxl") and "0.5" in other


def _refusal(codec, decoder) -> str:
    with pytest.raises(SplatentError) as info:
        PairedCodec(codec=codec, decoder=decoder)
    return str(info.value)


def test_incompatible_pairs_are_refused_naming_both(taef2, tiny_sd_autoencoders):
    taesd = TAESDCodec(tiny_sd_autoencoders.tiny())
    # TAEF2 (32-channel FLUX.2 latents) cannot be decoded by TAESD (4-channel SD latents), nor the other way round.
    message = _refusal(taef2, taesd)
    assert "live decoder 'taesd'" in message and "scene codec 'taef2'" in message
    assert "4 latent channels, not 32" in message and "latent space 'sd', not 'flux2'" in message
    assert "leave --live-decoder unset" in message
    message = _refusal(SDTurboCodec(tiny_sd_autoencoders.kl()), taef2)
    assert "'taef2'" in message and "'sd-turbo'" in message and "--live-decoder.name taesd" in message
    # Same channels, other downscale.
    message = _refusal(SDTurboCodec(tiny_sd_autoencoders.kl(blocks=2)), taesd)
    assert "downscale 8, not 2" in message and "channels" not in message
    # Same channels and downscale, another latent space (an SD-XL VAE's scaling factor).
    message = _refusal(SDTurboCodec(tiny_sd_autoencoders.kl(scaling_factor=0.13025)), taesd)
    assert "latent space 'sd', not 'sdxl'" in message and "downscale" not in message
