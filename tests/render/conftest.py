"""Shared helpers for the rasterizer tests: a dense, literal re-statement of gsplat's per-pixel loop."""

from __future__ import annotations

import pytest
import torch


def dense_composite(
    *,
    means2d: torch.Tensor,  # [C, N, 2]
    conics: torch.Tensor,  # [C, N, 3]
    opacities: torch.Tensor,  # [C, N]
    colors: torch.Tensor,  # [C, N, D]
    radii: torch.Tensor,  # [C, N]
    depths: torch.Tensor,  # [C, N]
    width: int,
    height: int,
    tile_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All pixels at once, one Gaussian at a time in depth order, with gsplat's rules:
    a Gaussian reaches a pixel only if the pixel's tile is inside its radius box; skipped when
    sigma < 0 or alpha < 1/255; alpha capped at 0.999; the pixel stops (excluding that Gaussian)
    when the next transmittance would be <= 1e-4."""
    C, N, D = colors.shape
    dtype = means2d.dtype
    out = torch.zeros(C, height, width, D, dtype=dtype)
    alphas = torch.zeros(C, height, width, 1, dtype=dtype)
    jj, ii = torch.meshgrid(torch.arange(width), torch.arange(height), indexing="xy")
    px, py = jj.to(dtype) + 0.5, ii.to(dtype) + 0.5
    tx_pix, ty_pix = jj // tile_size, ii // tile_size
    tw, th = -(-width // tile_size), -(-height // tile_size)
    for c in range(C):
        T = torch.ones(height, width, dtype=dtype)
        done = torch.zeros(height, width, dtype=torch.bool)
        acc = torch.zeros(height, width, D, dtype=dtype)
        key = depths[c].to(torch.float32)
        order = [int(g) for g in torch.argsort(key, stable=True) if radii[c, g] > 0]
        for g in order:
            r = float(radii[c, g])
            mx, my = means2d[c, g].tolist()
            x0 = min(max(0, int(torch.floor(torch.tensor(mx / tile_size - r / tile_size)))), tw)
            x1 = min(max(0, int(torch.ceil(torch.tensor(mx / tile_size + r / tile_size)))), tw)
            y0 = min(max(0, int(torch.floor(torch.tensor(my / tile_size - r / tile_size)))), th)
            y1 = min(max(0, int(torch.ceil(torch.tensor(my / tile_size + r / tile_size)))), th)
            in_box = (tx_pix >= x0) & (tx_pix < x1) & (ty_pix >= y0) & (ty_pix < y1)
            a, b, cc = conics[c, g]
            dx, dy = means2d[c, g, 0] - px, means2d[c, g, 1] - py
            sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
            alpha = torch.clamp(opacities[c, g] * torch.exp(-sigma), max=0.999)
            active = in_box & ~done & (sigma >= 0) & (alpha >= 1.0 / 255.0)
            next_T = T * (1 - alpha)
            stop = active & (next_T <= 1e-4)
            done = done | stop
            use = active & ~stop
            acc = acc + torch.where(use, alpha * T, 0.0)[..., None] * colors[c, g]
            T = torch.where(use, next_T, T)
        out[c] = acc
        alphas[c, ..., 0] = 1 - T
    return out, alphas


@pytest.fixture
def dense_reference():
    return dense_composite
