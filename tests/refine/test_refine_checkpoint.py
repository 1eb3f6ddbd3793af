"""Refiner checkpoints: save → load round trip, the embedded (shipped) refiner, codec checks, bad files."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from splatent_viewer.codecs import load_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.refine import (
    EmbeddedUNetConfig,
    Refiner,
    RefinerConfig,
    load_refiner,
    read_refiner_config,
    save_refiner,
)
from splatent_viewer.refine.checkpoint import CONFIG_FILE, WEIGHTS_FILE, check_codec

TINY_UNET = EmbeddedUNetConfig(
    block_out_channels=(16, 16), attention_from_level=1, attention_head_dim=8, norm_num_groups=8
)


def _trained_like(*, channels: int = 32, seed: int = 0) -> Refiner:
    """A tiny embedded refiner with every weight randomised (so it is not the identity)."""
    torch.manual_seed(seed)
    refiner = RefinerConfig(
        latent_channels=channels,
        num_references=2,
        embedded=TINY_UNET,
        latent_shift=tuple(0.1 * i for i in range(channels)),
        latent_scale=(0.5,),
    ).setup()
    with torch.no_grad():
        for p in refiner.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return refiner.eval()


def _outputs(refiner: Refiner) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    C = refiner.config.latent_channels
    with torch.no_grad():
        return refiner(target=torch.randn(1, C, 4, 6, generator=g), references=torch.randn(1, 2, C, 4, 6, generator=g))


def test_save_load_round_trip(tmp_path: Path) -> None:
    refiner = _trained_like()
    path = save_refiner(refiner, tmp_path / "refiner")
    assert sorted(p.name for p in path.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["refiner"], "temporary folders left behind"
    loaded = load_refiner(path, codec=load_codec("taef2"))
    assert loaded.config == refiner.config
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    torch.testing.assert_close(_outputs(loaded), _outputs(refiner), rtol=0, atol=0)
    # the file paths inside the folder are accepted too; dtype is an argument
    half = load_refiner(path / CONFIG_FILE, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and _outputs(half).dtype == torch.bfloat16
    assert read_refiner_config(path / WEIGHTS_FILE)[0] == refiner.config


def test_saving_over_a_refiner_replaces_it_but_other_folders_are_refused(tmp_path: Path) -> None:
    path = save_refiner(_trained_like(seed=0), tmp_path / "refiner")
    second = _trained_like(seed=1)
    save_refiner(second, path)
    torch.testing.assert_close(_outputs(load_refiner(path)), _outputs(second), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["refiner"]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "splats.safetensors").write_bytes(b"x")
    with pytest.raises(SplatentError, match="holds other files"):
        save_refiner(second, tmp_path / "run")


def test_embedded_refiner_comes_from_assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPLATENT_ASSETS", str(tmp_path / "assets"))
    with pytest.raises(SplatentError, match=r"No embedded refiner: .*refiner\.json does not exist.*not been trained"):
        load_refiner("embedded")
    refiner = _trained_like()
    save_refiner(refiner, tmp_path / "assets" / "refiner")
    torch.testing.assert_close(_outputs(load_refiner("embedded")), _outputs(refiner), rtol=0, atol=0)


def test_codec_checks() -> None:
    taef2 = load_codec("taef2")
    with pytest.raises(SplatentError, match="4-channel latents.*'taef2' has 32"):
        check_codec(RefinerConfig(codec="taesd", latent_channels=4), taef2, source="r")
    with pytest.warns(UserWarning, match="trained for the 'other' codec"):
        check_codec(RefinerConfig(codec="other", latent_channels=32), taef2, source="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_codec(RefinerConfig(codec="taef2", latent_channels=32), taef2, source="r")


def test_channel_mismatch_is_refused_on_load(tmp_path: Path) -> None:
    path = save_refiner(_trained_like(channels=4), tmp_path / "refiner4")
    with pytest.raises(SplatentError, match=r"refiner4 works on 4-channel latents"):
        load_refiner(path, codec=load_codec("taef2"))


def test_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(SplatentError, match="does not exist"):
        load_refiner(tmp_path / "absent")
    path = save_refiner(_trained_like(), tmp_path / "refiner")
    weights, config = (path / WEIGHTS_FILE).read_bytes(), (path / CONFIG_FILE).read_text()

    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(SplatentError, match=r"refiner\.safetensors is missing"):
        load_refiner(path)
    (path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    with pytest.raises(SplatentError, match=r"refiner\.safetensors is not a readable safetensors"):
        load_refiner(path)
    (path / WEIGHTS_FILE).write_bytes(weights)

    (path / CONFIG_FILE).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(SplatentError, match=r"refiner\.json is not a splatent refiner config"):
        load_refiner(path)
    (path / CONFIG_FILE).write_text("{")
    with pytest.raises(SplatentError, match=r"refiner\.json is not readable JSON"):
        load_refiner(path)
    data = json.loads(config)
    data["config"]["embedded"]["block_out_channels"] = [32, 32]  # weights of another size
    (path / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(SplatentError, match=r"does not match .*refiner\.json.*wrong shape"):
        load_refiner(path)
    data["config"]["future_setting"] = 1
    (path / CONFIG_FILE).write_text(json.dumps(data))
    with pytest.raises(SplatentError, match="newer splatent-viewer"):
        load_refiner(path)
    (path / CONFIG_FILE).unlink()
    with pytest.raises(SplatentError, match=r"refiner\.json is missing"):
        load_refiner(path)
