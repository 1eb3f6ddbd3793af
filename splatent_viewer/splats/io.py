"""Saving and loading trained splats as safetensors with metadata (codec, channels, SH degree)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.safetensors_io import read_safetensors, write_safetensors
from splatent_viewer.splats.params import SPLAT_KEYS, check_splats

FORMAT = "splatent-splats"


@dataclass
class SplatFile:
    """Trained splats and what is needed to render them."""

    params: dict[str, Tensor]
    """Raw parameters (see :mod:`splatent_viewer.splats.params`)."""
    codec: str
    """Name of the codec whose latents the Gaussians carry."""
    sh_degree: int
    """SH degree of the RGB colours."""
    extra: dict
    """Free-form metadata (scene path, training settings)."""


def save_splats(
    *, path: Path, params: dict[str, Tensor], codec: str, sh_degree: int, extra: dict | None = None
) -> None:
    """Writes ``path`` atomically (temp file + rename)."""
    check_splats(params, where=str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "codec": codec,
        "latent_channels": str(params["latents"].shape[1]),
        "sh_degree": str(sh_degree),
        "extra": json.dumps(extra or {}),
    }
    write_safetensors(path, {k: params[k] for k in SPLAT_KEYS}, metadata=meta)


def load_splats(path: Path, *, device: torch.device | str = "cpu") -> SplatFile:
    """Reads a file written by :func:`save_splats`; a missing or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise SplatentError(f"Splat file {path} does not exist; train one with `splatent-demo` or `ns-train splatent`.")
    params, meta = read_safetensors(path, device=device)
    if meta.get("format") != FORMAT:
        raise SplatentError(f"{path} is not a splatent splat file (format {meta.get('format')!r}).")
    check_splats(params, latent_channels=int(meta["latent_channels"]), where=str(path))
    return SplatFile(
        params=params, codec=meta["codec"], sh_degree=int(meta["sh_degree"]), extra=json.loads(meta.get("extra", "{}"))
    )
