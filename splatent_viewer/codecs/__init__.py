"""Latent codecs: image ↔ latent autoencoders behind one interface (:class:`LatentCodec`).

- ``taef2``: tiny autoencoder for the FLUX.2 latent space (32 channels, /8); weights shipped in
  ``assets/taef2``. The default.
- ``sd-turbo``: the Stable Diffusion 2.1 / SD-Turbo VAE (``AutoencoderKL``, 4 channels, /8,
  latents scaled by 0.18215), from a local folder or the Hugging Face cache.
- ``taesd``: the tiny SD autoencoder (``AutoencoderTiny``, 4 channels, /8, same latent scale as
  sd-turbo), from a local folder or the Hugging Face cache.

Use :func:`load_codec` or :class:`CodecConfig` (for tyro CLIs / nerfstudio configs).
:class:`PairedCodec` / :class:`LiveDecoderConfig` decode a scene codec's latents with a faster codec of the
same latent space (e.g. sd-turbo latents with taesd: the viewer's and exporter's ``--live-decoder.*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, get_args

import torch

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.codecs.paired import PairedCodec, describe_codec
from splatent_viewer.errors import SplatentError

CodecName = Literal["taef2", "sd-turbo", "taesd"]
CODEC_NAMES: tuple[str, ...] = get_args(CodecName)


def load_codec(
    name: CodecName | str,
    *,
    path: Path | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    allow_download: bool = False,
) -> LatentCodec:
    """Builds the codec ``name`` with its weights, frozen, on ``device`` in ``dtype``; a name not in
    :data:`CODEC_NAMES` (e.g. read from a file) is a :class:`SplatentError`.

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


@dataclass
class LiveDecoderConfig:
    """A faster decoder of rendered frames than the scene's codec (same latent space), e.g. taesd for sd-turbo."""

    name: Optional[CodecName] = None
    """Decoder of rendered frames instead of the scene's codec; default: none (the scene's codec decodes).
    taesd (tiny SD autoencoder) for sd-turbo scenes: much faster than the SD VAE, lower fidelity (live view, previews).
    Frames, exports and their metrics are then TAESD's decode, not the VAE's; references and refiner keep VAE latents.
    A decoder of another latent space is refused."""
    path: Optional[Path] = None
    """Weights folder of the live decoder; default: the Hugging Face cache.
    taesd: a folder from `huggingface-cli download madebyollin/taesd --local-dir DIR`."""
    allow_download: bool = False
    """With no path: download the live decoder's weights from the Hugging Face Hub if not cached."""

    def load(self, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> LatentCodec | None:
        """The configured decoder's codec, or None when no live decoder is set."""
        if self.name is None:
            if self.path is not None:
                raise SplatentError(
                    f"--live-decoder.path {self.path} was given without --live-decoder.name; "
                    "pass the decoder's codec too (e.g. --live-decoder.name taesd)."
                )
            return None
        try:
            return load_codec(self.name, path=self.path, device=device, dtype=dtype, allow_download=self.allow_download)
        except SplatentError as err:  # the codec's own advice names --codec.*; these are the live decoder's options
            raise SplatentError(f"live decoder: {str(err).replace('--codec.', '--live-decoder.')}") from err

    def setup(self, *, codec: LatentCodec) -> LatentCodec:
        """``codec`` itself when no live decoder is set, else ``codec`` paired with the loaded decoder (on its
        device, in its dtype); an incompatible decoder is a :class:`SplatentError` naming both."""
        decoder = self.load(device=codec.device, dtype=codec.dtype)
        return codec if decoder is None else PairedCodec(codec=codec, decoder=decoder)


__all__ = [
    "CODEC_NAMES",
    "CodecConfig",
    "CodecName",
    "LatentCodec",
    "LiveDecoderConfig",
    "PairedCodec",
    "describe_codec",
    "load_codec",
]
