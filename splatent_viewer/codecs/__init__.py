"""Latent codecs: image ↔ latent autoencoders behind one interface (:class:`LatentCodec`).

- ``taef2``: tiny autoencoder for the FLUX.2 latent space (32 channels, /8); weights shipped in
  ``assets/taef2``. The default.
- ``sd-turbo``: the Stable Diffusion 2.1 / SD-Turbo VAE (``AutoencoderKL``, 4 channels, /8,
  latents scaled by 0.18215), from a local folder or the Hugging Face cache.
- ``taesd``: the tiny SD autoencoder (``AutoencoderTiny``, 4 channels, /8, same latent scale as
  sd-turbo), from a local folder or the Hugging Face cache.

Use :func:`load_codec` or :class:`CodecConfig` (for tyro CLIs / nerfstudio configs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, get_args

import torch

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.errors import SplatentError

CodecName = Literal["taef2", "sd-turbo", "taesd"]
CODEC_NAMES: tuple[str, ...] = get_args(CodecName)


def load_codec(
    name: CodecName,
    *,
    path: Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    allow_download: bool = False,
) -> LatentCodec:
    """Builds the codec ``name`` with its weights, frozen, on ``device`` in ``dtype``.

    ``path``: taef2 — folder with the safetensors (default ``assets/taef2``); sd-turbo — an
    SD-Turbo folder (with a ``vae/`` subfolder) or a VAE folder (default: the Hugging Face cache,
    ``stabilityai/sd-turbo``); taesd — a TAESD folder (default: the Hugging Face cache,
    ``madebyollin/taesd``). ``allow_download`` lets sd-turbo / taesd with no ``path`` fetch from
    the Hugging Face Hub when not cached (nothing is ever downloaded otherwise).
    """
    if name == "taef2":
        from splatent_viewer.codecs.taef2 import TAEF2Codec

        return TAEF2Codec.from_dir(path, device=device, dtype=dtype)
    if name == "sd-turbo":
        from splatent_viewer.codecs.diffusers_codecs import SDTurboCodec

        return SDTurboCodec.load(path, device=device, dtype=dtype, allow_download=allow_download)
    if name == "taesd":
        from splatent_viewer.codecs.diffusers_codecs import TAESDCodec

        return TAESDCodec.load(path, device=device, dtype=dtype, allow_download=allow_download)
    raise SplatentError(f"Unknown codec {name!r}; choose one of {', '.join(CODEC_NAMES)}.")


@dataclass
class CodecConfig:
    """Which latent codec to use and where its weights are."""

    name: CodecName = "taef2"
    """Codec: taef2 (shipped tiny FLUX.2 autoencoder), sd-turbo (SD-Turbo VAE), taesd (tiny SD autoencoder)."""
    path: Optional[Path] = None
    """Weights folder. taef2: default assets/taef2. sd-turbo: an SD-Turbo folder or its vae/ folder,
    default the Hugging Face cache. taesd: a TAESD folder, default the Hugging Face cache."""
    allow_download: bool = False
    """sd-turbo / taesd with no path: download the weights from the Hugging Face Hub if not cached."""

    def setup(self, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LatentCodec:
        """Loads the configured codec."""
        return load_codec(self.name, path=self.path, device=device, dtype=dtype, allow_download=self.allow_download)


__all__ = ["CODEC_NAMES", "CodecConfig", "CodecName", "LatentCodec", "load_codec"]
