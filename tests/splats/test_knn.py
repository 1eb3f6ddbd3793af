"""The initial scales' k-nearest-neighbour distances (k-d tree) equal the all-pairs ones."""

from __future__ import annotations

import torch

from splatent_viewer.splats.params import knn_mean_distance


def _brute(points: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(points.double(), points.double())
    return d.topk(k + 1, dim=1, largest=False).values[:, 1:].mean(dim=1)


def test_tree_distances_equal_all_pairs_ones():
    g = torch.Generator().manual_seed(0)
    points = torch.rand(3000, 3, generator=g) * torch.tensor([4.0, 1.0, 0.1])  # anisotropic cloud
    points[100:110] = points[:10]  # exact duplicates: their nearest "other" point is at distance 0
    got = knn_mean_distance(points)
    assert got.dtype == torch.float32 and got.shape == (3000,)
    torch.testing.assert_close(got.double(), _brute(points, 3), rtol=1e-6, atol=1e-7)


def test_tiny_clouds():
    two = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    torch.testing.assert_close(knn_mean_distance(two), torch.tensor([5.0, 5.0]))  # k shrinks to n - 1
    assert knn_mean_distance(torch.zeros(1, 3)).shape == (1,)
