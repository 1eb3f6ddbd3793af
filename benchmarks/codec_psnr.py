"""TAEF2 round-trip PSNR at 256x256 on the shared scenes, and encode/decode time on the current device.

    python benchmarks/codec_psnr.py --num-images 4 [--device cuda] [--scenes temple fern dino lego]

Images are centre-cropped to squares and resized to 256x256 (lego composited over white). PSNR is
of the clamped decode against the input; times are per image (batch 1), median over the images
after one warm-up call. Prints a markdown table.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import tyro

from splatent_viewer.codecs import load_codec
from splatent_viewer.codecs.evaluation import center_square, evenly_spaced, load_rgb, psnr, scene_image_paths
from splatent_viewer.paths import shared_data_dir


@dataclass
class Args:
    num_images: int = 4
    """Images per scene (evenly spaced over the scene's frames)."""
    scenes: tuple[str, ...] = ("temple", "fern", "dino", "lego")
    """Scene folders under <shared data>/scenes."""
    size: int = 256
    """Square side the images are resized to."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    """Torch device."""
    dtype: str = "float32"
    """Codec dtype (float32, float16, bfloat16)."""
    weights: Path | None = None
    """TAEF2 weights folder (default assets/taef2)."""
    data: Path = field(default_factory=lambda: shared_data_dir() / "scenes")
    """Folder holding the scenes."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device: torch.device):
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return out, (time.perf_counter() - start) * 1000


@torch.no_grad()
def main(args: Args) -> None:
    device = torch.device(args.device)
    codec = load_codec("taef2", path=args.weights, device=device, dtype=getattr(torch, args.dtype))
    codec.decode(codec.encode(torch.rand(1, 3, args.size, args.size, device=device)))  # warm-up
    print(f"TAEF2 round trip at {args.size}x{args.size}, {args.num_images} images/scene, device {device} ({args.dtype}, "
          f"{torch.get_num_threads()} threads)\n")  # fmt: skip
    print("| scene | images | PSNR mean (dB) | PSNR min (dB) | encode ms | decode ms |")
    print("|---|---|---|---|---|---|")
    for scene in args.scenes:
        folder = args.data / scene
        if not folder.is_dir():
            print(f"| {scene} | absent | | | | |")
            continue
        scores, enc_ms, dec_ms = [], [], []
        for path in evenly_spaced(scene_image_paths(folder), args.num_images):
            image = center_square(load_rgb(path)[None], args.size).to(device=device, dtype=codec.dtype)
            latents, t_enc = _timed(lambda: codec.encode(image), device)
            decoded, t_dec = _timed(lambda: codec.decode(latents), device)
            scores.append(psnr(decoded, image).item())
            enc_ms.append(t_enc)
            dec_ms.append(t_dec)
        print(f"| {scene} | {len(scores)} | {statistics.mean(scores):.2f} | {min(scores):.2f} | "
              f"{statistics.median(enc_ms):.0f} | {statistics.median(dec_ms):.0f} |")  # fmt: skip


if __name__ == "__main__":
    main(tyro.cli(Args))
