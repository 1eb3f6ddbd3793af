"""Image losses and metrics shared by the trainers and evaluators."""

from __future__ import annotations

import torch
from jaxtyping import Float
from pytorch_msssim import ssim as _ssim
from torch import Tensor


def ssim(a: Float[Tensor, "B 3 H W"], b: Float[Tensor, "B 3 H W"]) -> Float[Tensor, ""]:
    """Mean SSIM (11×11 Gaussian window, σ=1.5, data range 1), as splatfacto's loss and eval use."""
    return _ssim(a, b, data_range=1.0, size_average=True)


def psnr(a: Float[Tensor, "*batch"], b: Float[Tensor, "*batch"]) -> float:
    """PSNR in dB for images in [0, 1]."""
    mse = torch.mean((a.float() - b.float()) ** 2).clamp_min(1e-12)
    return float(-10.0 * torch.log10(mse))


def l1_ssim_loss(
    render: Float[Tensor, "B 3 H W"], target: Float[Tensor, "B 3 H W"], *, ssim_lambda: float = 0.2
) -> Float[Tensor, ""]:
    """3DGS photometric loss: (1 - λ)·L1 + λ·(1 - SSIM)."""
    return (1 - ssim_lambda) * (render - target).abs().mean() + ssim_lambda * (1 - ssim(render, target))
