"""Does an adapted refiner's correction help more the farther the camera is from the training views?

The adaptation's validation picks one refiner for every view (``benchmarks/RESULTS.md``: on the GPU the fine-tuned end
was +3.5 dB on temple's held-out view and −0.5 dB on dino's, while the run's renders of its own training views always
lose by it). A renderer knows its camera, not its render's error: if the correction's worth grows with the camera's
distance from the training views, a strength that follows that distance is a rule a viewer can apply. This scores, on
a run's held-out views, the RGB splats plus ``w`` times the fine-tuned end's correction (its enhanced view minus the
RGB splats, the adaptation's correction blur on), for several ``w``, beside each view's distance to the nearest
training camera in units of the training cameras' median nearest-neighbour spacing (and the angle between their
viewing directions).

    python benchmarks/correction_vs_distance.py --run /tmp/exp/lego_snap/lego --downscale 4
    python benchmarks/correction_vs_distance.py --run /tmp/guard/run/demo
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro
from enhancement import adaptation_refiners, eval_indices  # this folder's protocol script: the same held-out views

from splatent_viewer.data.scene import load_scene
from splatent_viewer.frame import render_frame
from splatent_viewer.refine.refiner import with_correction_blur
from splatent_viewer.trained import load_trained_scene
from splatent_viewer.training.losses import psnr


@dataclass
class Args:
    run: Path
    """The benchmark's run folder of one scene (``enhancement.py --output-dir``/SCENE)."""
    adaptation: str = "adapted_guided"
    """The adaptation's folder inside it (its ``adaptation/train/refiner`` is the fine-tuned end)."""
    weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    """Strengths ``w`` of the correction: the RGB splats + w·(enhanced − RGB splats)."""
    downscale: int = 1
    """Image downscale the run was trained and scored at (enhancement.py's --downscale; the demo scene: 1)."""
    correction_blur: float = 1.0
    """σ in pixels of the correction's blur (the adaptation's default)."""
    max_eval_views: int = 20
    """As enhancement.py: the test split where the scene has one, else val, at most this many, evenly spaced."""
    device: str = "cpu"
    """Torch device."""
    output: Path | None = None
    """Also write the per-view rows as JSON."""


def nearest_training_camera(c2ws: torch.Tensor, train: list[int], view: int) -> tuple[float, float]:
    """(distance of ``view``'s camera centre to the nearest training camera's, in units of the training cameras' median
    nearest-neighbour spacing; the angle in degrees between the two cameras' viewing directions)."""
    centres = c2ws[:, :3, 3].double()
    forward = -c2ws[:, :3, 2].double()  # OpenGL cameras look down −z
    t = centres[train]
    pairwise = torch.cdist(t, t) + torch.eye(len(train), dtype=t.dtype) * 1e9
    spacing = pairwise.min(dim=1).values.median().item()
    d = (t - centres[view]).norm(dim=1)
    nearest = int(d.argmin())
    cos = (forward[train[nearest]] @ forward[view]).clamp(-1, 1)
    return d[nearest].item() / max(spacing, 1e-12), torch.rad2deg(torch.acos(cos)).item()


@torch.no_grad()
def main(args: Args) -> list[dict]:
    trained = load_trained_scene(args.run, device=args.device, refiner="none")
    assert trained.scene_path is not None
    scene = load_scene(trained.scene_path, downscale=args.downscale, size_multiple=trained.codec.downscale)
    train = scene.split_indices["train"].tolist()
    _, tuned = adaptation_refiners(args.run, args.adaptation, device=args.device)
    trained.refiner = with_correction_blur(tuned.float(), args.correction_blur)
    rows = []
    for i in eval_indices(scene, args.max_eval_views):
        gt = scene.load_image(i).to(trained.device)
        f = render_frame(
            scene=trained, c2w=scene.camera_to_worlds[i], K=scene.Ks[i], width=int(scene.widths[i]),
            height=int(scene.heights[i]), outputs=("enhanced", "rgb"),
        )  # fmt: skip
        assert f.enhanced is not None and f.rgb is not None
        distance, angle = nearest_training_camera(scene.camera_to_worlds, train, i)
        scores = {f"{w:g}": psnr((f.rgb + w * (f.enhanced - f.rgb)).clamp(0, 1), gt) for w in args.weights}
        rows.append({"view": i, "distance": distance, "angle": angle, "psnr": scores})
    rows.sort(key=lambda r: r["distance"])
    print(f"{args.run}: {len(rows)} held-out views, {len(train)} training views")
    print("view | distance (NN spacings) | angle ° | " + " | ".join(f"w={w:g}" for w in args.weights) + " | best w")
    for r in rows:
        best = max(r["psnr"], key=lambda k: r["psnr"][k])
        cells = " | ".join(f"{v:.2f}" for v in r["psnr"].values())
        print(f"{r['view']} | {r['distance']:.2f} | {r['angle']:.1f} | {cells} | {best}")
    gains = torch.tensor([r["psnr"]["1"] - r["psnr"]["0"] for r in rows]) if "1" in rows[0]["psnr"] else None
    if gains is not None and len(rows) > 2:
        d = torch.tensor([r["distance"] for r in rows])
        rank = lambda x: x.argsort().argsort().double()  # noqa: E731 - Spearman: Pearson of the ranks
        rd, rg = rank(d), rank(gains)
        rho = ((rd - rd.mean()) * (rg - rg.mean())).sum() / ((rd - rd.mean()).norm() * (rg - rg.mean()).norm())
        print(f"Spearman ρ(distance, gain of w=1 over the RGB splats) = {rho.item():+.2f} over {len(rows)} views")
    if args.output is not None:
        args.output.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main(tyro.cli(Args))
