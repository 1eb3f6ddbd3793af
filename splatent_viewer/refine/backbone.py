"""What a refiner backbone is to :class:`~splatent_viewer.refine.refiner.Refiner` and to the checkpoint code."""

from __future__ import annotations

from typing import Any

from torch import nn


class RefinerBackbone(nn.Module):
    """A UNet from a latent grid and the fixed timestep (``forward(x_t, timesteps)``) to its raw output, which the
    refiner turns into x0 as its config's prediction type says."""

    downsample_factor: int
    """Grid height/width must be multiples of this (the refiner pads)."""

    def export_config(self) -> dict[str, Any]:
        """What rebuilding this backbone needs beyond :class:`~splatent_viewer.refine.refiner.RefinerConfig`
        (saved in ``refiner.json``)."""
        raise NotImplementedError


__all__ = ["RefinerBackbone"]
