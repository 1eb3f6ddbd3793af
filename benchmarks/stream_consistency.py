"""Which stream swims: plain and warped flicker of a run's RGB splats, decoded latent render and the codec's round trip
of its RGB splats, on the same orbit and the same pixels (:mod:`splatent_viewer.export.consistency`).

The round trip (``decode(encode(RGB splats))`` per frame) separates the codec's own shift variance from the rendered
latents': if the round trip warps nearly as well as the RGB splats and the decoded latent render does not, the
decoded view's detail does not stick to the surfaces (the latents, not the warp or the decoder, are the cause).

    python benchmarks/stream_consistency.py --run outputs/demo --frames 120 --first 12
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

from splatent_viewer.data.scene import load_scene
from splatent_viewer.export.camera_paths import orbit_path
from splatent_viewer.export.consistency import FlickerMeter, ReprojectionTracker
from splatent_viewer.frame import render_frame
from splatent_viewer.trained import load_trained_scene


@dataclass
class Args:
    run: Path
    """A trained run (a ``splatent-demo`` output folder or the benchmark's run folder of one scene)."""
    frames: int = 120
    """Frames of the full orbit (sets the step between frames, as ``splatent-render orbit --num-frames``)."""
    first: int = 12
    """Score the first this many frames of it."""
    downscale: int = 1
    """Image downscale the run was trained at."""
    device: str = "cpu"
    """Compute device."""


@torch.no_grad()
def main(args: Args) -> dict[str, dict[str, float]]:
    """Prints and returns ``{stream: {"plain": ..., "warped": ...}}`` for rgb, decoded and roundtrip."""
    trained = load_trained_scene(args.run, device=args.device, refiner="none")
    assert trained.scene_path is not None
    scene = load_scene(trained.scene_path, downscale=args.downscale, size_multiple=trained.codec.downscale)
    train = scene.split_indices["train"]
    c2ws = orbit_path(train_c2ws=scene.camera_to_worlds[train].double(), num_frames=args.frames).float()
    K, width, height = scene.Ks[train[0]].float(), int(scene.widths[train[0]]), int(scene.heights[train[0]])
    meters = {name: FlickerMeter() for name in ("rgb", "decoded", "roundtrip")}
    geometry = ReprojectionTracker()
    for i in range(min(args.first, args.frames)):
        f = render_frame(
            scene=trained, c2w=c2ws[i], K=K, width=width, height=height, outputs=("rgb", "decoded", "depth", "alpha")
        )
        assert f.rgb is not None and f.decoded is not None and f.depth is not None and f.alpha is not None
        roundtrip = trained.decode(trained.codec.encode(f.rgb.permute(2, 0, 1)[None]))[0].float().clamp(0, 1)
        reproj = geometry.next(depth=f.depth, alpha=f.alpha, c2w=c2ws[i], K=K)
        for name, image in (("rgb", f.rgb), ("decoded", f.decoded), ("roundtrip", roundtrip.permute(1, 2, 0))):
            meters[name].add(image, reproj)
    out = {}
    for name, meter in meters.items():
        warped = meter.warped_value()
        out[name] = {"plain": meter.value(), "warped": float("nan") if warped is None else warped}
    for name, v in out.items():
        print(f"{name}: plain {v['plain']:.4f}, warped {v['warped']:.4f}")
    return out


if __name__ == "__main__":
    main(tyro.cli(Args))
