"""The one latent PCA (viewer's latent mode and ns-train splatent's ``latent`` output)."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.pca import LatentPCA


def test_pca_basis_is_fixed_and_in_range() -> None:
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 8, generator=g)
    samples = torch.randn(2000, 3, generator=g) * torch.tensor([5.0, 2.0, 1.0]) @ basis + 3.0  # [M, C=8]
    latents = [samples[:1000].T.reshape(8, 25, 40), samples[1000:].T.reshape(8, 40, 25)]
    pca = LatentPCA.fit(latents=latents)
    torch.testing.assert_close(pca.components.T @ pca.components, torch.eye(3), atol=1e-4, rtol=0)
    # the data lie in a 3D subspace: the 3 components span it
    recon = (samples - pca.mean) @ pca.components @ pca.components.T + pca.mean
    torch.testing.assert_close(recon, samples, atol=1e-3, rtol=0)
    again = LatentPCA.fit(latents=latents[::-1])  # same pixels, another order: same basis and signs
    torch.testing.assert_close(again.components, pca.components, atol=1e-4, rtol=0)
    img = pca.project(latents[0])
    assert img.shape == (25, 40, 3) and float(img.min()) >= 0 and float(img.max()) <= 1
    with pytest.raises(SplatentError, match="channels"):
        pca.project(torch.zeros(4, 2, 2))
