"""resolve_device: the one --device resolver."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.devices import resolve_device
from splatent_viewer.errors import SplatentError


def test_auto_cpu_and_cuda_without_cuda() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(SplatentError, match="not a device"):
        resolve_device("tpu")
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        for name in ("cuda", "cuda:1"):
            with pytest.raises(SplatentError, match=f"--device {name} .* no CUDA device; use --device cpu or auto"):
                resolve_device(name)
