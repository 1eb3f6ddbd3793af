"""``ns-train splatent``: the Splatent method registered with nerfstudio (entry point
``nerfstudio.method_configs`` → :data:`splatent_method`).

Splatfacto's training recipe with :class:`~nerfstudio_plugin.splatent_model.SplatentModel` and an
extra optimizer group ``latents`` (densification clones/splits/prunes it with the other Gaussian
parameters). Default dataparser: nerfstudio-data with ``load_3D_points``; other dataparsers are
subcommands (e.g. ``ns-train splatent blender-data --data lego``). CPU: ``--machine.device-type cpu``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Type

from torch.optim import Optimizer, lr_scheduler

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecayScheduler, ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from nerfstudio_plugin.datamanager import SplatentDatamanagerConfig
from nerfstudio_plugin.splatent_model import SplatentModelConfig


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


def _adam(lr: float) -> dict:
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": None}


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
    optimizers={
        "means": {
            "optimizer": AdamOptimizerConfig(lr=1.6e-4, eps=1e-15),
            "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=1.6e-6, max_steps=30000),
        },
        "features_dc": _adam(0.0025),
        "features_rest": _adam(0.0025 / 20),
        "opacities": _adam(0.05),
        "scales": _adam(0.005),
        "quats": _adam(0.001),
        # TAEF2 latents span roughly [-3, 3]: a larger step than the SH colours (as the core trainer).
        "latents": _adam(0.025),
        "camera_opt": {
            "optimizer": AdamOptimizerConfig(lr=1e-4, eps=1e-15),
            "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=5e-7, max_steps=30000, warmup_steps=1000, lr_pre_warmup=0),
        },
    },
    # Loopback unless asked (--viewer.websocket-host 0.0.0.0): nerfstudio's default serves every interface.
    viewer=ViewerConfig(num_rays_per_chunk=1 << 15, websocket_host="127.0.0.1"),
    vis="viewer",
)

splatent_method = MethodSpecification(
    config=splatent_config,
    description="Splatent: Gaussians carrying RGB and a diffusion-VAE latent (taef2 default), CPU or CUDA.",
)

__all__ = ["FloatExponentialDecaySchedulerConfig", "splatent_config", "splatent_method"]
