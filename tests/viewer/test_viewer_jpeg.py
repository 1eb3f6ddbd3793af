"""Frame JPEG encoding: decodes back to the image (CPU path here; the nvJPEG path is a GPU test)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from splatent_viewer.viewer.jpeg import encode_jpeg, gpu_jpeg_available


def _image(device: str) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, 48), torch.linspace(0, 1, 64), indexing="ij")
    rgb = torch.stack([x, y, 0.5 * (x + y)], dim=-1)
    return (rgb * 255 + 0.5).to(torch.uint8).to(device)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)


def test_cpu_frames_round_trip_and_quality_matters() -> None:
    img = _image("cpu")
    high, low = encode_jpeg(img, quality=95), encode_jpeg(img, quality=20)
    assert high[:2] == b"\xff\xd8" and high[-2:] == b"\xff\xd9"  # JPEG SOI / EOI markers
    decoded = _decode(high)
    assert decoded.shape == (48, 64, 3)
    assert np.abs(decoded - img.numpy()).mean() < 2.0
    assert len(low) < len(high)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_frames_are_encoded_on_the_gpu_and_round_trip() -> None:
    img = _image("cuda")
    assert gpu_jpeg_available(img.device), "torchvision with nvJPEG expected on the GPU machine"
    decoded = _decode(encode_jpeg(img, quality=95))
    assert np.abs(decoded - img.cpu().numpy()).mean() < 2.0
