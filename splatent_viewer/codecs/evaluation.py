"""Round-trip quality of a codec: PSNR of ``decode(encode(x))`` on square crops of scene images.

Shared by the codec tests and ``benchmarks/codec_psnr.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.codecs.base import LatentCodec
from splatent_viewer.errors import SplatentError


def psnr(pred: Float[Tensor, "B 3 H W"], target: Float[Tensor, "B 3 H W"]) -> Float[Tensor, " B"]:
    """Per-image PSNR in dB for images in ``[0, 1]`` (``pred`` is clamped to ``[0, 1]`` first)."""
    mse = (pred.float().clamp(0, 1) - target.float()).square().flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-12))


def center_square(images: Float[Tensor, "B C H W"], size: int) -> Float[Tensor, "B C size size"]:
    """Centre crop to a square, then resize (antialiased bilinear) to ``size`` x ``size``."""
    height, width = images.shape[-2:]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = images[..., top : top + side, left : left + side]
    if side == size:
        return crop
    return F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def load_rgb(path: Path, *, background: float = 1.0) -> Float[Tensor, "3 H W"]:
    """An image file as float RGB in ``[0, 1]``; an alpha channel is composited over ``background``."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        array = np.asarray(img.convert("RGBA" if img.mode in ("RGBA", "LA", "P") else "RGB"))
    pixels = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255
    if pixels.shape[0] == 4:
        rgb, alpha = pixels[:3], pixels[3:]
        pixels = rgb * alpha + background * (1 - alpha)
    return pixels


def scene_image_paths(scene: Path) -> list[Path]:
    """Image files of a nerfstudio (``transforms.json``) or blender (``transforms_train.json``) scene, in file order."""
    for name in ("transforms.json", "transforms_train.json"):
        meta = scene / name
        if meta.is_file():
            break
    else:
        raise SplatentError(
            f"{scene} has neither transforms.json nor transforms_train.json; pass a nerfstudio scene folder."
        )
    paths = []
    for frame in json.loads(meta.read_text())["frames"]:
        path = scene / frame["file_path"]
        paths.append(path if path.suffix else path.with_suffix(".png"))  # blender omits ".png"
    return paths


def evenly_spaced(items: list, count: int) -> list:
    """``count`` items spread over the list (all of them when it is shorter)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


@torch.no_grad()
def round_trip_psnr(
    codec: LatentCodec, images: Float[Tensor, "B 3 H W"], *, batch_size: int = 4
) -> Float[Tensor, " B"]:
    """PSNR (dB) of ``codec.decode(codec.encode(images))`` against ``images``, per image."""
    scores = []
    for chunk in images.split(batch_size):
        chunk = chunk.to(device=codec.device, dtype=codec.dtype)
        scores.append(psnr(codec.decode(codec.encode(chunk)), chunk).cpu())
    return torch.cat(scores)
