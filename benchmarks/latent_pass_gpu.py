"""The latent pass alone, forward + backward, by tile size and channel groups: why it grows with the Gaussian count,
and which launch layout `render_rgb_and_latents` should use (`LATENT_TILE_SIZE`, `latent_layout`).

    python benchmarks/latent_pass_gpu.py --scenes assets/demo_scene .gpu_scenes/fern --output latent_pass.md

The latent grid is 1/8 of the image per side: a 256² view is 32² latent cells, 4 tiles of 16 cells or 16 of 8, so
gsplat launches 4 or 16 thread blocks, each compositing every Gaussian of its tile for all 32 channels, however many
Gaussians there are. A variant ``T:K:S`` composites on ``T``-cell tiles with the channels in ``K`` groups and each
tile's depth-sorted list in ``S`` runs, all in one launch
(:func:`~splatent_viewer.render.gsplat_backend.rasterize_projected_gsplat`'s ``channel_split`` and ``depth_split``:
``K·S`` times the blocks). The RGB pass (3 channels, 16-pixel tiles, image grid) on the same Gaussians is the yardstick.

Gaussians: the scene's point cloud, copied with jitter (each copy within its point's neighbour distance) up to
``N``, scales from the 3-NN distance as at initialisation (a densified model's Gaussians sit on the surfaces the
point cloud samples; fern has no cloud: 20k random points in its training frustums are copied instead), uniform
opacity (``--opacities``). Each variant is timed with CUDA events over ``--reps``
passes cycling through the first ``--views`` training views, and checked against ``16:1`` (max abs difference of
the render, and of the gradients relative to their largest value).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import tyro

from splatent_viewer.data.scene import load_scene
from splatent_viewer.render.screen import ScreenGaussians, downscale_screen, project_screen, rasterize_screen
from splatent_viewer.splats import init_splats, sh_colors, splat_geometry
from splatent_viewer.splats.params import knn_mean_distance
from splatent_viewer.training.points import initial_points
from splatent_viewer.training.trainer import training_cameras

DOWNSCALE = 8  # TAEF2's latent grid


@dataclass
class Args:
    scenes: tuple[Path, ...] = (Path("assets/demo_scene"),)
    """Scene folders (nerfstudio or blender format; sizes rounded to multiples of 8)."""
    gaussians: tuple[int, ...] = (20_000, 200_000, 500_000)
    """Gaussian counts."""
    variants: tuple[str, ...] = ("16:1:1", "8:1:1", "8:4:1", "8:1:4", "8:2:4", "8:4:4", "8:1:8", "8:4:8", "8:2:16")
    """``tile:channel_split:depth_split`` launch layouts of the latent pass; the first is the reference."""
    opacities: tuple[float, ...] = (0.1, 0.7)
    """Uniform opacities (0.1: a fresh initialisation; 0.7: closer to a trained model's opaque surfaces)."""
    reps: int = 30
    views: int = 8
    latent_channels: int = 32
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    output: Path | None = None
    json_out: Path | None = None


def surface_points(scene, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` points: the scene's cloud (or, without one, 20k random points in the training views' frustums), then
    jittered copies of it (each within its own 3-NN distance)."""
    points = scene.load_points()
    if points is not None and len(points[0]) > 0:
        base = points[0].float()
    else:  # no cloud (fern): 20k random points in the training frustums stand in for it
        train = scene.split_indices["train"].tolist()
        base = initial_points(
            points=None, cameras=training_cameras(scene, train), num_random=min(n, 20_000), generator=generator
        )[0].float()
    spacing = knn_mean_distance(base)
    idx = torch.randint(len(base), (max(n - len(base), 0),), generator=generator)
    jitter = torch.randn(len(idx), 3, generator=generator) * spacing[idx, None]
    return torch.cat([base, base[idx] + jitter])[:n]


def time_pass(fn, reps: int, device: torch.device) -> tuple[float, float]:
    """Mean forward and backward milliseconds of ``fn(rep) -> (loss, ...)``."""
    fwd = bwd = 0.0
    for rep in range(reps + 3):
        if device.type == "cuda":
            a, b, c = (torch.cuda.Event(enable_timing=True) for _ in range(3))
            a.record()
            loss = fn(rep)
            b.record()
            loss.backward()
            c.record()
            torch.cuda.synchronize()
            if rep >= 3:
                fwd += a.elapsed_time(b)
                bwd += b.elapsed_time(c)
        else:
            import time

            t0 = time.perf_counter()
            loss = fn(rep)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            if rep >= 3:
                fwd += (t1 - t0) * 1e3
                bwd += (t2 - t1) * 1e3
    return fwd / reps, bwd / reps


def leaf_screen(screen: ScreenGaussians) -> ScreenGaussians:
    """The screen Gaussians as leaves (gradients stop at the rasterizer's inputs: the pass alone is timed)."""
    from dataclasses import replace

    return replace(
        screen,
        means2d=screen.means2d.detach().requires_grad_(),
        conics=screen.conics.detach().requires_grad_(),
        opacities=screen.opacities.detach().contiguous().requires_grad_(),
    )


def bench_scene(args: Args, scene_dir: Path, n: int, opacity: float) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    scene = load_scene(scene_dir, size_multiple=DOWNSCALE)
    train = scene.split_indices["train"].tolist()[: args.views]
    g = torch.Generator().manual_seed(0)
    raw = init_splats(
        points=surface_points(scene, n, g),
        colors=None,
        latent_channels=args.latent_channels,
        init_opacity=opacity,
        generator=g,
    )
    raw["latents"] = torch.randn(raw["latents"].shape, generator=g)
    params = {k: v.to(device) for k, v in raw.items()}
    latents = params["latents"].requires_grad_()
    screens, fine = [], []
    with torch.no_grad():
        for i in train:
            w, h = int(scene.widths[i]), int(scene.heights[i])
            viewmat = scene.viewmats()[i : i + 1].to(device)
            screen = project_screen(
                **splat_geometry(params),
                viewmats=viewmat,
                Ks=scene.Ks[i : i + 1].to(device),
                width=w,
                height=h,
            )
            colors = sh_colors(params=params, viewmats=viewmat, sh_degree=3, backend=screen.backend)
            fine.append((leaf_screen(screen), colors.contiguous().requires_grad_()))
            coarse = downscale_screen(screen, downscale=DOWNSCALE, width=w // DOWNSCALE, height=h // DOWNSCALE)
            screens.append(leaf_screen(coarse))
    visible = sum(int((s.radii > 0).sum()) for s in screens) / len(screens)
    w0, h0 = screens[0].width, screens[0].height

    def rgb_pass(rep: int) -> torch.Tensor:
        s, colors = fine[rep % len(fine)]
        return rasterize_screen(screen=s, features=colors, depth=False).features.square().mean()

    rgb_fwd, rgb_bwd = time_pass(rgb_pass, args.reps, device)
    rows: list[dict[str, Any]] = []
    reference: dict[str, Any] = {}
    for variant in args.variants:
        tile, split, runs = (int(x) for x in variant.split(":"))
        layout = dict(tile_size=tile, channel_split=split, depth_split=runs)

        def latent_pass(rep: int, layout: dict[str, int] = layout) -> torch.Tensor:
            out = rasterize_screen(screen=screens[rep % len(screens)], features=latents, depth=False, **layout)
            return out.features.square().mean()

        fwd, bwd = time_pass(latent_pass, args.reps, device)
        # agreement on view 0
        s0 = screens[0]
        out = rasterize_screen(screen=s0, features=latents, depth=False, **layout)
        grads = torch.autograd.grad(out.features.square().mean(), [s0.means2d, s0.conics, s0.opacities, latents])
        if not reference:
            reference = {"render": out.features.detach(), "grads": [x.detach() for x in grads]}
        render_diff = float((out.features.detach() - reference["render"]).abs().max())
        grad_diff = max(
            float((a - b).abs().max()) / max(float(b.abs().max()), 1e-30) for a, b in zip(grads, reference["grads"])
        )
        rows.append({
            "scene": scene_dir.name, "image": f"{int(scene.widths[train[0]])}x{int(scene.heights[train[0]])}",
            "latent_grid": f"{w0}x{h0}", "gaussians": n, "visible": round(visible), "opacity": opacity,
            "variant": variant, "blocks": math.ceil(w0 / tile) * math.ceil(h0 / tile) * split * runs,
            "fwd_ms": fwd, "bwd_ms": bwd, "rgb_fwd_ms": rgb_fwd, "rgb_bwd_ms": rgb_bwd,
            "render_max_diff": render_diff, "grad_max_rel_diff": grad_diff,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def table(rows: list[dict[str, Any]], device_name: str, args: Args) -> str:
    lines = [
        f"Latent pass (32 channels, 1/{DOWNSCALE} grid) forward + backward alone, by `tile:channel_split:depth_split`, "
        f"{device_name}, mean of {args.reps} passes over {args.views} training views "
        f"({'CUDA events' if args.device.startswith('cuda') else 'wall time'}). RGB: the image-grid "
        "pass (3 channels, 16-pixel tiles) on the same Gaussians. Diffs against the first variant (view 0).",
        "",
        "| scene (latent grid) | Gaussians (visible) | opacity | variant | blocks | latent fwd+bwd ms | × first | "
        "RGB fwd+bwd ms | render max diff | grad max rel diff |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    first: dict[tuple, float] = {}
    for r in rows:
        key = (r["scene"], r["gaussians"], r["opacity"])
        total = r["fwd_ms"] + r["bwd_ms"]
        first.setdefault(key, total)
        lines.append(
            f"| {r['scene']} ({r['latent_grid']}) | {r['gaussians']} ({r['visible']}) | {r['opacity']} | "
            f"{r['variant']} | {r['blocks']} | {r['fwd_ms']:.2f} + {r['bwd_ms']:.2f} = {total:.2f} | "
            f"{first[key] / total:.2f} | {r['rgb_fwd_ms'] + r['rgb_bwd_ms']:.2f} | {r['render_max_diff']:.1e} | "
            f"{r['grad_max_rel_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(args: Args) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scene_dir in args.scenes:
        for n in args.gaussians:
            for opacity in args.opacities:
                rows += bench_scene(args, scene_dir, n, opacity)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU (torch rasterizer)"
    text = table(rows, name, args)
    print(text)
    for path, content in ((args.output, text + "\n"), (args.json_out, json.dumps(rows, indent=2))):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
