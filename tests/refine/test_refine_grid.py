"""Grid tiling of a target latent and its references (splatent_viewer.refine.grid)."""

from __future__ import annotations

import pytest
import torch

from splatent_viewer.errors import SplatentError
from splatent_viewer.refine.grid import grid_layout, tile_grid, untile_cells, untile_target


def test_layouts_follow_the_paper() -> None:
    expected = {0: (1, 1), 1: (1, 2), 2: (1, 3), 3: (2, 2), 4: (2, 3), 5: (2, 3), 6: (2, 4), 8: (3, 3)}
    assert {k: grid_layout(k) for k in expected} == expected
    with pytest.raises(SplatentError):
        grid_layout(-1)


@pytest.mark.parametrize("k", range(6))
def test_round_trip(k: int) -> None:
    B, C, h, w = 2, 3, 4, 5
    target = torch.randn(B, C, h, w)
    refs = torch.randn(B, k, C, h, w)
    grid = tile_grid(target=target, references=refs)
    rows, cols = grid_layout(k)
    assert grid.shape == (B, C, rows * h, cols * w)
    assert torch.equal(untile_target(grid, height=h, width=w), target)
    cells = untile_cells(grid, height=h, width=w)
    assert torch.equal(cells[:, 0], target)
    assert torch.equal(cells[:, 1 : k + 1], refs)
    assert not cells[:, k + 1 :].any(), "cells without a latent must be zero"


def test_cells_are_row_major_and_batches_stay_apart() -> None:
    h, w = 2, 3
    target = torch.stack([torch.full((1, h, w), 10.0), torch.full((1, h, w), 20.0)])
    refs = torch.stack([torch.arange(1.0, 4.0), torch.arange(21.0, 24.0)])[:, :, None, None, None].expand(2, 3, 1, h, w)
    grid = tile_grid(target=target, references=refs)  # 2x2
    # second row, first column = reference 1 (cell 2)
    assert torch.equal(grid[0, 0, h:, :w], torch.full((h, w), 2.0))
    assert torch.equal(grid[1, 0, :h, w:], torch.full((h, w), 21.0))
    assert torch.equal(grid[1, 0, h:, w:], torch.full((h, w), 23.0))


def test_training_layout_with_fewer_references_keeps_its_shape() -> None:
    target, refs = torch.randn(1, 2, 3, 3), torch.randn(1, 1, 2, 3, 3)
    grid = tile_grid(target=target, references=refs, layout=grid_layout(3))
    assert grid.shape == (1, 2, 6, 6)
    assert torch.equal(grid[:, :, :3, 3:], refs[:, 0]) and not grid[:, :, 3:].any()
    with pytest.raises(SplatentError, match="holds 1 references"):
        tile_grid(target=target, references=torch.randn(1, 2, 2, 3, 3), layout=(1, 2))


def test_references_of_another_size_are_refused() -> None:
    with pytest.raises(SplatentError, match="resize them"):
        tile_grid(target=torch.randn(1, 4, 8, 8), references=torch.randn(1, 2, 4, 8, 6))
