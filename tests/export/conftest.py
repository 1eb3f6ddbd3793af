"""Fixtures of the export tests: a tiny randomly initialised refiner for the enhanced modes."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_refiner_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small embedded refiner (32 TAEF2 channels, k=2) with random weights, saved with ``save_refiner``.

    The embedded UNet starts as the identity; its weights are randomised so that the enhanced
    render differs from the decoded one and depends on the references.
    """
    import torch

    from splatent_viewer.refine.checkpoint import save_refiner
    from splatent_viewer.refine.embedded_unet import EmbeddedUNetConfig
    from splatent_viewer.refine.refiner import RefinerConfig

    torch.manual_seed(0)
    config = RefinerConfig(
        latent_channels=32,
        num_references=2,
        embedded=EmbeddedUNetConfig(
            block_out_channels=(32, 32), norm_num_groups=8, attention_head_dim=16, attention_from_level=2
        ),
    )
    refiner = config.setup(device="cpu", dtype=torch.float32)
    with torch.no_grad():
        for p in refiner.parameters():
            p.normal_(0.0, 0.05)
    return save_refiner(refiner, tmp_path_factory.mktemp("refiners") / "tiny_refiner")
