"""Where a core-trainer step spends its time: milliseconds per stage, shared projection against two passes.

    python benchmarks/train_step_gpu.py --scene assets/demo_scene --device cuda --steps 200
    bash benchmarks/train_step_gpu.sh          # on the GPU machine (device_setup.sh), results under $OUT

A step of :func:`splatent_viewer.training.trainer.train_latent_splats` (one training view: RGB splats + latents,
losses, backward, Adam, gsplat's DefaultStrategy), timed stage by stage with CUDA events (``time.perf_counter`` on
the CPU, where every op is synchronous), for two ways of rendering the two passes:

- ``shared``: what :func:`~splatent_viewer.training.step.render_step` does (one projection;
  :func:`~splatent_viewer.splats.render.render_rgb_and_latents`), here spelled out as its calls so that each gets a
  stage: projection, SH, RGB tile intersection + compositing, latent grid derivation + compositing;
- ``two-pass``: the step before issue 18: ``rasterize`` twice (each projects again; SH in torch; 16-cell latent
  tiles, one launch) and torch's default (multi-tensor, unfused) Adam, written out here from the same public
  functions (the library keeps no switch for it).

Then losses (latent L1 + RGB L1/SSIM), backward, optimizer (Adam on 7 groups + the means' decay) and densification
(``step_pre_backward`` + ``step_post_backward``; a refinement every ``--refine-every`` steps). Each path also reports
its end-to-end ms/step without the stage events (for ``shared`` through ``render_step`` itself), and the script checks
once that the spelled-out shared stages render what ``render_step`` renders.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
import tyro
from gsplat.strategy import DefaultStrategy

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.references import camera_scene_scale
from splatent_viewer.render import rasterize
from splatent_viewer.render.screen import downscale_screen, project_screen, rasterize_screen
from splatent_viewer.splats import init_splats, sh_colors, splat_geometry
from splatent_viewer.splats.render import LATENT_TILE_SIZE, latent_layout
from splatent_viewer.training.points import initial_points
from splatent_viewer.training.step import (
    LearningRates,
    LossConfig,
    StepRender,
    create_optimizers,
    render_step,
    step_losses,
)
from splatent_viewer.training.trainer import encode_views, training_cameras

Path_ = Literal["shared", "two-pass"]
STAGES = ("projection", "sh", "rasterize_rgb", "rasterize_latent", "losses", "backward", "optimizer", "densification")


@dataclass
class Args:
    scene: Path = Path("assets/demo_scene")
    """Scene folder (nerfstudio or blender format; loaded at sizes that are multiples of 8)."""
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    steps: int = 200
    """Timed steps per path."""
    warmup: int = 20
    """Untimed steps first (kernel builds, allocator)."""
    paths: tuple[Path_, ...] = ("shared", "two-pass")
    rgb_downscale: int = 1
    sh_degree: int = 3
    """SH degree used throughout (the trainer warms up to it)."""
    num_random: int = 20000
    """Random points when the scene has no point cloud."""
    downscale: int = 1
    """Load the scene this many times smaller (CPU runs)."""
    refine_every: int = 100
    """DefaultStrategy refinement period (first refinement after the warm-up)."""
    max_views: int = 0
    """Use at most this many training views (0: all)."""
    min_gaussians: int = 0
    """Start from at least this many Gaussians (random points in the training views' frustums added to the point
    cloud): the step at splatfacto's counts (100k-1M)."""
    output: Path | None = None
    """Write the markdown table here."""
    json_out: Path | None = None
    """Write the numbers as JSON here."""


class StageTimer:
    """Marks stage boundaries of one step; CUDA events on CUDA (no sync until :meth:`finish`), else wall time."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.steps: list[list[tuple[str, Any]]] = []

    def start(self) -> None:
        self.steps.append([("", self._now())])

    def mark(self, stage: str) -> None:
        self.steps[-1].append((stage, self._now()))

    def _now(self) -> Any:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def finish(self) -> dict[str, float]:
        """Mean milliseconds per stage over the recorded steps."""
        if self.cuda:
            torch.cuda.synchronize()
        sums: dict[str, float] = {}
        for marks in self.steps:
            for (_, a), (stage, b) in zip(marks, marks[1:]):
                ms = a.elapsed_time(b) if self.cuda else (b - a) * 1e3
                sums[stage] = sums.get(stage, 0.0) + ms
        return {k: v / max(len(self.steps), 1) for k, v in sums.items()}


def _render_shared(params, *, viewmat, K, width, height, ds, rgb_ds, sh_degree, timer: StageTimer | None) -> StepRender:
    """render_rgb_and_latents's calls, one stage each."""
    mark = timer.mark if timer is not None else (lambda _stage: None)
    Ks = scale_intrinsics(K, 1.0 / rgb_ds)
    w, h = width // rgb_ds, height // rgb_ds
    screen = project_screen(
        **splat_geometry(params),
        viewmats=viewmat,
        Ks=Ks,
        width=w,
        height=h,
    )
    mark("projection")
    colors = sh_colors(
        params=params, viewmats=viewmat, sh_degree=sh_degree, masks=screen.radii > 0, backend=screen.backend
    )
    mark("sh")
    rgb = rasterize_screen(screen=replace(screen, means2d=screen.means2d.clone()), features=colors, depth=False)
    mark("rasterize_rgb")
    lat_screen = downscale_screen(screen, downscale=ds / rgb_ds, width=width // ds, height=height // ds)
    groups, runs = latent_layout(lat_screen.width, lat_screen.height)
    lat = rasterize_screen(
        screen=lat_screen,
        features=params["latents"],
        depth=False,
        tile_size=LATENT_TILE_SIZE,
        channel_split=groups,
        depth_split=runs,
    )
    mark("rasterize_latent")
    return StepRender(
        rgb=rgb.features[0].clamp(0.0, 1.0),
        alpha=rgb.alpha[0],
        depth=None,
        latent=lat.features[0].permute(2, 0, 1),
        info=rgb.info,
    )


def _render_two_pass(
    params, *, viewmat, K, width, height, ds, rgb_ds, sh_degree, timer: StageTimer | None
) -> StepRender:
    """The step before issue 18: a projection per pass (stages: sh, rasterize_rgb and rasterize_latent, each pass's
    projection included)."""
    mark = timer.mark if timer is not None else (lambda _stage: None)
    colors = sh_colors(params=params, viewmats=viewmat, sh_degree=sh_degree, backend="torch")
    mark("sh")
    rgb = rasterize(
        **splat_geometry(params),
        features=colors,
        viewmats=viewmat,
        Ks=scale_intrinsics(K, 1.0 / rgb_ds),
        width=width // rgb_ds,
        height=height // rgb_ds,
        depth=False,
    )
    mark("rasterize_rgb")
    lat = rasterize(  # before issue 18's latent tiles and launch layout (render_splats has both now)
        **splat_geometry(params),
        features=params["latents"],
        viewmats=viewmat,
        Ks=scale_intrinsics(K, 1.0 / ds),
        width=width // ds,
        height=height // ds,
        depth=False,
        tile_size=16,
    )
    mark("rasterize_latent")
    return StepRender(
        rgb=rgb.features[0].clamp(0.0, 1.0),
        alpha=rgb.alpha[0],
        depth=None,
        latent=lat.features[0].permute(2, 0, 1),
        info=rgb.info,
    )


def run_path(args: Args, path: Path_, setup: dict[str, Any], *, staged: bool) -> dict[str, Any]:
    """Trains ``warmup + steps`` steps from the same start; returns mean ms per stage (``staged``) or per step."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    params = torch.nn.ParameterDict({k: torch.nn.Parameter(v.to(device)) for k, v in setup["raw"].items()})
    total = args.warmup + args.steps
    optimizers, decay = create_optimizers(
        params=params, lr=LearningRates(), scene_scale=setup["scene_scale"], steps=total
    )
    if path == "two-pass":  # before issue 18: torch's default Adam (multi-tensor path, unfused)
        optimizers = {
            k: torch.optim.Adam([{**o.param_groups[0], "fused": None}], eps=1e-15) for k, o in optimizers.items()
        }
        decay = torch.optim.lr_scheduler.ExponentialLR(optimizers["means"], gamma=decay.gamma)
    strategy = DefaultStrategy(
        refine_start_iter=args.warmup // 2, refine_stop_iter=10**9, refine_every=args.refine_every, reset_every=10**9
    )
    state = strategy.initialize_state(scene_scale=setup["scene_scale"])
    timer = StageTimer(device) if staged else None
    viewmats, Ks, sizes = setup["viewmats"], setup["Ks"], setup["sizes"]
    loss_config = LossConfig()
    start = 0.0
    for step in range(total):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        i = step % len(sizes)
        width, height = sizes[i]
        t = timer if (timer is not None and step >= args.warmup) else None
        if t is not None:
            t.start()
        view: dict[str, Any] = dict(viewmat=viewmats[i : i + 1], K=Ks[i : i + 1], width=width, height=height)
        if path == "two-pass":
            render = _render_two_pass(
                params, **view, ds=setup["ds"], rgb_ds=args.rgb_downscale, sh_degree=args.sh_degree, timer=t
            )
        elif staged:
            render = _render_shared(
                params, **view, ds=setup["ds"], rgb_ds=args.rgb_downscale, sh_degree=args.sh_degree, timer=t
            )
        else:
            render = render_step(
                params=params,
                **view,
                latent_downscale=setup["ds"],
                sh_degree=args.sh_degree,
                rgb_downscale=args.rgb_downscale,
            )
        terms = step_losses(
            render=render,
            image=setup["images"][i],
            target_latent=setup["targets"][i],
            loss=loss_config,
            ssim_lambda=0.2,
            step=step,
        )
        loss = torch.stack(list(terms.values())).sum()
        if t is not None:
            t.mark("losses")
        strategy.step_pre_backward(params, optimizers, state, step, render.info)
        loss.backward()
        if t is not None:
            t.mark("backward")
        for opt in optimizers.values():
            opt.step()
            opt.zero_grad(set_to_none=True)
        decay.step()
        if t is not None:
            t.mark("optimizer")
        strategy.step_post_backward(params, optimizers, state, step, render.info, packed=False)
        if t is not None:
            t.mark("densification")
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    out: dict[str, Any] = {"ms_per_step": elapsed * 1e3 / max(args.steps, 1), "gaussians": len(params["means"])}
    if timer is not None:
        out["stages"] = timer.finish()
    return out


def check_stages_match_render_step(args: Args, setup: dict[str, Any]) -> float:
    """Max abs difference between the spelled-out shared stages and render_step (RGB and latents) on view 0."""
    device = torch.device(args.device)
    params = {k: v.to(device) for k, v in setup["raw"].items()}
    width, height = setup["sizes"][0]
    view: dict[str, Any] = dict(viewmat=setup["viewmats"][:1], K=setup["Ks"][:1], width=width, height=height)
    with torch.no_grad():
        a = _render_shared(
            params, **view, ds=setup["ds"], rgb_ds=args.rgb_downscale, sh_degree=args.sh_degree, timer=None
        )
        b = render_step(
            params=params,
            **view,
            latent_downscale=setup["ds"],
            sh_degree=args.sh_degree,
            rgb_downscale=args.rgb_downscale,
        )
    assert a.rgb is not None and b.rgb is not None
    return max(float((a.rgb - b.rgb).abs().max()), float((a.latent - b.latent).abs().max()))


def prepare(args: Args) -> dict[str, Any]:
    device = torch.device(args.device)
    codec = load_codec("taef2", device=device)
    ds = codec.downscale
    scene = load_scene(args.scene, size_multiple=ds, downscale=args.downscale)
    train = scene.split_indices["train"].tolist()
    if args.max_views:
        train = train[: args.max_views]
    targets = encode_views(scene=scene, indices=train, codec=codec, device=device)
    full = [scene.load_image(i).to(device) for i in train]
    d = args.rgb_downscale
    images = (
        full
        if d == 1
        else [torch.nn.functional.avg_pool2d(im.permute(2, 0, 1)[None], d)[0].permute(1, 2, 0) for im in full]
    )
    generator = torch.Generator().manual_seed(0)
    points, colors = initial_points(
        points=scene.load_points(),
        cameras=training_cameras(scene, train),
        num_random=args.num_random,
        generator=generator,
    )
    if len(points) < args.min_gaussians:
        extra, _ = initial_points(
            points=None,
            cameras=training_cameras(scene, train),
            num_random=args.min_gaussians - len(points),
            generator=generator,
        )
        fill = torch.full_like(extra, 0.5)
        colors = None if colors is None else torch.cat([colors, fill])
        points = torch.cat([points, extra])
    raw = init_splats(
        points=points,
        colors=colors,
        latent_channels=codec.latent_channels,
        sh_degree=args.sh_degree,
        init_opacity=0.1,
        generator=generator,
    )
    return {
        "raw": raw,
        "ds": ds,
        "targets": targets,
        "images": images,
        "viewmats": scene.viewmats()[train].to(device),
        "Ks": scene.Ks[train].to(device),
        "sizes": [(int(scene.widths[i]), int(scene.heights[i])) for i in train],
        "scene_scale": camera_scene_scale(scene.camera_to_worlds[train]) * 1.1,
    }


def table(results: dict[str, dict[str, Any]], args: Args, setup: dict[str, Any], agreement: float) -> str:
    paths = list(results)
    w, h = setup["sizes"][0]
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    lines = [
        f"Training step of the core trainer on {args.scene} ({w}x{h}, {len(setup['sizes'])} views, RGB at "
        f"1/{args.rgb_downscale}, SH degree {args.sh_degree}), {device}, {args.steps} timed steps after "
        f"{args.warmup}; ms per step (stages: mean over the timed steps, "
        f"{'CUDA events' if args.device.startswith('cuda') else 'wall time'}).",
        "",
        "| stage | " + " | ".join(paths) + " |",
        "|---|" + "---|" * len(paths),
    ]
    for stage in STAGES:
        cells = [
            f"{results[p]['staged']['stages'][stage]:.3f}" if stage in results[p]["staged"]["stages"] else "—"
            for p in paths
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| sum of stages | " + " | ".join(f"{sum(results[p]['staged']['stages'].values()):.3f}" for p in paths) + " |"
    )
    lines.append(
        "| end-to-end ms/step (no events) | "
        + " | ".join(f"{results[p]['plain']['ms_per_step']:.3f}" for p in paths)
        + " |"
    )
    lines.append("| Gaussians at the end | " + " | ".join(str(results[p]["plain"]["gaussians"]) for p in paths) + " |")
    lines += [
        "",
        "two-pass: its projection is inside rasterize_rgb / rasterize_latent. Shared stages vs render_step: "
        f"max abs difference {agreement:.3g}.",
    ]
    return "\n".join(lines)


def main(args: Args) -> dict[str, Any]:
    setup = prepare(args)
    agreement = check_stages_match_render_step(args, setup)
    results = {
        p: {"staged": run_path(args, p, setup, staged=True), "plain": run_path(args, p, setup, staged=False)}
        for p in args.paths
    }
    text = table(results, args, setup, agreement)
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    record = {"args": {k: str(v) for k, v in vars(args).items()}, "agreement": agreement, "results": results}
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(record, indent=2))
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
