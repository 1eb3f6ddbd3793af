"""Cost of one demo training step's renders on the embedded demo scene's initial Gaussians.

    python benchmarks/demo_step.py [--repeats 5]

Initial splats from the scene's point cloud (12 000 points), first training camera: the latent
render (32 channels at 1/8 resolution) and the RGB render (SH degree 3) at 128² and 256²,
forward+backward, median of repeats. Prints a markdown table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import tyro

from splatent_viewer.cameras import scale_intrinsics
from splatent_viewer.data.scene import load_scene
from splatent_viewer.paths import assets_dir
from splatent_viewer.splats import init_splats, render_splats


@dataclass
class Args:
    repeats: int = 5
    """Timed repeats per case (after one warm-up)."""
    threads: int = 2
    """torch CPU threads."""


def main(args: Args) -> None:
    torch.set_num_threads(args.threads)
    scene = load_scene(assets_dir() / "demo_scene")
    points, colors = scene.load_points()
    params = {
        k: v.requires_grad_()
        for k, v in init_splats(
            points=points, colors=colors, latent_channels=32, generator=torch.Generator().manual_seed(0)
        ).items()
    }
    vm, K = scene.viewmats()[:1], scene.Ks[:1]
    size = int(scene.widths[0])

    def step(content: str, res: int) -> None:
        out = render_splats(
            params=params,
            viewmats=vm,
            Ks=scale_intrinsics(K, res / size),
            width=res,
            height=res,
            content=content,
            sh_degree=3,
        )
        out.features.sum().backward()

    print(f"demo scene, {points.shape[0]} initial Gaussians, torch {torch.__version__}, {args.threads} threads\n")
    print("| render | image | forward+backward ms |\n|---|---|---|")
    for content, res in (("latent", size // 8), ("rgb", size // 2), ("rgb", size)):
        step(content, res)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            step(content, res)
            times.append(time.perf_counter() - t)
        print(f"| {content} | {res}×{res} | {sorted(times)[len(times) // 2] * 1000:.0f} |")


if __name__ == "__main__":
    main(tyro.cli(Args))
