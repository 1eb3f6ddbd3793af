"""Agreement and speed of the torch rasterizer against gsplat 1.4.0's CUDA rasterizer (GPU).

Run on a CUDA machine: ``python benchmarks/gsplat_agreement.py [--gaussians 10000] [--repeats 20]``.
Prints a markdown table: resolution, cameras, channels, max abs difference of features / alpha /
expected depth (depth over pixels with alpha > 0.5 of both), the number of pixels differing by
more than 1e-3 (isolated float32 flips at the 1/255 alpha cut), and milliseconds per frame
(forward only, CUDA-synchronised median) for each backend.
Scene: ``splatent_viewer.render.synthetic.random_scene`` (a unit box of Gaussians with
log-uniform scales 0.005-0.15 and opacities 0.05-0.99) seen from 3 units away, fx = width.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from splatent_viewer.render import rasterize
from splatent_viewer.render.synthetic import orbit_cameras, random_scene

# (size, cameras, channels)
CASES = [(64, 1, 3), (256, 1, 3), (64, 2, 3), (256, 2, 3), (64, 1, 32), (128, 1, 32), (512, 1, 3)]


def _ms_per_frame(fn, repeats: int, n_cameras: int) -> float:
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3 / n_cameras


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gsplat_agreement.py needs a CUDA device (gsplat's kernels are CUDA only).")
    device = torch.device("cuda")
    print(
        f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}, {args.gaussians} Gaussians, "
        f"median of {args.repeats}\n"
    )
    print(
        "| image | cameras | channels | max abs diff features | alpha | depth (alpha>0.5) "
        "| pixels > 1e-3 | radii equal | gsplat ms/frame | torch ms/frame |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size, n_cams, channels in CASES:
        scene = random_scene(args.gaussians, channels=channels, seed=size + n_cams, device=device)
        viewmats, Ks = orbit_cameras(n_cams, width=size, height=size, device=device)
        common = dict(**scene.as_kwargs(), viewmats=viewmats, Ks=Ks, width=size, height=size)
        with torch.no_grad():
            gs = rasterize(**common, backend="gsplat")
            tc = rasterize(**common, backend="torch")
            d_feat = (gs.features - tc.features).abs().max().item()
            d_alpha = (gs.alpha - tc.alpha).abs().max().item()
            solid = (gs.alpha > 0.5) & (tc.alpha > 0.5)
            d_depth = (gs.depth - tc.depth)[solid].abs().max().item() if solid.any() else float("nan")
            radii_eq = (gs.info["radii"] == tc.info["radii"]).float().mean().item()
            per_pixel = torch.maximum((gs.features - tc.features).abs().amax(-1), (gs.alpha - tc.alpha).abs()[..., 0])
            n_over = int((per_pixel > 1e-3).sum())
            t_gs = _ms_per_frame(lambda: rasterize(**common, backend="gsplat"), args.repeats, n_cams)
            t_tc = _ms_per_frame(lambda: rasterize(**common, backend="torch"), max(3, args.repeats // 4), n_cams)
        print(
            f"| {size}x{size} | {n_cams} | {channels} | {d_feat:.2e} | {d_alpha:.2e} | {d_depth:.2e} "
            f"| {n_over} / {per_pixel.numel()} | {radii_eq:.5f} | {t_gs:.2f} | {t_tc:.2f} |"
        )


if __name__ == "__main__":
    main()
