"""A small, nerfstudio-free trainer for latent Gaussians (Splatent's feature-3DGS stage).

Each Gaussian carries RGB (spherical harmonics) and a codec latent. One step, one training view:

- latent L1 between the splatted latents and the codec-encoded training image, at latent
  resolution (intrinsics scaled by 1/downscale);
- RGB (1-λ)·L1 + λ·(1-SSIM) at image resolution (or ``rgb_downscale`` × smaller, for CPU runs);
- optionally an L1 loss on the decoded latent render (gradients through the codec's decoder).

Densification is gsplat's ``DefaultStrategy``, which clones/splits/prunes every parameter,
latents included. ``ns-train splatent`` is the full nerfstudio method; this trainer powers the
demo and tests, where nerfstudio's machinery is not needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from gsplat.strategy import DefaultStrategy
from jaxtyping import Float
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor

from splatent_viewer.cameras import optical_axes_focus, scale_intrinsics
from splatent_viewer.codecs import LatentCodec
from splatent_viewer.data.scene import Scene
from splatent_viewer.errors import SplatentError
from splatent_viewer.references import camera_scene_scale
from splatent_viewer.splats import init_splats, render_splats
from splatent_viewer.training.losses import l1_ssim_loss

BAR_EVERY = 25
"""Steps between progress-bar updates (each reads the loss on the host, a GPU sync)."""


@dataclass
class LatentSplatTrainerConfig:
    """Optimisation settings of the core latent-splat trainer."""

    steps: int = 2000
    """Optimisation steps (one training view per step)."""
    latent_weight: float = 1.0
    """Weight of the latent L1 loss (latent resolution)."""
    rgb_weight: float = 1.0
    """Weight of the RGB L1+SSIM loss on the SH colours (0 trains latents only)."""
    ssim_lambda: float = 0.2
    """Share of (1 - SSIM) in the RGB loss."""
    decoded_weight: float = 0.0
    """Weight of an L1 loss on the decoded latent render (backpropagates through the decoder; slow on CPU)."""
    decoded_every: int = 10
    """Apply the decoded-image loss every this many steps."""
    rgb_downscale: int = 1
    """Render the RGB loss at 1/this resolution (2 keeps CPU runs fast)."""
    sh_degree: int = 3
    """Maximum SH degree of the RGB colours."""
    sh_degree_interval: int = 500
    """Raise the active SH degree by one every this many steps."""
    init_opacity: float = 0.1
    """Initial opacity of every Gaussian."""
    random_init_points: int = 20000
    """Number of random points (in the training views' frustums) when the scene has no point cloud."""
    lr_means: float = 1.6e-4
    """Initial learning rate of the means (× scene scale), decayed 100× over training."""
    lr_scales: float = 5e-3
    """Learning rate of the log scales."""
    lr_quats: float = 1e-3
    """Learning rate of the rotations."""
    lr_opacities: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_features_dc: float = 2.5e-3
    """Learning rate of the SH DC colours."""
    lr_features_rest: float = 2.5e-3 / 20
    """Learning rate of the higher SH coefficients."""
    lr_latents: float = 2.5e-2
    """Learning rate of the latents (TAEF2 latents span roughly [-3, 3])."""
    densify: bool = True
    """Densify with gsplat's DefaultStrategy."""
    strategy: DefaultStrategy = field(
        default_factory=lambda: DefaultStrategy(refine_start_iter=300, refine_stop_iter=1500, reset_every=100000, refine_every=100)
    )
    """gsplat densification strategy (latents are cloned with everything else)."""
    seed: int = 0
    """Random seed (initialisation and view order)."""

    def scalar_settings(self) -> dict[str, bool | int | float | str]:
        """The plain-valued fields (everything but the densification strategy), e.g. for a dataset index."""
        return {k: v for k, v in vars(self).items() if isinstance(v, (bool, int, float, str))}


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
    train_latents: Float[Tensor, "N C h w"] | None = None
    """Codec latents of the training views (``scene.split_indices["train"]`` order, float32): the loss
    targets, for a reference bank without encoding the images again (:meth:`ReferenceBank.from_latents`)."""


def encode_images(
    *,
    scene: Scene,
    indices: list[int],
    codec: LatentCodec,
    device: torch.device | str,
    batch_size: int | None = None,
) -> Float[Tensor, "N C h w"]:
    """Codec latents of the scene's images (no grad), in the codec's dtype, on ``device``.

    ``batch_size`` default: 4 on GPUs, 1 on the CPU (where one image at a time keeps the activations in
    cache: 33 demo views of 256² encode ~1.5x faster than in fours on the 2-core machine).
    """
    if batch_size is None:
        batch_size = 1 if torch.device(device).type == "cpu" else 4
    out = []
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            batch = torch.stack([scene.load_image(i) for i in indices[start : start + batch_size]])
            out.append(codec.encode(batch.permute(0, 3, 1, 2).to(device)))
    return torch.cat(out)


def initial_points(*, scene: Scene, config: LatentSplatTrainerConfig, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
    """The scene's point cloud (with colours), or random points in the training cameras' view frustums."""
    loaded = scene.load_points()
    if loaded is not None:
        return loaded
    return frustum_points(scene=scene, views=scene.split_indices["train"].tolist(), n=config.random_init_points,
                          generator=generator), None


def frustum_points(*, scene: Scene, views: list[int], n: int, generator: torch.Generator,
                   depth_range: tuple[float, float] = (0.2, 2.5)) -> Float[Tensor, "n 3"]:
    """``n`` random points seen by the training ``views``: a random view, a random pixel, a depth log-uniform in
    ``depth_range`` × the distance at which the cameras' optical axes meet (:func:`optical_axes_focus`; 3 × the
    cameras' spread when they do not meet, e.g. a perfectly parallel rig).

    Unlike a box around the camera centres, this puts points where the subject is for forward-facing captures too
    (there the centres lie on a plane, and a box around them holds nothing the cameras see)."""
    c2w = scene.camera_to_worlds[views]
    focus = optical_axes_focus(c2w)
    depth = focus[1] if focus is not None else 3.0 * camera_scene_scale(c2w)  # (1.0 for a single camera)
    pick = torch.randint(0, len(views), (n,), generator=generator)
    K = scene.Ks[views][pick]
    w = scene.widths[views][pick].float()
    h = scene.heights[views][pick].float()
    u = torch.rand(n, generator=generator) * w
    v = torch.rand(n, generator=generator) * h
    lo, hi = math.log(depth_range[0] * depth), math.log(depth_range[1] * depth)
    z = torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator))
    # OpenCV camera coordinates (x right, y down, +z forward) → OpenGL (flip y, z) → world.
    x_cv = (u - K[:, 0, 2]) / K[:, 0, 0] * z
    y_cv = (v - K[:, 1, 2]) / K[:, 1, 1] * z
    cam = torch.stack([x_cv, -y_cv, -z], dim=1)
    rot, centre = c2w[pick, :3, :3], c2w[pick, :3, 3]
    return (rot @ cam[:, :, None])[:, :, 0] + centre


def train_latent_splats(
    *,
    scene: Scene,
    codec: LatentCodec,
    config: LatentSplatTrainerConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    train_latents: Float[Tensor, "N C h w"] | None = None,
) -> TrainResult:
    """Fits latent+RGB Gaussians to the training views of ``scene``.

    ``train_latents``: the training views' codec latents when the caller already has them
    (:func:`encode_images` of ``scene.split_indices["train"]``); encoded here otherwise.
    """
    device = torch.device(device)
    generator = torch.Generator().manual_seed(config.seed)
    train = scene.split_indices["train"].tolist()
    ds = codec.downscale

    if train_latents is None:
        targets_latent = encode_images(scene=scene, indices=train, codec=codec, device=device).float()
    else:
        expected = (len(train), codec.latent_channels, int(scene.heights[train[0]]) // ds,
                    int(scene.widths[train[0]]) // ds)
        if tuple(train_latents.shape) != expected:
            raise SplatentError(
                f"train_latents for {scene.root} are {list(train_latents.shape)}, expected {list(expected)} "
                f"({len(train)} training views, {codec.name} latents); pass encode_images(...) of the "
                "scene's training views, or None to encode them here."
            )
        targets_latent = train_latents.to(device=device, dtype=torch.float32)
    viewmats = scene.viewmats()[train].to(device)
    Ks = scene.Ks[train].to(device)
    width, height = int(scene.widths[train[0]]), int(scene.heights[train[0]])
    if any(int(scene.widths[i]) != width or int(scene.heights[i]) != height for i in train):
        raise ValueError("the core trainer expects one image size for all training views")
    lat_w, lat_h = width // ds, height // ds
    rgb_w, rgb_h = width // config.rgb_downscale, height // config.rgb_downscale
    Ks_latent = scale_intrinsics(Ks, 1.0 / ds)
    Ks_rgb = scale_intrinsics(Ks, 1.0 / config.rgb_downscale)
    full_images = torch.stack([scene.load_image(i) for i in train]).permute(0, 3, 1, 2).to(device)
    images = F.avg_pool2d(full_images, config.rgb_downscale) if config.rgb_downscale > 1 else full_images

    points, colors = initial_points(scene=scene, config=config, generator=generator)
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
    lrs = {
        "means": config.lr_means * scene_scale,
        "scales": config.lr_scales,
        "quats": config.lr_quats,
        "opacities": config.lr_opacities,
        "features_dc": config.lr_features_dc,
        "features_rest": config.lr_features_rest,
        "latents": config.lr_latents,
    }
    optimizers = {k: torch.optim.Adam([{"params": [params[k]], "lr": lr, "name": k}], eps=1e-15) for k, lr in lrs.items()}
    means_decay = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=0.01 ** (1.0 / max(config.steps, 1)))
    strategy, state = None, None
    if config.densify:
        strategy = config.strategy
        strategy.check_sanity(params, optimizers)
        state = strategy.initialize_state(scene_scale=scene_scale)

    losses: list[Tensor] = []
    order = torch.randperm(len(train), generator=generator)
    columns = (TextColumn("[bold]training latent splats"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[n]} Gaussians"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=config.steps, loss=math.nan, n=len(params["means"]))
        sh_degree = 0
        for step in range(config.steps):
            sh_degree = min(step // config.sh_degree_interval, config.sh_degree)
            if step > 0 and step % len(train) == 0:
                order = torch.randperm(len(train), generator=generator)
            i = int(order[step % len(train)])
            vm = viewmats[i : i + 1]

            lat = render_splats(params=params, viewmats=vm, Ks=Ks_latent[i : i + 1], width=lat_w, height=lat_h, content="latent")
            render_latent = lat.features.permute(0, 3, 1, 2)
            loss = config.latent_weight * (render_latent - targets_latent[i : i + 1]).abs().mean()
            info = lat.info
            if config.rgb_weight > 0:
                rgb = render_splats(params=params, viewmats=vm, Ks=Ks_rgb[i : i + 1], width=rgb_w, height=rgb_h,
                                    content="rgb", sh_degree=sh_degree)
                render_rgb = rgb.features.permute(0, 3, 1, 2).clamp(0, 1)
                loss = loss + config.rgb_weight * l1_ssim_loss(render_rgb, images[i : i + 1], ssim_lambda=config.ssim_lambda)
                info = rgb.info  # densify on image-resolution screen-space gradients, like splatfacto
            if config.decoded_weight > 0 and step % config.decoded_every == 0:
                decoded = codec.decode(render_latent).float()
                loss = loss + config.decoded_weight * (decoded - full_images[i : i + 1]).abs().mean()

            if strategy is not None:
                strategy.step_pre_backward(params, optimizers, state, step, info)
            loss.backward()
            if strategy is not None:
                strategy.step_post_backward(params, optimizers, state, step, info, packed=False)
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
    )

