"""Random Gaussian scenes and cameras for tests and benchmarks of the rasterizer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass
class GaussianScene:
    """Activated Gaussian parameters (linear scales, opacities in [0, 1])."""

    means: Float[Tensor, "N 3"]
    quats: Float[Tensor, "N 4"]
    scales: Float[Tensor, "N 3"]
    opacities: Float[Tensor, " N"]
    features: Float[Tensor, "N D"]

    def as_kwargs(self) -> dict[str, Tensor]:
        return dict(
            means=self.means, quats=self.quats, scales=self.scales, opacities=self.opacities, features=self.features
        )


def random_scene(
    n: int,
    *,
    channels: int = 3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    extent: float = 1.0,
    scale_range: tuple[float, float] = (0.005, 0.15),
) -> GaussianScene:
    """``n`` Gaussians in a ``[-extent, extent]^3`` box at the world origin, with log-uniform
    scales, opacities in [0.05, 0.99], random rotations and features in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * extent
    quats = torch.randn(n, 4, generator=g)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    scales = torch.exp(torch.rand(n, 3, generator=g) * (hi - lo) + lo)
    opacities = torch.rand(n, generator=g) * 0.94 + 0.05
    features = torch.rand(n, channels, generator=g)
    return GaussianScene(
        means=means.to(device, dtype), quats=quats.to(device, dtype), scales=scales.to(device, dtype),
        opacities=opacities.to(device, dtype), features=features.to(device, dtype),
    )  # fmt: skip


def orbit_cameras(
    n_cameras: int,
    *,
    width: int,
    height: int,
    distance: float = 3.0,
    spread_deg: float = 25.0,
    focal_factor: float = 1.0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Float[Tensor, "C 4 4"], Float[Tensor, "C 3 3"]]:
    """OpenCV world-to-camera matrices on a horizontal arc looking at the origin, and pinhole
    intrinsics with ``fx = fy = focal_factor * width`` and a centred principal point."""
    viewmats = []
    for i in range(n_cameras):
        yaw = math.radians(spread_deg) * (i - (n_cameras - 1) / 2)
        eye = torch.tensor(
            [distance * math.sin(yaw), -0.3 * distance * (i % 2), -distance * math.cos(yaw)], dtype=torch.float64
        )
        forward = -eye / eye.norm()  # camera +z looks at the origin
        right = torch.linalg.cross(torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64), forward)
        right = right / right.norm()
        down = torch.linalg.cross(forward, right)
        R = torch.stack([right, down, forward])  # rows: camera axes in world coordinates
        vm = torch.eye(4, dtype=torch.float64)
        vm[:3, :3] = R
        vm[:3, 3] = -R @ eye
        viewmats.append(vm)
    f = focal_factor * width
    K = torch.tensor([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]], dtype=torch.float64)
    return torch.stack(viewmats).to(device, dtype), K.expand(n_cameras, 3, 3).clone().to(device, dtype)
