"""CPU timings of the pure-torch rasterizer (forward, and forward + backward).

Run: ``python benchmarks/raster_cpu.py [--threads 2] [--repeats 7]``; prints a markdown table.
Scene: ``splatent_viewer.render.synthetic.random_scene`` (Gaussians in a unit box, log-uniform
scales 0.005-0.15, opacities 0.05-0.99) seen by one camera 3 units away with fx = width.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from splatent_viewer.render import rasterize
from splatent_viewer.render.synthetic import orbit_cameras, random_scene

# (gaussians, channels, width/height)
CASES = [(2000, 4, 128), (2000, 32, 32), (2000, 32, 64), (2000, 3, 256)]


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def bench_case(n: int, channels: int, size: int, repeats: int) -> dict[str, float]:
    scene = random_scene(n, channels=channels, seed=0)
    viewmats, Ks = orbit_cameras(1, width=size, height=size)
    params = {k: v.clone().requires_grad_(True) for k, v in scene.as_kwargs().items()}
    target = torch.rand(1, size, size, channels)

    def render():
        return rasterize(**params, viewmats=viewmats, Ks=Ks, width=size, height=size, backend="torch")

    def forward():
        with torch.no_grad():
            render()

    def forward_backward():
        out = render()
        out.info["means2d"].retain_grad()  # as DefaultStrategy does
        loss = (out.features - target).abs().mean() + out.alpha.mean()
        loss.backward()
        for p in params.values():
            p.grad = None

    with torch.no_grad():
        out = render()
    pairs = int(out.info["tiles_per_gauss"].sum())
    return {
        "forward": _time(forward, repeats),
        "forward+backward": _time(forward_backward, repeats),
        "pairs": pairs,
        "visible": int((out.info["radii"] > 0).sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
        f"median of {args.repeats}\n"
    )
    print("| gaussians (visible) | channels | image | tile pairs | forward (no grad) ms | forward+backward ms |")
    print("|---|---|---|---|---|---|")
    for n, ch, size in CASES:
        r = bench_case(n, ch, size, args.repeats)
        print(
            f"| {n} ({r['visible']}) | {ch} | {size}x{size} | {r['pairs']} "
            f"| {r['forward']:.1f} | {r['forward+backward']:.1f} |"
        )


if __name__ == "__main__":
    main()
