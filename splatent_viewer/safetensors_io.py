"""Reading and writing our safetensors files: atomic writes, one clear error for unreadable files."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from splatent_viewer.atomic import write_atomic
from splatent_viewer.errors import SplatentError


def write_safetensors(path: Path, tensors: dict[str, Tensor], *, metadata: dict[str, str] | None = None) -> None:
    """Writes ``tensors`` (detached, contiguous, on the CPU) to ``path`` through a temp file + rename,
    so an interrupted write never leaves a truncated file under ``path``."""
    data = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    write_atomic(Path(path), lambda tmp: save_file(data, str(tmp), metadata=metadata))


def read_safetensors(path: Path, *, device: torch.device | str = "cpu") -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of ``path``; an unreadable or foreign file is one :class:`SplatentError` naming it."""
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        return load_file(str(path), device=str(device)), metadata
    except (SafetensorError, OSError, ValueError) as e:
        raise SplatentError(f"{path} is not a readable safetensors file ({e}).") from e
