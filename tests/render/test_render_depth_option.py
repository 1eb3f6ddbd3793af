"""rasterize(depth=False): the same features and alpha without the expected-depth channel (gsplat then renders 32
latent channels in one pass instead of two)."""

from __future__ import annotations

import math

import pytest
import torch

from splatent_viewer.render import rasterize


def _inputs(device: str, channels: int) -> dict:
    g = torch.Generator().manual_seed(3)
    n = 300
    means = torch.randn(n, 3, generator=g) * 0.5
    means[:, 2] += 3.0
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    f = 32 / (2 * math.tan(math.radians(25)))
    K = torch.tensor([[f, 0, 16.0], [0, f, 16.0], [0, 0, 1]])
    tensors = dict(
        means=means,
        quats=quats,
        scales=torch.rand(n, 3, generator=g) * 0.08 + 0.01,
        opacities=torch.rand(n, generator=g),
        features=torch.randn(n, channels, generator=g),
        viewmats=torch.eye(4)[None],
        Ks=K[None],
    )
    return {k: v.to(device) for k, v in tensors.items()} | dict(width=32, height=32)


@pytest.mark.parametrize(
    "backend, device",
    [
        ("torch", "cpu"),
        pytest.param(
            "gsplat",
            "cuda",
            marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")],
        ),
    ],
)
def test_depth_false_keeps_features_and_alpha(backend: str, device: str) -> None:
    inputs = _inputs(device, channels=32)
    full = rasterize(**inputs, backend=backend)
    lean = rasterize(**inputs, backend=backend, depth=False)
    assert full.depth is not None and lean.depth is None
    assert float(full.alpha.amax()) > 0.5  # the Gaussians are in view
    torch.testing.assert_close(lean.features, full.features, atol=1e-5, rtol=0)
    torch.testing.assert_close(lean.alpha, full.alpha, atol=1e-6, rtol=0)
