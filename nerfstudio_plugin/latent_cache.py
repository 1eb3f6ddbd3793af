"""On-disk cache of codec latents of training images, so a restarted run does not re-encode.

Layout: ``<root>/<codec name>/<sha256>.safetensors`` with one tensor ``latent`` [C, h, w]. The key is
the SHA-256 of the (cropped) image bytes, its shape and dtype, plus any extra text the caller adds
(e.g. the background colour an RGBA image was composited with). ``root`` is, in order: an explicit
directory, the ``SPLATENT_LATENT_CACHE`` environment variable, ``~/.cache/splatent/latents``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file
from torch import Tensor

ENV_VAR = "SPLATENT_LATENT_CACHE"


def default_cache_root() -> Path:
    """``$SPLATENT_LATENT_CACHE`` if set, else ``~/.cache/splatent/latents``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "splatent" / "latents"


def crop_to_multiple(image: Tensor, multiple: int) -> Tensor:
    """Crops an [H, W, ...] image to the largest multiple of ``multiple`` in H and W, keeping the
    top-left corner, so pixel coordinates (and hence fx, fy, cx, cy) stay valid unchanged."""
    h, w = image.shape[0] // multiple * multiple, image.shape[1] // multiple * multiple
    return image[:h, :w]


def image_key(image: Tensor, *, extra: str = "") -> str:
    """SHA-256 hex digest of an image tensor's content, shape and dtype (plus ``extra``)."""
    data = image.detach().contiguous().cpu()
    digest = hashlib.sha256()
    digest.update(f"{tuple(data.shape)}|{data.dtype}|{extra}|".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes() if data.dtype != torch.uint8 else data.numpy().tobytes())
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
        """Stores ``latent`` atomically (temp file + ``os.replace``)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"latent": latent.detach().contiguous().cpu()}, tmp)
            os.replace(tmp, self.path(key))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
