"""Our SH evaluation against gsplat's independent pure-torch implementation (Sloan's fast basis)."""

import pytest
import torch
from gsplat.cuda._torch_impl import _spherical_harmonics

from splatent_viewer.splats.sh import eval_sh, num_sh_bases, rgb_to_sh, sh_to_rgb


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_matches_gsplat_basis(degree):
    g = torch.Generator().manual_seed(degree)
    coeffs = torch.randn(500, 16, 3, generator=g, dtype=torch.float64)
    dirs = torch.randn(500, 3, generator=g, dtype=torch.float64) * 3.0  # not unit: both normalise
    ours = eval_sh(degree=degree, coeffs=coeffs, dirs=dirs)
    # gsplat returns the raw SH sum; its rasterization() then applies clamp_min(x + 0.5, 0)
    theirs = torch.clamp_min(_spherical_harmonics(degree, dirs, coeffs) + 0.5, 0.0)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)


def test_dc_roundtrip_and_counts():
    rgb = torch.rand(10, 3)
    torch.testing.assert_close(sh_to_rgb(rgb_to_sh(rgb)), rgb)
    coeffs = torch.zeros(10, 16, 3)
    coeffs[:, 0] = rgb_to_sh(rgb)
    torch.testing.assert_close(eval_sh(degree=3, coeffs=coeffs, dirs=torch.randn(10, 3)), rgb)
    assert [num_sh_bases(d) for d in range(4)] == [1, 4, 9, 16]
    with pytest.raises(ValueError):
        num_sh_bases(4)
