"""The TAEF2 .pth → safetensors conversion script."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from splatent_viewer.codecs.taef2 import DECODER_FILE, ENCODER_FILE
from splatent_viewer.errors import SplatentError
from splatent_viewer.paths import assets_dir, shared_data_dir
from splatent_viewer.scripts.convert_taef2 import main


@pytest.mark.shared
def test_conversion_reproduces_shipped_weights(tmp_path):
    src = shared_data_dir() / "weights" / "taef2"
    if not (src / "taef2_encoder.pth").is_file():
        pytest.skip(f"{src} is absent")
    main(src=src, dst=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["LICENSE", DECODER_FILE, ENCODER_FILE]
    )  # no temp files left
    for name, pth in ((ENCODER_FILE, "taef2_encoder.pth"), (DECODER_FILE, "taef2_decoder.pth")):
        converted = load_file(str(tmp_path / name))
        original = torch.load(src / pth, map_location="cpu", weights_only=True)
        assert converted.keys() == original.keys()
        assert all(torch.equal(converted[k], original[k]) for k in original)
        shipped = load_file(str(assets_dir() / "taef2" / name))
        assert all(torch.equal(converted[k], shipped[k]) for k in shipped)


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(SplatentError, match="taef2_encoder.pth"):
        main(src=tmp_path, dst=tmp_path / "out")


def test_foreign_state_dict_is_rejected_before_writing(tmp_path):
    torch.save({"weight": torch.zeros(1)}, tmp_path / "taef2_encoder.pth")
    with pytest.raises(SplatentError, match="taef2_encoder.pth does not match the TAEF2 layout"):
        main(src=tmp_path, dst=tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())
