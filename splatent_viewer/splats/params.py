"""Gaussian parameters carrying RGB (spherical harmonics) and a diffusion-VAE latent vector.

Parameters are stored raw, in splatfacto's naming so that nerfstudio checkpoints, gsplat's
densification strategies and our own trainer all share one layout:

- ``means`` [N, 3], ``scales`` [N, 3] (log), ``quats`` [N, 4] (wxyz, unnormalised),
  ``opacities`` [N, 1] (logit), ``features_dc`` [N, 3] (SH DC), ``features_rest`` [N, K-1, 3],
- ``latents`` [N, C]: the codec-latent vector of each Gaussian (C = codec channels).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeAlias, TypedDict

import torch
from jaxtyping import Float
from scipy.spatial import KDTree
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.splats.sh import num_sh_bases, rgb_to_sh

SPLAT_KEYS = ("means", "scales", "quats", "opacities", "features_dc", "features_rest", "latents")

SplatParams: TypeAlias = Mapping[str, Tensor] | torch.nn.ParameterDict
"""Gaussian parameters by name: tensors in a mapping, or the ``ParameterDict`` being trained (which is no
``Mapping``, to type checkers nor to ``isinstance``)."""


class SplatGeometry(TypedDict):
    """The Gaussians as the rasterizer takes them (``rasterize``, ``project_screen``): activated, not raw."""

    means: Float[Tensor, "N 3"]
    quats: Float[Tensor, "N 4"]
    """wxyz, unnormalised (the rasterizers normalise)."""
    scales: Float[Tensor, "N 3"]
    """exp of the log scales."""
    opacities: Float[Tensor, " N"]
    """sigmoid of the logits."""


def splat_geometry(params: SplatParams) -> SplatGeometry:
    """``means``, ``quats``, ``scales`` and ``opacities`` of raw ``params`` as the rasterizer takes them (pass them on
    with ``**``); differentiable."""
    return SplatGeometry(
        means=params["means"],
        quats=params["quats"],
        scales=torch.exp(params["scales"]),
        opacities=torch.sigmoid(params["opacities"]).squeeze(-1),
    )


def knn_mean_distance(points: Float[Tensor, "N 3"], *, k: int = 3) -> Float[Tensor, " N"]:
    """Mean distance of each point to its ``k`` nearest other points: a k-d tree (scipy's ``KDTree``, as splatfacto's
    initialisation uses a tree), O(N log N): a 500k-point cloud takes seconds where all-pairs distances took minutes."""
    n = points.shape[0]
    k = min(k, max(n - 1, 1))
    if n < 2:
        return torch.zeros(n, dtype=points.dtype, device=points.device)
    xyz = points.detach().to("cpu", torch.float64).numpy()
    # k + 1: the nearest is the point itself (or a duplicate of it, at the same distance 0)
    dist, _ = KDTree(xyz).query(xyz, k=k + 1)
    return torch.from_numpy(dist[:, 1:].mean(axis=1)).to(device=points.device, dtype=points.dtype)


def init_splats(
    *,
    points: Float[Tensor, "N 3"],
    colors: Float[Tensor, "N 3"] | None,
    latent_channels: int,
    sh_degree: int = 3,
    init_opacity: float = 0.1,
    latents: Float[Tensor, "N C"] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Raw splat parameters at ``points`` (splatfacto's initialisation: isotropic scales from the
    3-NN distance, random rotations, constant opacity), with RGB from ``colors`` (random if None)
    and latents from ``latents`` (zeros if None)."""
    n = points.shape[0]
    if n == 0:
        raise SplatentError("Cannot initialise Gaussians from an empty point set.")
    dev, dt = points.device, points.dtype
    dist = knn_mean_distance(points).clamp_min(1e-7)
    u = torch.rand(n, 3, generator=generator, device="cpu", dtype=dt).to(dev)
    # Uniform random unit quaternions (Shoemake).
    quats = torch.stack(
        [
            torch.sqrt(1 - u[:, 0]) * torch.sin(2 * math.pi * u[:, 1]),
            torch.sqrt(1 - u[:, 0]) * torch.cos(2 * math.pi * u[:, 1]),
            torch.sqrt(u[:, 0]) * torch.sin(2 * math.pi * u[:, 2]),
            torch.sqrt(u[:, 0]) * torch.cos(2 * math.pi * u[:, 2]),
        ],
        dim=-1,
    )
    if colors is None:
        colors = torch.rand(n, 3, generator=generator, device="cpu", dtype=dt).to(dev)
    if latents is None:
        latents = torch.zeros(n, latent_channels, device=dev, dtype=dt)
    elif latents.shape != (n, latent_channels):
        raise SplatentError(f"Initial latents have shape {tuple(latents.shape)}, expected ({n}, {latent_channels}).")
    k = num_sh_bases(sh_degree)
    return {
        "means": points.clone(),
        "scales": torch.log(dist)[:, None].repeat(1, 3),
        "quats": quats,
        "opacities": torch.logit(torch.full((n, 1), init_opacity, device=dev, dtype=dt)),
        "features_dc": rgb_to_sh(colors.to(dt)),
        "features_rest": torch.zeros(n, k - 1, 3, device=dev, dtype=dt),
        "latents": latents.to(dt),
    }


def check_splats(params: SplatParams, *, latent_channels: int | None = None, where: str = "splats") -> int:
    """Validates keys and shapes; returns N. ``where`` names the source (e.g. a checkpoint path)."""
    missing = [k for k in SPLAT_KEYS if k not in params]
    if missing:
        raise SplatentError(
            f"{where} lacks Gaussian parameters {missing}; is it a splatent checkpoint (not splatfacto)?"
        )
    n = params["means"].shape[0]
    for key in SPLAT_KEYS:
        if params[key].shape[0] != n:
            raise SplatentError(f"{where}: '{key}' has {params[key].shape[0]} rows, 'means' has {n}.")
    if latent_channels is not None and params["latents"].shape[1] != latent_channels:
        raise SplatentError(
            f"{where} stores {params['latents'].shape[1]}-channel latents but the codec has {latent_channels} channels; "
            "use the codec the scene was trained with."
        )
    return n
