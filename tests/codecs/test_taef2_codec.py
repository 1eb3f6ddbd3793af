"""TAEF2 codec: layout, shapes, round-trip quality, dtype/grad behaviour and error messages."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from splatent_viewer.codecs import load_codec
from splatent_viewer.codecs.evaluation import (
    center_square,
    evenly_spaced,
    load_rgb,
    psnr,
    round_trip_psnr,
    scene_image_paths,
)
from splatent_viewer.codecs.taef2 import DECODER_FILE, ENCODER_FILE, TAEF2Codec, build_decoder, build_encoder
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir, shared_data_dir

SCENES = ("temple", "fern", "dino", "lego")


def test_shipped_weights_match_layout_keys():
    for file, build in ((ENCODER_FILE, build_encoder), (DECODER_FILE, build_decoder)):
        shipped = load_file(str(assets_dir() / "taef2" / file))
        expected = build().state_dict()
        assert set(shipped) == set(expected), file
        assert all(shipped[k].shape == expected[k].shape for k in expected), file
        assert all(v.dtype == torch.float16 for v in shipped.values()), "shipped weights should stay fp16"


def test_shapes_and_attributes(taef2):
    assert (taef2.name, taef2.latent_channels, taef2.downscale) == ("taef2", 32, 8)
    images = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        latents = taef2.encode(images)
        assert latents.shape == (2, 32, 6, 8)
        assert taef2.decode(latents).shape == (2, 3, 48, 64)


def test_round_trip_on_synthetic_image(taef2, synthetic_image):
    # Measured 29.1 dB (128², fp32, CPU); a wrong layer layout lands far below 20 dB.
    image = synthetic_image(128)
    assert round_trip_psnr(taef2, image).item() > 27.0


def test_random_weights_do_not_round_trip(synthetic_image):
    # Guards the test above: the bound is only met with the real weights.
    torch.manual_seed(0)
    assert round_trip_psnr(TAEF2Codec(), synthetic_image(64)).item() < 20.0


def test_decode_is_not_clamped(taef2):
    latents = torch.randn(1, 32, 8, 8, generator=torch.Generator().manual_seed(0)) * 3
    with torch.no_grad():
        decoded = taef2.decode(latents)
        assert torch.equal(decoded, taef2.decoder(latents))
    assert decoded.min() < 0 or decoded.max() > 1


def test_decoder_soft_clamps_its_input(taef2):
    # 3·tanh(x/3) saturates: latents far outside [-3, 3] all decode alike, however far out.
    generator = torch.Generator().manual_seed(1)
    sign = torch.randint(0, 2, (1, 32, 4, 4), generator=generator) * 2.0 - 1
    magnitude = 0.5 + torch.rand(1, 32, 4, 4, generator=generator)
    with torch.no_grad():
        far = taef2.decode(sign * magnitude * 100)
        farther = taef2.decode(sign * magnitude * 1000)
    torch.testing.assert_close(far, farther, atol=1e-4, rtol=0)


def test_dtype_cast_and_gradients(taef2):
    latents = torch.randn(1, 32, 4, 4, dtype=torch.float64, requires_grad=True)
    decoded = taef2.decode(latents)
    assert decoded.dtype == torch.float32
    decoded.mean().backward()
    assert latents.grad is not None and latents.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in taef2.parameters())
    images = torch.rand(1, 3, 32, 32, requires_grad=True)
    taef2.encode(images).square().mean().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_bfloat16_codec_returns_bfloat16(synthetic_image):
    codec = load_codec("taef2", dtype=torch.bfloat16)
    assert codec.dtype == torch.bfloat16
    with torch.no_grad():
        latents = codec.encode(synthetic_image(32))
        assert latents.dtype == torch.bfloat16
        assert codec.decode(latents).dtype == torch.bfloat16


@pytest.mark.parametrize("size", [(60, 64), (64, 30)])
def test_encode_rejects_sizes_not_multiple_of_8(taef2, size):
    with pytest.raises(SplatentError, match=rf"multiples of 8.*{size[0]}x{size[1]}"):
        taef2.encode(torch.rand(1, 3, *size))


def test_encode_and_decode_reject_wrong_channels(taef2):
    with pytest.raises(SplatentError, match="RGB"):
        taef2.encode(torch.rand(1, 4, 32, 32))
    with pytest.raises(SplatentError, match="32"):
        taef2.decode(torch.rand(1, 4, 4, 4))


def test_missing_weights_error_names_file_and_fix(tmp_path):
    with pytest.raises(SplatentError, match=r"taef2_encoder\.safetensors.*convert_taef2"):
        load_codec("taef2", path=tmp_path)


def test_corrupt_or_foreign_weights_error_names_file(tmp_path):
    shipped = assets_dir() / "taef2"
    (tmp_path / ENCODER_FILE).write_bytes((shipped / ENCODER_FILE).read_bytes())
    (tmp_path / DECODER_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(SplatentError, match=r"taef2_decoder\.safetensors.*convert_taef2"):
        load_codec("taef2", path=tmp_path)
    save_file({"weight": torch.zeros(2)}, str(tmp_path / DECODER_FILE))  # valid file, wrong layout
    with pytest.raises(SplatentError, match=r"taef2_decoder\.safetensors.*layout"):
        load_codec("taef2", path=tmp_path)


def _scene_dir(name: str):
    scene = shared_data_dir() / "scenes" / name
    if not scene.is_dir():
        pytest.skip(f"shared scene {scene} is absent")
    return scene


@pytest.mark.shared
@pytest.mark.parametrize("scene", SCENES)
def test_round_trip_psnr_on_shared_scenes(taef2, scene):
    paths = evenly_spaced(scene_image_paths(_scene_dir(scene)), 2)
    images = torch.cat([center_square(load_rgb(p)[None], 256) for p in paths])
    with torch.no_grad():
        latents = taef2.encode(images)
        assert latents.shape == (len(paths), 32, 32, 32)
        scores = psnr(taef2.decode(latents), images)
    assert scores.min().item() >= 27.0, f"{scene}: {scores.tolist()}"


def test_psnr_helper():
    target = torch.full((1, 3, 8, 8), 0.5)
    assert psnr(target + 0.1, target).item() == pytest.approx(20.0, abs=1e-3)
    assert psnr(target + 1.0, target).item() == pytest.approx(psnr(torch.ones_like(target), target).item())  # clamps
