"""Image losses and metrics shared by the trainers and evaluators."""

from __future__ import annotations

import functools

import torch
from jaxtyping import Float
from pytorch_msssim import ssim as _ssim
from pytorch_msssim.ssim import _fspecial_gauss_1d  # the window its ssim builds, to build it once per device
from torch import Tensor


@functools.lru_cache(maxsize=8)
def _ssim_window(device: torch.device, dtype: torch.dtype, channels: int) -> Tensor:
    """pytorch_msssim's 11-tap Gaussian window (σ=1.5) for ``channels`` channels, made once per device: its ``ssim``
    builds the window on the host and copies it to the images' device on every call, a sync every training step."""
    with torch.inference_mode(False):  # a normal tensor even if first made in an eval: training convolves with it too
        return _fspecial_gauss_1d(11, 1.5).repeat([channels, 1, 1, 1]).to(device=device, dtype=dtype)


def ssim(a: Float[Tensor, "B C H W"], b: Float[Tensor, "B C H W"]) -> Float[Tensor, ""]:
    """Mean SSIM (11×11 Gaussian window, σ=1.5, data range 1), as splatfacto's loss and eval use."""
    return _ssim(a, b, data_range=1.0, size_average=True, win=_ssim_window(a.device, a.dtype, a.shape[1]))


def psnr_tensor(a: Float[Tensor, "*batch"], b: Float[Tensor, "*batch"]) -> Float[Tensor, ""]:
    """PSNR in dB for images in [0, 1], as a tensor on their device (no host read: a training metric)."""
    return -10.0 * torch.log10(torch.mean((a.float() - b.float()) ** 2).clamp_min(1e-12))


def psnr(a: Float[Tensor, "*batch"], b: Float[Tensor, "*batch"]) -> float:
    """PSNR in dB for images in [0, 1]."""
    return float(psnr_tensor(a, b))


def l1_ssim_loss(
    render: Float[Tensor, "B 3 H W"], target: Float[Tensor, "B 3 H W"], *, ssim_lambda: float = 0.2
) -> Float[Tensor, ""]:
    """3DGS photometric loss: (1 - λ)·L1 + λ·(1 - SSIM)."""
    return (1 - ssim_lambda) * (render - target).abs().mean() + ssim_lambda * (1 - ssim(render, target))
