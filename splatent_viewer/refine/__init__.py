"""The Splatent refiner: one UNet pass over a grid of the target latent and its nearest training views' latents.

- :mod:`.grid`: tiling target + references into one grid and cropping the target back out.
- :mod:`.refiner`: :class:`RefinerConfig` and :class:`Refiner` (normalise, tile, one UNet pass
  at a fixed timestep without noise, x0, crop).
- :mod:`.embedded_unet`: the compact UNet trained from scratch (identity at init).
- :mod:`.sd_turbo`: SD-Turbo's UNet with a cached prompt embedding (4-channel SD latents).
- :mod:`.checkpoint`: ``save_refiner`` / ``load_refiner`` (folder: refiner.safetensors + refiner.json).

Making refiners (dataset, training, evaluation) is :mod:`splatent_viewer.refiner_training`, a floor above.
"""

from splatent_viewer.refine.checkpoint import load_refiner, read_refiner_config, save_refiner
from splatent_viewer.refine.embedded_unet import EmbeddedUNetConfig
from splatent_viewer.refine.grid import grid_layout, tile_grid, untile_cells, untile_target
from splatent_viewer.refine.refiner import Refiner, RefinerConfig, fit_latent_normalisation, guided_from

__all__ = [
    "EmbeddedUNetConfig",
    "Refiner",
    "RefinerConfig",
    "fit_latent_normalisation",
    "grid_layout",
    "guided_from",
    "load_refiner",
    "read_refiner_config",
    "save_refiner",
    "tile_grid",
    "untile_cells",
    "untile_target",
]
