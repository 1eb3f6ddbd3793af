"""Tiling a target latent and its reference latents into one grid, so one UNet's self-attention spans all views.

Cells are filled row-major: the target takes the top-left cell, reference ``i`` the cell
``i + 1``. Cells without a latent are zero. All latents in a grid share one size ``h x w``
(references are resized to the target's size before tiling).

Layouts (rows x cols) for ``k`` references, ``n = k + 1`` cells: ``rows = isqrt(n)``,
``cols = ceil(n / rows)`` — k=0 → 1x1, 1 → 1x2, 2 → 1x3, 3 → 2x2, 4 and 5 → 2x3, 6 and 7 → 2x4.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.errors import SplatentError


def grid_layout(k: int) -> tuple[int, int]:
    """``(rows, cols)`` of the grid holding a target and ``k`` references."""
    if k < 0:
        raise SplatentError(f"Number of references must be >= 0, got {k}.")
    cells = k + 1
    rows = math.isqrt(cells)
    return rows, -(-cells // rows)


def tile_grid(
    *,
    target: Float[Tensor, "B C h w"],
    references: Float[Tensor, "_B K _C _h _w"],
    layout: tuple[int, int] | None = None,
) -> Float[Tensor, "B C H W"]:
    """One ``[B, C, rows*h, cols*w]`` grid: target top-left, references row-major after it, empty cells zero.

    ``references`` must be ``[B, K, C, h, w]`` like the target; others are a :class:`SplatentError` saying so.

    ``layout`` defaults to :func:`grid_layout` of ``K``; a larger layout (e.g. the one a refiner was
    trained with) keeps its shape and leaves the cells past the last reference zero.
    """
    B, C, h, w = target.shape
    if references.ndim != 5 or references.shape[0] != B or references.shape[2:] != target.shape[1:]:
        raise SplatentError(
            f"References must be shaped [B, K, C, h, w] = [{B}, K, {C}, {h}, {w}] like the target, got "
            f"{list(references.shape)}; resize them to the target's latent size first."
        )
    K = references.shape[1]
    rows, cols = grid_layout(K) if layout is None else layout
    if rows * cols < K + 1:
        raise SplatentError(f"A {rows}x{cols} grid holds {rows * cols - 1} references, got {K}.")
    cells = torch.cat([target[:, None], references], dim=1)
    if rows * cols > K + 1:
        cells = torch.cat([cells, cells.new_zeros(B, rows * cols - K - 1, C, h, w)], dim=1)
    # [B, rows, cols, C, h, w] -> [B, C, rows, h, cols, w] -> [B, C, rows*h, cols*w]
    grid = cells.view(B, rows, cols, C, h, w).permute(0, 3, 1, 4, 2, 5)
    return grid.reshape(B, C, rows * h, cols * w)


def untile_target(grid: Float[Tensor, "B C H W"], *, height: int, width: int) -> Float[Tensor, "B C h w"]:
    """The top-left (target) cell of a grid of ``height x width`` cells."""
    return grid[:, :, :height, :width]


def untile_cells(grid: Float[Tensor, "B C H W"], *, height: int, width: int) -> Float[Tensor, "B N C h w"]:
    """Every cell of a grid, row-major (cell 0 is the target); the inverse of :func:`tile_grid`."""
    B, C, H, W = grid.shape
    if H % height or W % width:
        raise SplatentError(f"A {H}x{W} grid is not made of {height}x{width} cells.")
    rows, cols = H // height, W // width
    cells = grid.reshape(B, C, rows, height, cols, width).permute(0, 2, 4, 1, 3, 5)
    return cells.reshape(B, rows * cols, C, height, width)


__all__ = ["grid_layout", "tile_grid", "untile_cells", "untile_target"]
