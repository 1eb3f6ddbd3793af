"""The core latent-splat trainer: the loop of ``splatent-demo`` and ``splatent-refiner make-dataset``.

Each Gaussian carries RGB (spherical harmonics) and a codec latent. A step is defined once, in
:mod:`splatent_viewer.training.step` (``ns-train splatent`` runs the same step inside nerfstudio's Trainer): one
training view per step, the latent pass and the RGB pass (at 1/``rgb_downscale``), latent L1 + RGB L1/SSIM (+ the
optional decoded-image L1), gsplat's ``DefaultStrategy`` densifying on the RGB pass's screen-space gradients.
Initialisation: the scene's point cloud, else random points in the training views' frustums
(:mod:`splatent_viewer.training.points`). Training images are encoded through the latent cache
(:mod:`splatent_viewer.training.encode`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

import torch
from gsplat.strategy import DefaultStrategy
from jaxtyping import Float
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from splatent_viewer.codecs import LatentCodec
from splatent_viewer.data.scene import Scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.progress import Progress
from splatent_viewer.references import camera_scene_scale
from splatent_viewer.splats import init_splats
from splatent_viewer.training.densify import SyncFreeDefaultStrategy
from splatent_viewer.training.encode import LatentCache, background_latent, encode_images
from splatent_viewer.training.points import TrainingCameras, initial_points
from splatent_viewer.training.step import LearningRates, LossConfig, create_optimizers, render_step, step_losses

BAR_EVERY = 25
"""Steps between progress-bar updates (each reads the loss on the host, a GPU sync)."""


def default_strategy() -> DefaultStrategy:
    """The densification table of both trainers (the core loop and ``ns-train splatent``, whose splatfacto fields
    default to these values): gsplat's ``DefaultStrategy`` defaults (grow on the plain screen-space gradient > 0.0002,
    prune opacity < 0.005 and 3D scale > 0.1 × scene scale, no screen-size pruning), refining every 100 steps from
    step 300, and no opacity reset. Measured on one H100 (benchmarks/RESULTS.md, issue 16): with splatfacto's table
    instead (absgrad-sized threshold 0.0008 on plain gradients, opacity reset every 3000 steps, screen-size pruning)
    ``ns-train splatent`` grew dino to 197k Gaussians (41.6k with this table) and its held-out RGB splats scored 17.7
    dB instead of 22.6 at 3000 steps. gsplat's own class, minus its per-step host syncs (:mod:`.densify`)."""
    return SyncFreeDefaultStrategy(refine_start_iter=300, refine_stop_iter=1500, reset_every=100000, refine_every=100)


@dataclass
class LatentSplatTrainerConfig:
    """Optimisation settings of the core latent-splat trainer (the knobs ``ns-train splatent`` shares have the same
    names there: ``loss``, ``ssim_lambda``, ``sh_degree``, ``sh_degree_interval``, ``num_random``)."""

    steps: int = 2000
    """Optimisation steps (one training view per step)."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Loss weights (latent, RGB, decoded)."""
    ssim_lambda: float = 0.2
    """Share of (1 - SSIM) in the RGB loss."""
    rgb_downscale: int = 1
    """Render the RGB loss at 1/this resolution (2 keeps CPU runs fast)."""
    sh_degree: int = 3
    """Maximum SH degree of the RGB colours."""
    sh_degree_interval: int = 500
    """Raise the active SH degree by one every this many steps."""
    init_opacity: float = 0.1
    """Initial opacity of every Gaussian."""
    num_random: int = 20000
    """Number of random points (in the training views' frustums) when the scene has no point cloud."""
    lr: LearningRates = field(default_factory=LearningRates)
    """Learning rates (means × scene scale, decayed exponentially over the steps)."""
    densify: bool = True
    """Densify with gsplat's DefaultStrategy."""
    strategy: DefaultStrategy = field(default_factory=lambda: default_strategy())
    """gsplat densification strategy (latents are cloned with everything else)."""
    seed: int = 0
    """Random seed (initialisation and view order)."""
    background: Literal["auto", "black", "white"] = "auto"
    """What the RGB and latent passes composite on. auto: the colour the loader composited the scene's RGBA images on
    (``scene.alpha_color``, white for blender-data: the targets' background, so no Gaussian paints it), black for
    opaque captures; black: no background (zero RGB and latent, as ``ns-train splatent`` on opaque images); white.
    The resolved colour and its latent are saved with the run (:func:`~splatent_viewer.trained.save_trained_run`)."""

    def scalar_settings(self) -> dict[str, bool | int | float | str]:
        """The plain-valued settings (nested ones as ``loss.decoded_weight``; the densification strategy is left
        out), e.g. for a dataset index."""
        out: dict[str, bool | int | float | str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, (bool, int, float, str)):
                out[f.name] = value
            elif is_dataclass(value) and not isinstance(value, DefaultStrategy):
                out.update({f"{f.name}.{g.name}": getattr(value, g.name) for g in fields(value)})
        return out


@dataclass
class TrainResult:
    """What a training run produced."""

    params: dict[str, Tensor]
    """Raw splat parameters (see :mod:`splatent_viewer.splats.params`)."""
    sh_degree: int
    """SH degree reached."""
    losses: list[float]
    """Total loss per step."""
    scene_scale: float
    """Scene scale used by densification."""
    train_latents: list[Float[Tensor, "C _h _w"]] | None = None
    """Codec latents of the training views (``scene.split_indices["train"]`` order, float32): the loss targets, for a
    reference bank without encoding the images again (:meth:`ReferenceBank.from_latents`)."""
    rgb_background: Float[Tensor, "3"] | None = None
    """Colour the RGB pass composited on (None: black); see :attr:`LatentSplatTrainerConfig.background`."""
    latent_background: Float[Tensor, " C"] | None = None
    """Latent the latent pass composited on (None: zeros): :func:`background_latent` of ``rgb_background``."""


def training_cameras(scene: Scene, views: list[int]) -> TrainingCameras:
    """The cameras of ``views`` of ``scene``, for :func:`~splatent_viewer.training.points.initial_points`."""
    return TrainingCameras(
        c2w=scene.camera_to_worlds[views], Ks=scene.Ks[views], widths=scene.widths[views], heights=scene.heights[views]
    )


def encode_views(
    *,
    scene: Scene,
    indices: list[int],
    codec: LatentCodec,
    device: torch.device | str,
    cache: LatentCache | None = None,
) -> list[Float[Tensor, "C _h _w"]]:
    """Codec latents (float32, on ``device``) of the scene's views ``indices``, read from ``cache`` where it has
    them. Sizes must be multiples of the codec's downscale (``load_scene(..., size_multiple=codec.downscale)``)."""
    check_fitted(scene, indices, codec.downscale)
    latents, _ = encode_images(images=(scene.load_image(i) for i in indices), codec=codec, device=device, cache=cache)
    return latents


def check_fitted(scene: Scene, indices: list[int], multiple: int) -> None:
    """One clear error when a view's size is not a multiple of the codec's downscale."""
    bad = [i for i in indices if int(scene.widths[i]) % multiple or int(scene.heights[i]) % multiple]
    if bad:
        i = bad[0]
        raise SplatentError(
            f"{scene.root}: view {scene.image_paths[i].name} is {int(scene.widths[i])}x"
            f"{int(scene.heights[i])}, not a multiple of the codec's downscale {multiple}; load the scene "
            f"with load_scene(..., size_multiple={multiple}) (every splatent tool does)."
        )


def resolve_background(
    *, scene: Scene, mode: str, codec: LatentCodec, device: torch.device | str
) -> tuple[Float[Tensor, "3"] | None, Float[Tensor, " C"] | None]:
    """The RGB background colour and background latent of :attr:`LatentSplatTrainerConfig.background` ``mode`` for
    ``scene`` ((None, None): black, no background)."""
    if mode not in ("auto", "black", "white"):
        raise SplatentError(f"background must be auto, black or white; not {mode!r}.")
    if mode == "white":
        colour = (1.0, 1.0, 1.0)
    elif mode == "auto" and scene.has_alpha():
        colour = scene.alpha_color
    else:
        return None, None
    if colour == (0.0, 0.0, 0.0):
        return None, None
    rgb = torch.tensor(colour, dtype=torch.float32, device=device)
    return rgb, background_latent(codec=codec, colour=rgb, device=device)


def train_latent_splats(
    *,
    scene: Scene,
    codec: LatentCodec,
    config: LatentSplatTrainerConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    train_latents: Sequence[Float[Tensor, "C _h _w"]] | None = None,
    cache: LatentCache | None = None,
) -> TrainResult:
    """Fits latent+RGB Gaussians to the training views of ``scene`` (sizes: multiples of the codec's downscale, as
    ``load_scene(..., size_multiple=codec.downscale)`` gives them; views may differ in size).

    ``train_latents``: the training views' codec latents when the caller already has them (:func:`encode_views` of
    ``scene.split_indices["train"]``); encoded here otherwise (through ``cache`` when given).
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(config.seed)
    train = scene.split_indices["train"].tolist()
    ds = codec.downscale
    check_fitted(scene, train, ds)
    sizes = [(int(scene.widths[i]), int(scene.heights[i])) for i in train]

    if train_latents is None:
        targets_latent = encode_views(scene=scene, indices=train, codec=codec, device=device, cache=cache)
    else:
        expected = [(codec.latent_channels, h // ds, w // ds) for w, h in sizes]
        given = [tuple(t.shape) for t in train_latents]
        if given != expected:
            raise SplatentError(
                f"train_latents for {scene.root} are {len(given)} latents of shapes {sorted(set(given))}, expected "
                f"{len(expected)} of {sorted(set(expected))} ({len(train)} training views, {codec.name} latents); pass "
                "encode_views(...) of the scene's training views, or None to encode them here."
            )
        targets_latent = [t.to(device=device, dtype=torch.float32) for t in train_latents]
    rgb_bg, latent_bg = resolve_background(scene=scene, mode=config.background, codec=codec, device=device)
    viewmats = scene.viewmats()[train].to(device)
    Ks = scene.Ks[train].to(device)
    full_images = [scene.load_image(i).to(device) for i in train]  # [H, W, 3] each
    d = config.rgb_downscale
    images = (
        full_images
        if d == 1
        else [torch.nn.functional.avg_pool2d(im.permute(2, 0, 1)[None], d)[0].permute(1, 2, 0) for im in full_images]
    )

    points, colors = initial_points(
        points=scene.load_points(),
        cameras=training_cameras(scene, train),
        num_random=config.num_random,
        generator=generator,
    )
    raw = init_splats(
        points=points,
        colors=colors,
        latent_channels=codec.latent_channels,
        sh_degree=config.sh_degree,
        init_opacity=config.init_opacity,
        generator=generator,
    )
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in raw.items()})
    scene_scale = camera_scene_scale(scene.camera_to_worlds[train]) * 1.1
    optimizers, means_decay = create_optimizers(
        params=params, lr=config.lr, scene_scale=scene_scale, steps=config.steps
    )
    strategy: DefaultStrategy | None = None
    state: dict[str, Any] = {}
    if config.densify:
        strategy = config.strategy
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=scene_scale)

    losses: list[Tensor] = []
    order = torch.randperm(len(train), generator=generator)
    columns = (
        TextColumn("[bold]training latent splats"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TextColumn("{task.fields[n]} Gaussians"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=config.steps, loss=math.nan, n=len(params["means"]))
        sh_degree = 0
        for step in range(config.steps):
            sh_degree = min(step // config.sh_degree_interval, config.sh_degree)
            if step > 0 and step % len(train) == 0:
                order = torch.randperm(len(train), generator=generator)
            i = int(order[step % len(train)])
            width, height = sizes[i]
            render = render_step(
                params=params,
                viewmat=viewmats[i : i + 1],
                K=Ks[i : i + 1],
                width=width,
                height=height,
                latent_downscale=ds,
                sh_degree=sh_degree,
                rgb_downscale=d,
                rgb=config.loss.rgb_weight > 0,
                latent=config.loss.latent_step(step),
                rgb_background=rgb_bg,
                latent_background=latent_bg,
            )
            terms = step_losses(
                render=render,
                image=images[i],
                target_latent=targets_latent[i],
                loss=config.loss,
                ssim_lambda=config.ssim_lambda,
                step=step,
                decode=codec.decode,
                full_image=full_images[i],
            )
            loss = torch.stack(list(terms.values())).sum()

            if strategy is not None:
                strategy.step_pre_backward(params, optimizers, state, step, render.info)
            loss.backward()
            if strategy is not None:
                strategy.step_post_backward(params, optimizers, state, step, render.info, packed=False)
            for opt in optimizers.values():
                opt.step()
                opt.zero_grad(set_to_none=True)
            means_decay.step()
            losses.append(loss.detach())
            # The loss is read on the host only for the bar, every BAR_EVERY steps: a per-step .item()
            # would wait for the GPU each step (gsplat's own tile-count sync is the only one left).
            if (step + 1) % BAR_EVERY == 0 or step + 1 == config.steps:
                bar.update(task, completed=step + 1, loss=float(losses[-1]), n=len(params["means"]))

    return TrainResult(
        params={k: v.detach() for k, v in params.items()},
        sh_degree=min(sh_degree, config.sh_degree),
        losses=torch.stack(losses).tolist() if losses else [],
        scene_scale=scene_scale,
        train_latents=targets_latent,
        rgb_background=rgb_bg,
        latent_background=latent_bg,
    )
