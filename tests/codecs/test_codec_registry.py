"""load_codec / CodecConfig: names, dispatch, tyro parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import tyro

from splatent_viewer.codecs import CODEC_NAMES, CodecConfig, LatentCodec, load_codec
from splatent_viewer.codecs.taef2 import TAEF2Codec
from splatent_viewer.errors import SplatentError


def test_codec_names():
    assert CODEC_NAMES == ("taef2", "sd-turbo", "taesd")


def test_unknown_name():
    with pytest.raises(SplatentError, match="taef2, sd-turbo, taesd"):
        load_codec("vq-gan")  # type: ignore[arg-type]


def test_config_default_is_shipped_taef2():
    codec = CodecConfig().setup(device="cpu", dtype=torch.float64)
    assert isinstance(codec, TAEF2Codec) and isinstance(codec, LatentCodec)
    assert codec.dtype == torch.float64 and not codec.training


def test_config_parses_with_tyro(tmp_path):
    config = tyro.cli(CodecConfig, args=["--name", "sd-turbo", "--path", str(tmp_path), "--allow-download"])
    assert config == CodecConfig(name="sd-turbo", path=Path(tmp_path), allow_download=True)
    with pytest.raises(SystemExit):
        tyro.cli(CodecConfig, args=["--name", "nope"])


def test_config_passes_path_through(tmp_path):
    with pytest.raises(SplatentError, match=str(tmp_path)):
        CodecConfig(name="taef2", path=tmp_path).setup(device="cpu", dtype=torch.float32)
