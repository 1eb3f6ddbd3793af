"""What one training step of latent Gaussians is, defined once for every trainer.

The core trainer (:func:`splatent_viewer.training.trainer.train_latent_splats`, used by ``splatent-demo`` and
``splatent-refiner make-dataset``) and ``ns-train splatent`` (:class:`nerfstudio_plugin.splatent_model.SplatentModel`,
driven by nerfstudio's Trainer) both call these functions; only the loop around them differs:

- :class:`LossConfig`: the weights of the three losses (one set of knob names in both tools);
- :class:`LearningRates`: the Adam learning-rate table of every Gaussian parameter (gsplat's
  ``create_splats_with_optimizers`` table, with the latents added);
- :func:`render_step`: the RGB pass (SH colours, image resolution or 1/``rgb_downscale``) and the latent pass
  (latent resolution, intrinsics scaled by 1/the codec's downscale) of one camera from one projection, with the
  RGB pass's ``info`` for gsplat's densification (the gradients splatfacto densifies on: the RGB loss's only);
- :func:`step_losses`: latent L1, RGB (1-λ)·L1 + λ·(1-SSIM) and the optional decoded-image L1.

Initialisation is :func:`splatent_viewer.training.points.initial_points` + :func:`splatent_viewer.splats.init_splats`;
densification is gsplat's ``DefaultStrategy`` (``step_pre_backward`` / ``step_post_backward`` around the backward pass).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.errors import SplatentError
from splatent_viewer.splats import SplatParams, render_rgb_and_latents, render_splats
from splatent_viewer.training.losses import l1_ssim_loss


@dataclass
class LossConfig:
    """Weights of the latent-splat losses (``--trainer.loss.*`` in the core tools, ``--pipeline.model.loss.*`` in
    ``ns-train splatent``)."""

    latent_weight: float = 1.0
    """L1 between the latent render and the codec-encoded training image, at latent resolution."""
    rgb_weight: float = 1.0
    """RGB (1-λ)·L1 + λ·(1-SSIM) of the SH colours against the image (0 trains latents only)."""
    decoded_weight: float = 0.0
    """L1 between the decoded latent render and the image (backpropagates through the codec's decoder; slow on CPU)."""
    decoded_every: int = 10
    """Apply the decoded-image loss every this many steps (on latent steps only: with ``latent_every`` > 1 it fires
    every lcm(decoded_every, latent_every) steps, weighted up so that its average weight per step stays
    ``decoded_weight / decoded_every``)."""
    latent_every: int = 1
    """Render the latent pass and apply the latent loss every this many steps (1: every step); the steps between
    render and train the RGB splats alone (the latent pass is ~40 % of a step's GPU work, benchmarks/RESULTS.md).
    The latent loss is weighted ×latent_every on its steps, so its average weight per step, and with it the balance
    the shared geometry strikes between the two losses, stays that of ``latent_weight`` (unweighted, every 2nd step
    cost the decoded render 0.2–0.4 dB; weighted, it matched or beat every step on the CPU demo, fern and dino, and on
    one H100 saved 6 % / 18 % of fern's / the demo's time with RGB splats +0.2 / +0.3 dB but the demo's decoded render
    −0.23 dB: not the default)."""

    def __post_init__(self) -> None:
        for name in ("latent_every", "decoded_every"):
            if getattr(self, name) < 1:
                flag = name.replace("_", "-")
                raise SplatentError(
                    f"loss.{flag} must be >= 1 (1: every step), got {getattr(self, name)}: pass "
                    f"--trainer.loss.{flag} (core tools) or --pipeline.model.loss.{flag} (ns-train) with a positive count."
                )

    @property
    def latent_period(self) -> int:
        """Steps from one latent pass to the next: ``latent_every``, or 1 when there is no RGB loss to train between
        them."""
        return self.latent_every if self.rgb_weight > 0 else 1

    def latent_step(self, step: int) -> bool:
        """Whether training step ``step`` renders the latent pass (and so can apply the latent and decoded losses):
        every ``latent_period``-th step."""
        return step % self.latent_period == 0

    def decoded_step(self, step: int) -> bool:
        """Whether training step ``step`` applies the decoded-image loss (``decoded_weight`` > 0, a latent step, and a
        multiple of ``decoded_every``)."""
        return self.decoded_weight > 0 and self.latent_step(step) and step % self.decoded_every == 0

    @property
    def decoded_scale(self) -> float:
        """What the decoded-image loss is weighted with on the steps that have it: ``decoded_weight``, × the factor by
        which the latent steps thin its schedule (lcm(decoded_every, latent_every) / decoded_every)."""
        return self.decoded_weight * math.lcm(self.decoded_every, self.latent_period) / self.decoded_every

    @property
    def latent_scale(self) -> float:
        """What the latent loss is weighted with on a latent step: ``latent_weight``, ×``latent_every`` when only
        every ``latent_every``-th step has it (so its average weight per step is ``latent_weight``)."""
        return self.latent_weight * self.latent_period


@dataclass
class LearningRates:
    """Adam learning rates of the Gaussian parameters: the one table of the core trainer and ``ns-train splatent``
    (whose ``optimizers`` are built from it: ``--optimizers.<name>.optimizer.lr`` there)."""

    means: float = 1.6e-4
    """Initial rate of the means, times the scene scale (1 in nerfstudio's normalised world)."""
    means_final: float = 1.6e-6
    """Rate of the means at the last step (exponential decay from ``means``), times the scene scale."""
    scales: float = 5e-3
    """Log scales."""
    quats: float = 1e-3
    """Rotations (quaternions)."""
    opacities: float = 5e-2
    """Opacity logits."""
    features_dc: float = 2.5e-3
    """SH DC colours."""
    features_rest: float = 2.5e-3 / 20
    """Higher SH coefficients."""
    latents: float = 2.5e-2
    """Codec latents (TAEF2 latents span roughly [-3, 3]: a larger step than the colours)."""

    def table(self, *, scene_scale: float = 1.0) -> dict[str, float]:
        """Initial learning rate of each parameter group (``means`` scaled by ``scene_scale``)."""
        rates = {f.name: float(getattr(self, f.name)) for f in fields(self) if f.name != "means_final"}
        rates["means"] *= scene_scale
        return rates


def fused_adam(param: Tensor) -> bool | None:
    """``fused=`` for ``torch.optim.Adam`` over ``param``: True on CUDA (torch's single-kernel update), else None
    (torch's default)."""
    return True if param.is_cuda else None


def create_optimizers(
    *, params: SplatParams, lr: LearningRates, scene_scale: float, steps: int
) -> tuple[dict[str, torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]:
    """One Adam per parameter group (as gsplat's strategies expect: group ``name`` = parameter name) and the means'
    exponential decay from ``lr.means`` to ``lr.means_final`` over ``steps`` (step it once per training step).

    On CUDA the Adams are torch's fused kernel (one launch per group and step instead of the multi-tensor path's
    several; same update, same state that gsplat's densification edits)."""
    optimizers: dict[str, torch.optim.Optimizer] = {
        name: torch.optim.Adam(
            [{"params": [params[name]], "lr": rate, "name": name}], eps=1e-15, fused=fused_adam(params[name])
        )
        for name, rate in lr.table(scene_scale=scene_scale).items()
    }
    gamma = (lr.means_final / lr.means) ** (1.0 / max(steps, 1))
    return optimizers, torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=gamma)


@dataclass
class StepRender:
    """The two passes of one camera."""

    rgb: Float[Tensor, "H W 3"] | None
    """RGB splats composited on the background and clamped to [0, 1] (as splatfacto), at the RGB pass's size; None
    without an RGB pass."""
    alpha: Float[Tensor, "H W 1"] | None
    """Accumulated opacity of the RGB pass."""
    depth: Float[Tensor, "H W 1"] | None
    """Expected depth of the RGB pass (when asked for)."""
    latent: Float[Tensor, "C h w"] | None
    """Latent render (composited on the latent background), h = H_full / downscale; None on a step without the
    latent pass."""
    info: dict[str, Any]
    """Rasterizer info for gsplat's densification: the RGB pass's (the latent pass's without one)."""


def render_step(
    *,
    params: SplatParams,
    viewmat: Float[Tensor, "1 4 4"],
    K: Float[Tensor, "1 3 3"],
    width: int,
    height: int,
    latent_downscale: int,
    sh_degree: int,
    rgb_downscale: int = 1,
    rgb: bool = True,
    depth: bool = False,
    rgb_background: Float[Tensor, "3"] | None = None,
    latent_background: Float[Tensor, " C"] | None = None,
    absgrad: bool = False,
    latent: bool = True,
) -> StepRender:
    """Renders one training camera: RGB at ``width/rgb_downscale`` x ``height/rgb_downscale`` and latents at
    ``width/latent_downscale`` x ``height/latent_downscale``, from one projection
    (:func:`~splatent_viewer.splats.render.render_rgb_and_latents`; the latents alone without an RGB pass).

    ``K`` holds the intrinsics at ``width`` x ``height`` (the full image, a multiple of ``latent_downscale``);
    ``viewmat`` is OpenCV world-to-camera (gsplat's). Gradients flow to ``params``; the returned ``info`` is what
    ``DefaultStrategy.step_pre_backward`` / ``step_post_backward`` take: its ``means2d`` gradient comes from the
    RGB render alone (``absgrad``: gsplat's ``.absgrad`` too, for ``DefaultStrategy(absgrad=True)``).
    ``latent=False`` skips the latent pass (``StepRender.latent`` is None; needs the RGB pass).
    """
    if not rgb and not latent:
        raise ValueError("render_step needs the RGB pass, the latent pass or both")
    lat_bg = None if latent_background is None else latent_background.to(params["latents"])[None]
    lat_w, lat_h = width // latent_downscale, height // latent_downscale
    if not rgb:
        lat = render_splats(
            params=params,
            viewmats=viewmat,
            Ks=scale_intrinsics(K, 1.0 / latent_downscale),
            width=lat_w,
            height=lat_h,
            content="latent",
            backgrounds=lat_bg,
            depth=False,
        )
        return StepRender(rgb=None, alpha=None, depth=None, latent=lat.features[0].permute(2, 0, 1), info=lat.info)
    bg = None if rgb_background is None else rgb_background.to(params["means"])[None]
    out, lat = render_rgb_and_latents(
        params=params,
        viewmats=viewmat,
        Ks=scale_intrinsics(K, 1.0 / rgb_downscale),
        width=width // rgb_downscale,
        height=height // rgb_downscale,
        latent_width=lat_w,
        latent_height=lat_h,
        latent_downscale=latent_downscale / rgb_downscale,
        sh_degree=sh_degree,
        rgb_backgrounds=bg,
        latent_backgrounds=lat_bg,
        depth=depth,
        absgrad=absgrad,
        latents=latent,
    )
    return StepRender(
        rgb=out.features[0].clamp(0.0, 1.0),
        alpha=out.alpha[0],
        depth=None if out.depth is None else out.depth[0],
        latent=None if lat is None else lat.features[0].permute(2, 0, 1),
        info=out.info,
    )


def step_losses(
    *,
    render: StepRender,
    image: Float[Tensor, "H W 3"] | None,
    target_latent: Float[Tensor, "C h w"],
    loss: LossConfig,
    ssim_lambda: float,
    step: int,
    decode: Callable[[Tensor], Tensor] | None = None,
    full_image: Float[Tensor, "H0 W0 3"] | None = None,
    mask: Float[Tensor, "H W 1"] | None = None,
) -> dict[str, Tensor]:
    """The weighted losses of one step: ``latent_loss`` (when there is a latent pass), ``rgb_loss`` (when
    ``loss.rgb_weight > 0`` and there is an RGB pass) and ``decoded_loss`` (on ``loss.decoded_step(step)`` when there
    is a latent pass; ``decode`` maps ``[1, C, h, w]`` latents to
    ``[1, 3, H0, W0]`` images and ``full_image`` is the image at full resolution).

    ``image`` is the ground truth at the RGB pass's size; ``mask`` (1 = use) zeroes the RGB render and image outside
    it, as splatfacto does, and drops latent cells that are not wholly inside it.
    """
    losses: dict[str, Tensor] = {}
    if render.latent is not None:
        if tuple(render.latent.shape) != tuple(target_latent.shape):
            raise ValueError(
                f"latent render {tuple(render.latent.shape)} and target {tuple(target_latent.shape)} differ"
            )
        latent_err = (render.latent - target_latent).abs()
        if mask is not None:
            ds = image.shape[0] // render.latent.shape[1] if image is not None else 1
            m = mask.float().permute(2, 0, 1)
            cells = -F.max_pool2d(-m[None], ds)[0] if ds > 1 else m
            latent_err = latent_err * cells[:, : latent_err.shape[1], : latent_err.shape[2]]
        losses["latent_loss"] = loss.latent_scale * latent_err.mean()
    if loss.rgb_weight > 0 and render.rgb is not None and image is not None:
        pred, gt = render.rgb, image
        if mask is not None:
            pred, gt = pred * mask, gt * mask
        losses["rgb_loss"] = loss.rgb_weight * l1_ssim_loss(
            pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], ssim_lambda=ssim_lambda
        )
    if loss.decoded_step(step) and render.latent is not None and decode is not None and full_image is not None:
        decoded = decode(render.latent[None]).float()[0].permute(1, 2, 0)
        losses["decoded_loss"] = (
            loss.decoded_scale * (decoded - full_image[: decoded.shape[0], : decoded.shape[1]]).abs().mean()
        )
    return losses


__all__ = [
    "LearningRates",
    "LossConfig",
    "StepRender",
    "create_optimizers",
    "fused_adam",
    "render_step",
    "step_losses",
]
