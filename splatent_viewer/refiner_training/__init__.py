"""Making and judging refiners: the floor above :mod:`splatent_viewer.trained` and :mod:`splatent_viewer.frame`.

- :mod:`.dataset`: the refiner dataset on disk (sharded safetensors + ``index.json``).
- :mod:`.build_dataset`: ``splatent-refiner make-dataset`` (the core trainer on fractions of each scene's views,
  renders of the views it did not see).
- :mod:`.train`: ``splatent-refiner train`` (single process or DDP with accelerate).
- :mod:`.evaluate`: ``splatent-refiner eval`` (decoded vs enhanced vs RGB splats per scene and fraction).

The refiner model itself (grid, UNets, checkpoints) is :mod:`splatent_viewer.refine`, below the trained scene.
"""
