"""A fixed 3-component PCA of latent vectors, to show C-channel latent renders as RGB.

The basis is fitted once on the training latents (and saved with the model), so the colours of a
region stay the same from view to view and across restarts.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def fit_pca(samples: Float[Tensor, "M C"], *, max_samples: int = 200_000) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Returns ``mean`` [C], ``components`` [C, 3] and per-component ``lo``/``hi`` [3] (1st/99th
    percentiles of the projections, for normalising to [0, 1]). Component signs are fixed so that
    each component's largest-magnitude entry is positive (deterministic colours)."""
    x = samples.detach().float()
    if x.shape[0] > max_samples:  # evenly spaced subset: deterministic
        x = x[torch.linspace(0, x.shape[0] - 1, max_samples).long()]
    mean = x.mean(dim=0)
    centered = x - mean
    _, _, vh = torch.linalg.svd(centered, full_matrices=False)
    k = min(3, vh.shape[0])
    comps = torch.zeros(x.shape[1], 3, dtype=x.dtype)
    comps[:, :k] = vh[:k].T
    sign = torch.sign(comps.gather(0, comps.abs().argmax(dim=0, keepdim=True)))
    comps = comps * torch.where(sign == 0, torch.ones_like(sign), sign)
    proj = centered @ comps
    lo = torch.quantile(proj, 0.01, dim=0)
    hi = torch.quantile(proj, 0.99, dim=0)
    hi = torch.where(hi - lo < 1e-6, lo + 1.0, hi)
    return mean, comps, lo, hi


def project_pca(
    latent: Float[Tensor, "H W C"], *, mean: Tensor, components: Tensor, lo: Tensor, hi: Tensor
) -> Float[Tensor, "H W 3"]:
    """Latent image → RGB in [0, 1] through the fixed basis."""
    proj = (latent.float() - mean.to(latent.device)) @ components.to(latent.device)
    return ((proj - lo.to(latent.device)) / (hi - lo).to(latent.device)).clamp(0.0, 1.0)
