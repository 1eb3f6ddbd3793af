"""Splat files: round trip, metadata, and clear errors."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from splatent_viewer.errors import SplatentError
from splatent_viewer.splats import init_splats
from splatent_viewer.splats.io import load_splats, save_splats


def _params(n=50, c=4):
    return init_splats(
        points=torch.randn(n, 3),
        colors=torch.rand(n, 3),
        latent_channels=c,
        latents=torch.randn(n, c),
        generator=torch.Generator().manual_seed(0),
    )


def test_round_trip(tmp_path):
    params = _params()
    save_splats(path=tmp_path / "s.safetensors", params=params, codec="sd-turbo", sh_degree=3, extra={"steps": 7})
    loaded = load_splats(tmp_path / "s.safetensors")
    assert loaded.codec == "sd-turbo" and loaded.sh_degree == 3 and loaded.extra == {"steps": 7}
    for k, v in params.items():
        torch.testing.assert_close(loaded.params[k], v)
    assert not list(tmp_path.glob("*.tmp"))


def test_errors_name_the_file(tmp_path):
    with pytest.raises(SplatentError, match="missing.safetensors does not exist"):
        load_splats(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SplatentError, match="junk.safetensors is not a readable"):
        load_splats(tmp_path / "junk.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(SplatentError, match="other.safetensors is not a splatent splat file"):
        load_splats(tmp_path / "other.safetensors")


def test_mismatched_rows_are_refused(tmp_path):
    params = _params()
    params["latents"] = params["latents"][:10]
    with pytest.raises(SplatentError, match="'latents' has 10 rows"):
        save_splats(path=tmp_path / "bad.safetensors", params=params, codec="taef2", sh_degree=3)
    assert not (tmp_path / "bad.safetensors").exists()
