"""Encoding training images into codec latents, through an on-disk cache: the one encode path of every tool.

``splatent-demo``, ``splatent-refiner make-dataset`` (whose units at several training fractions share their views'
latents) and ``ns-train splatent`` all call :func:`encode_images`. Cache layout:
``<root>/<codec name>/<sha256>.safetensors`` with one tensor ``latent`` [C, h, w]. The key hashes the image as 8-bit
RGB (float images in [0, 1] are rounded to 8 bits first, so a PNG loaded by the core loader and by nerfstudio hashes
the same), its shape, the codec's dtype and any extra text the caller adds. ``root`` is, in order: an explicit
directory, ``$SPLATENT_LATENT_CACHE``, ``~/.cache/splatent/latents``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, UInt8
from safetensors.torch import load_file, save_file
from torch import Tensor

from splatent_viewer.codecs import LatentCodec

ENV_VAR = "SPLATENT_LATENT_CACHE"


def default_cache_root() -> Path:
    """``$SPLATENT_LATENT_CACHE`` if set, else ``~/.cache/splatent/latents``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "splatent" / "latents"


def image_key(image: Float[Tensor, "H W 3"] | UInt8[Tensor, "H W 3"], *, extra: str = "") -> str:
    """SHA-256 hex digest of an image's 8-bit content and shape (plus ``extra``). Float images in [0, 1] are rounded
    to 8 bits, so the same PNG hashes the same whether it was loaded as uint8 or float."""
    data = image.detach().cpu()
    if data.dtype != torch.uint8:
        data = (data.float() * 255.0).round().clamp(0, 255).to(torch.uint8)
    digest = hashlib.sha256()
    digest.update(f"{tuple(data.shape)}|{extra}|".encode())
    digest.update(data.contiguous().numpy().tobytes())
    return digest.hexdigest()


class LatentCache:
    """Latents of one codec, stored as safetensors files named by image hash."""

    def __init__(self, *, codec_name: str, root: Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.dir = self.root / codec_name

    def path(self, key: str) -> Path:
        """File holding the latent of ``key``."""
        return self.dir / f"{key}.safetensors"

    def get(self, key: str) -> Float[Tensor, "C h w"] | None:
        """The cached latent, or None when absent or unreadable (it is then re-encoded)."""
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            return load_file(str(p))["latent"]
        except Exception:  # a truncated/corrupt entry is treated as a miss
            return None

    def put(self, key: str, latent: Float[Tensor, "C h w"]) -> None:
        """Stores ``latent`` atomically (temp file + ``os.replace``); an unwritable cache only costs re-encoding."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        except OSError:
            return
        os.close(fd)
        try:
            save_file({"latent": latent.detach().contiguous().cpu()}, tmp)
            os.replace(tmp, self.path(key))
        except OSError:
            pass
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


@dataclass
class EncodeStats:
    """What :func:`encode_images` did."""

    hits: int = 0
    """Latents read from the cache."""
    encoded: int = 0
    """Images encoded (and stored in the cache, when there is one)."""


def encode_images(
    *,
    images: Iterable[Float[Tensor, "_H _W 3"] | UInt8[Tensor, "_H _W 3"]],
    codec: LatentCodec,
    device: torch.device | str,
    cache: LatentCache | None = None,
    batch_size: int | None = None,
    extra_key: str = "",
) -> tuple[list[Float[Tensor, "C _h _w"]], EncodeStats]:
    """Codec latents (float32, on ``device``) of ``images`` (RGB in [0, 1], or uint8), read from ``cache`` where
    it has them. Sizes must be multiples of the codec's downscale (the scene loader's ``size_multiple``).

    Consecutive images of one size are encoded ``batch_size`` at a time (default: 4 on GPUs, 1 on the CPU, where one
    image at a time keeps the activations in cache: 33 demo views of 256² encode ~1.5x faster than in fours)."""
    device = torch.device(device)
    if batch_size is None:
        batch_size = 1 if device.type == "cpu" else 4
    extra = f"{codec.dtype}|{extra_key}"
    out: list[Tensor | None] = []
    stats = EncodeStats()
    pending: list[tuple[int, Tensor, str]] = []

    def flush() -> None:
        if not pending:
            return
        batch = torch.stack([img for _, img, _ in pending]).permute(0, 3, 1, 2).to(device)
        with torch.no_grad():
            latents = codec.encode(batch).float()
        for (i, _, key), latent in zip(pending, latents):
            out[i] = latent
            if cache is not None:
                cache.put(key, latent)
        stats.encoded += len(pending)
        pending.clear()

    for i, image in enumerate(images):
        image = image.float() / 255.0 if image.dtype == torch.uint8 else image.float()
        key = image_key(image, extra=extra) if cache is not None else ""
        out.append(None)
        hit = cache.get(key) if cache is not None else None
        if hit is not None and hit.shape[0] == codec.latent_channels:
            out[i] = hit.to(device=device, dtype=torch.float32)
            stats.hits += 1
            continue
        if pending and (pending[0][1].shape != image.shape or len(pending) == batch_size):
            flush()
        pending.append((i, image, key))
    flush()
    return [t for t in out if t is not None], stats


__all__ = ["ENV_VAR", "EncodeStats", "LatentCache", "default_cache_root", "encode_images", "image_key"]


@torch.no_grad()
def background_latent(
    *, codec: LatentCodec, colour: Float[Tensor, "3"], device: torch.device | str
) -> Float[Tensor, " C"]:
    """The latent of a flat image of ``colour`` (RGB in [0, 1]): the background a latent pass composites on where the
    RGB pass composites on ``colour``. Both trainers (the core loop, ``ns-train splatent``) use it."""
    ds = codec.downscale
    flat = colour.to(device=device, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, ds * 2, ds * 2)
    return codec.encode(flat).float().mean(dim=(0, 2, 3))
