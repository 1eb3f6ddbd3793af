"""JPEG-encoding viewer frames where they are: nvJPEG on the GPU (torchvision) for CUDA frames, libjpeg (Pillow)
for CPU frames or when torchvision has no GPU encoder. A CUDA frame then never crosses to the host uncompressed."""

from __future__ import annotations

import functools
import io
import logging

import torch
from jaxtyping import UInt8
from PIL import Image
from torch import Tensor

LOG = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def gpu_jpeg_available(device: torch.device) -> bool:
    """True when ``torchvision.io.encode_jpeg`` encodes tensors on ``device`` (a CUDA device) with nvJPEG."""
    try:
        from torchvision.io import encode_jpeg

        encode_jpeg(torch.zeros(3, 16, 16, dtype=torch.uint8, device=device), quality=80)
    except Exception as err:  # noqa: BLE001 - no torchvision, a CPU-only build, or no nvJPEG: use Pillow
        LOG.info("GPU JPEG encoding unavailable on %s (%s); frames are encoded on the CPU.", device, err)
        return False
    return True


def encode_jpeg(image: UInt8[Tensor, "H W 3"], *, quality: int) -> bytes:
    """JPEG bytes of an RGB ``uint8`` image (on any device)."""
    if image.is_cuda and gpu_jpeg_available(image.device):
        from torchvision.io import encode_jpeg as tv_encode_jpeg

        data = tv_encode_jpeg(image.permute(2, 0, 1).contiguous(), quality=quality)
        assert isinstance(data, Tensor)  # one image in, one JPEG out
        return data.cpu().numpy().tobytes()
    buffer = io.BytesIO()
    Image.fromarray(image.cpu().numpy()).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


__all__ = ["encode_jpeg", "gpu_jpeg_available"]
