"""Fixtures for the codec tests."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.codecs.taef2 import TAEF2Codec


@pytest.fixture(scope="module")
def taef2() -> TAEF2Codec:
    """The shipped TAEF2 codec (assets/taef2), float32 on CPU."""
    return TAEF2Codec.from_dir()


def _synthetic_image(size: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([x, y, 0.5 + 0.3 * torch.sin(6.28 * (x + y))])
    disc = (x - 0.35) ** 2 + (y - 0.4) ** 2 < 0.15**2
    image[:, disc] = torch.tensor([0.9, 0.2, 0.1])[:, None]
    box = (x > 0.6) & (x < 0.85) & (y > 0.55) & (y < 0.8)
    image[:, box] = torch.tensor([0.1, 0.3, 0.8])[:, None]
    return image[None]


@pytest.fixture
def synthetic_image():
    """``make(size)`` → a smooth test picture (colour gradients, a sine band, a disc, a box), [1, 3, size, size] in [0, 1]."""
    return _synthetic_image
