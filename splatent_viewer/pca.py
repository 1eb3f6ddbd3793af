"""A fixed 3-component PCA of latent vectors, to show a C-channel latent render as RGB.

Fitted once on the reference bank's (training) latents, so a region keeps its colour from view
to view. The viewer's latent mode and ``ns-train splatent``'s ``latent`` output both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.errors import SplatentError


@dataclass
class LatentPCA:
    """Projection of C-dim latents onto 3 principal components, normalised to [0, 1]."""

    mean: Float[Tensor, " C"]
    """Mean latent vector."""
    components: Float[Tensor, "C 3"]
    """Principal directions (columns), sign-fixed so each one's largest-magnitude entry is positive."""
    lo: Float[Tensor, "3"]
    """1st percentile of each projection (maps to 0)."""
    hi: Float[Tensor, "3"]
    """99th percentile of each projection (maps to 1)."""

    @classmethod
    def fit(cls, *, latents: Sequence[Float[Tensor, "C _h _w"]], max_samples: int = 100_000) -> LatentPCA:
        """Fits on every pixel of ``latents`` (an evenly spaced subset of ``max_samples`` when larger)."""
        if len(latents) == 0:
            raise SplatentError("Cannot fit the latent PCA: the scene has no reference latents (empty reference bank).")
        x = torch.cat([lat.detach().float().flatten(1).T for lat in latents]).cpu()  # [M, C]
        if x.shape[0] > max_samples:  # deterministic subset
            x = x[torch.linspace(0, x.shape[0] - 1, max_samples).long()]
        mean = x.mean(dim=0)
        centred = x - mean
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)
        k = min(3, vh.shape[0])
        comps = torch.zeros(x.shape[1], 3)
        comps[:, :k] = vh[:k].T
        sign = torch.sign(comps.gather(0, comps.abs().argmax(dim=0, keepdim=True)))
        comps = comps * torch.where(sign == 0, torch.ones_like(sign), sign)
        proj = centred @ comps
        lo, hi = torch.quantile(proj, 0.01, dim=0), torch.quantile(proj, 0.99, dim=0)
        hi = torch.where(hi - lo < 1e-6, lo + 1.0, hi)
        return cls(mean=mean, components=comps, lo=lo, hi=hi)

    def project(self, latent: Float[Tensor, "C h w"]) -> Float[Tensor, "h w 3"]:
        """A latent image → RGB in [0, 1]."""
        if latent.shape[0] != self.mean.shape[0]:
            raise SplatentError(f"Latent has {latent.shape[0]} channels, the PCA basis {self.mean.shape[0]}.")
        dev = latent.device
        proj = (latent.float().permute(1, 2, 0) - self.mean.to(dev)) @ self.components.to(dev)
        return ((proj - self.lo.to(dev)) / (self.hi - self.lo).to(dev)).clamp(0.0, 1.0)
