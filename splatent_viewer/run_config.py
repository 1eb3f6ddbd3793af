"""Loading a trained scene for viewing or rendering: one config shared by ``splatent-viewer``,
``splatent-render`` and the benchmarks (nested in their configs, flags unprefixed: ``--load-config``,
``--device``, ``--refiner``, ``--codec-path``, ``--live-decoder.*``, ``--[no-]cuda-graphs``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from splatent_viewer.codecs import LiveDecoderConfig
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.trained import TrainedScene, load_trained_scene


@dataclass
class TrainedSceneConfig:
    """A trained scene and how to load it (device, refiner, codec weights, live decoder, CUDA graphs)."""

    load_config: Path
    """A trained scene: a splatent-demo output folder (or its splats.safetensors) or a nerfstudio run's config.yml
    (ns-train splatent: outputs/<name>/splatent/<timestamp>/config.yml)."""
    device: DeviceName = "auto"
    """Compute device; auto = cuda when available, else cpu."""
    refiner: str = "auto"
    """Refiner of the enhanced modes: auto (the run's scene-adapted refiner from `splatent-refiner adapt` when it has
    one, else guided), guided (the shipped refiner made RGB-guided: the enhanced view starts as the RGB splats and
    adaptation adds to them), embedded (the shipped pure-latent refiner, the paper's setting), none (no enhancement),
    or a folder written by `splatent-refiner train`. The shipped ones only when they fit the codec."""
    codec_path: Path | None = None
    """Local weights of the scene's codec when it is not embedded (e.g. an SD-Turbo folder); default: the run's
    codec from its usual place."""
    live_decoder: LiveDecoderConfig = field(default_factory=LiveDecoderConfig)
    """Decode frames with a faster codec of the same latent space (e.g. --live-decoder.name taesd
    --live-decoder.path DIR for an sd-turbo scene): faster, lower-fidelity frames; exports and their stats are then
    that decoder's decode, not the scene codec's."""
    cuda_graphs: bool = True
    """On CUDA: decoder + refiner replayed from CUDA graphs (one per frame size), cuDNN autotuner on
    (TrainedScene.enable_fast_inference); --no-cuda-graphs for plain modules. No effect on the CPU."""

    def resolved_device(self) -> torch.device:
        """The device ``device`` names (a :class:`SplatentError` for cuda without CUDA)."""
        return resolve_device(self.device)

    def setup(self, *, device: torch.device | None = None) -> TrainedScene:
        """Loads the scene on ``device`` (default: :meth:`resolved_device`) with its refiner and live decoder, with
        the CUDA fast-inference path when ``cuda_graphs``."""
        device = self.resolved_device() if device is None else device
        scene = load_trained_scene(
            self.load_config,
            device=device,
            refiner=self.refiner,  # a name or a folder: load_refiner_for tells them apart
            codec_path=self.codec_path,
            live_decoder=self.live_decoder,
        )
        if self.cuda_graphs:
            scene.enable_fast_inference()
        return scene
