"""Forward time of the embedded refiner (default sizes, untrained weights: timing does not depend on them).

Run: ``python benchmarks/refiner_speed.py [--device cuda] [--dtype float16] [--latent-size 64]
[--num-references 3] [--channels-last] [--cuda-graph]``; prints one markdown row.
The live-viewer target: 2x2 grid (k=3) of 64² latents (512² images), ≤ ~4 ms fp16 on an H100.
On the CPU use a toy size (e.g. ``--latent-size 16 --threads 2``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from splatent_viewer.refine import RefinerConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--latent-size", type=int, default=16, help="target latent height = width")
    parser.add_argument("--num-references", type=int, default=3)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--cuda-graph", action="store_true", help="replay one captured CUDA graph per call")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    refiner = RefinerConfig(latent_channels=args.channels, num_references=args.num_references).setup(
        device=device, dtype=dtype
    )
    refiner.requires_grad_(False).eval()
    if args.channels_last:
        refiner.use_channels_last()
    s, k = args.latent_size, args.num_references
    target = torch.randn(1, args.channels, s, s, device=device, dtype=dtype)
    refs = torch.randn(1, k, args.channels, s, s, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    call = lambda: refiner(target=target, references=refs)  # noqa: E731
    with torch.inference_mode():
        for _ in range(3):
            call()
        if args.cuda_graph:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                call()
            call = graph.replay  # noqa: E731  (replays on the same input and output buffers)
        sync()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            call()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
    params = sum(p.numel() for p in refiner.parameters()) / 1e6
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"
    )
    rows, cols = refiner.layout
    print("| device | dtype | grid | latent | params | channels_last | cuda graph | median ms | min ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {where} | {args.dtype} | {rows}x{cols} | {s}² | {params:.2f} M | {args.channels_last} | {args.cuda_graph} | "
        f"{statistics.median(times):.2f} | {min(times):.2f} |"
    )


if __name__ == "__main__":
    main()
