"""``ns-train splatent``: the Splatent method registered with nerfstudio (entry point
``nerfstudio.method_configs`` → :data:`splatent_method`).

Splatfacto's training recipe with :class:`~nerfstudio_plugin.splatent_model.SplatentModel` (the core latent-splat
step inside nerfstudio's Trainer); the optimiser table is the core's
:class:`~splatent_viewer.training.step.LearningRates` (with a ``latents`` group: densification clones/splits/prunes
it with the other Gaussian parameters). Default dataparser: nerfstudio-data with ``load_3D_points``; other
dataparsers are subcommands (e.g. ``ns-train splatent blender-data --data lego``). CPU: ``--machine.device-type cpu``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Optional, Type

import torch
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification
from torch.optim import Optimizer, lr_scheduler

from nerfstudio_plugin.datamanager import SplatentDatamanagerConfig
from nerfstudio_plugin.splatent_model import SplatentModelConfig
from splatent_viewer.training.step import LearningRates, fused_adam


class FloatExponentialDecayScheduler(ExponentialDecayScheduler):
    """nerfstudio's exponential decay with warmup, computing learning rates as Python floats.

    nerfstudio 1.1.5 computes them with numpy, so checkpoints hold ``numpy.float64`` values that
    ``torch.load`` (weights_only=True by default since torch 2.6) refuses in ``ns-eval``/``ns-render``.
    """

    config: "FloatExponentialDecaySchedulerConfig"

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> lr_scheduler.LRScheduler:
        cfg = self.config
        lr_final = lr_init if cfg.lr_final is None else cfg.lr_final

        def func(step: int) -> float:
            if step < cfg.warmup_steps:
                if cfg.ramp == "cosine":
                    ramp = math.sin(0.5 * math.pi * min(max(step / cfg.warmup_steps, 0.0), 1.0))
                else:
                    ramp = step / cfg.warmup_steps
                lr = cfg.lr_pre_warmup + (lr_init - cfg.lr_pre_warmup) * ramp
            else:
                t = min(max((step - cfg.warmup_steps) / (cfg.max_steps - cfg.warmup_steps), 0.0), 1.0)
                lr = math.exp(math.log(lr_init) * (1 - t) + math.log(lr_final) * t)
            return float(lr / lr_init)

        return lr_scheduler.LambdaLR(optimizer, lr_lambda=func)


@dataclass
class FloatExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    """:class:`ExponentialDecaySchedulerConfig` whose scheduler keeps checkpoints numpy-free."""

    _target: Type = field(default_factory=lambda: FloatExponentialDecayScheduler)


@dataclass
class SplatentAdamOptimizerConfig(AdamOptimizerConfig):
    """nerfstudio's Adam config, fused on CUDA as the core trainer's (:func:`fused_adam`): one kernel per group and
    step instead of the multi-tensor path's several."""

    fused: Optional[bool] = None
    """torch's ``fused=``; None: fused when the parameters are on CUDA, torch's default elsewhere."""

    def setup(self, params) -> Optimizer:
        params = list(params)
        fused = self.fused
        if fused is None and params and isinstance(params[0], torch.Tensor):
            fused = fused_adam(params[0])
        # nerfstudio's setup: every field but _target and max_norm goes to torch.optim.Adam
        return AdamOptimizerConfig.setup(replace(self, fused=fused), params)


def nerfstudio_optimizers(lr: LearningRates, *, max_steps: int = 30000) -> dict[str, dict]:
    """nerfstudio's ``optimizers`` table from the core :class:`LearningRates` (the means decay exponentially to
    ``lr.means_final`` over ``max_steps``, as in the core trainer), plus splatfacto's camera optimiser."""
    table: dict[str, dict] = {}
    for name, rate in lr.table(scene_scale=1.0).items():  # nerfstudio normalises the scene: scale 1
        scheduler = (
            FloatExponentialDecaySchedulerConfig(lr_final=lr.means_final, max_steps=max_steps)
            if name == "means"
            else None
        )
        table[name] = {"optimizer": SplatentAdamOptimizerConfig(lr=rate, eps=1e-15), "scheduler": scheduler}
    table["camera_opt"] = {
        "optimizer": SplatentAdamOptimizerConfig(lr=1e-4, eps=1e-15),
        "scheduler": FloatExponentialDecaySchedulerConfig(
            lr_final=5e-7, max_steps=max_steps, warmup_steps=1000, lr_pre_warmup=0.0
        ),
    }
    return table


splatent_config = TrainerConfig(
    method_name="splatent",
    steps_per_eval_image=100,
    steps_per_eval_batch=0,
    steps_per_save=2000,
    steps_per_eval_all_images=1000,
    max_num_iterations=30000,
    mixed_precision=False,
    pipeline=VanillaPipelineConfig(
        datamanager=SplatentDatamanagerConfig(
            dataparser=NerfstudioDataParserConfig(load_3D_points=True),
            cache_images_type="uint8",
        ),
        model=SplatentModelConfig(),
    ),
    optimizers=nerfstudio_optimizers(LearningRates()),
    # Loopback unless asked (--viewer.websocket-host 0.0.0.0): nerfstudio's default serves every interface.
    viewer=ViewerConfig(num_rays_per_chunk=1 << 15, websocket_host="127.0.0.1"),
    vis="viewer",
)

splatent_method = MethodSpecification(
    config=splatent_config,
    description="Splatent: Gaussians carrying RGB and a diffusion-VAE latent (taef2 default), CPU or CUDA.",
)

__all__ = [
    "FloatExponentialDecaySchedulerConfig",
    "SplatentAdamOptimizerConfig",
    "nerfstudio_optimizers",
    "splatent_config",
    "splatent_method",
]
