"""Issue 17's ablation: adapt the codec's decoder to one scene on its rendered training-view latents.

    python benchmarks/decoder_adaptation.py --run RUN --dataset RUN/adapted_guided/adaptation/dataset --device cpu \\
        --output benchmarks/results/decoder_adaptation_cpu.md

``RUN`` is a trained run (``benchmarks/enhancement.py --output-dir`` writes one per scene, with the adaptation's unit
dataset inside). The decoder (TAEF2's) is fine-tuned on the dataset's units but the last (leave-some-out renders of
training views → their images; (1-λ)·L1 + λ·(1-SSIM)), and scored before and after on that held-out unit and on the
run's held-out views (the latent render, decoded; never seen by the units or the fine-tuning): does a scene-adapted
decoder close the gap between the decoded render and the RGB splats? Not shipped unless it helps.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch
import tyro

from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import load_scene
from splatent_viewer.frame import render_frame
from splatent_viewer.refiner_training.adapt import held_out_unit
from splatent_viewer.refiner_training.dataset import RefinerDataset, read_index
from splatent_viewer.trained import load_trained_scene
from splatent_viewer.training.losses import l1_ssim_loss, psnr, ssim


@dataclass
class Args:
    run: Path
    """A trained run folder (splats + references; its scene folder and training views recorded)."""
    dataset: Path
    """The run's adaptation dataset (leave-some-out units of its training views)."""
    steps: int = 300
    """Decoder fine-tuning steps."""
    lr: float = 1e-4
    """Adam learning rate."""
    batch_size: int = 4
    ssim_lambda: float = 0.2
    source: Literal["render", "guide"] = "render"
    """What the decoder learns to decode: the latent render (the decoded view), or the RGB guide = the codec's encoding
    of the same Gaussians' RGB splats (the guided enhanced view's input: its start decodes it unchanged)."""
    device: str = "cpu"
    seed: int = 0
    output: Optional[Path] = None
    """Markdown table (+ .json beside it)."""


def _score(decode, pairs) -> tuple[float, float]:
    ps, ss = [], []
    with torch.no_grad():
        for latent, image in pairs:
            out = decode(latent[None]).clamp(0, 1)
            ps.append(psnr(out, image[None]))
            ss.append(float(ssim(out, image[None])))
    return sum(ps) / len(ps), sum(ss) / len(ss)


def main(args: Args) -> dict:
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    codec = load_codec("taef2", device=device, dtype=torch.float32)
    held = held_out_unit(read_index(args.dataset))  # as adapt's validation holds it out
    train = RefinerDataset(args.dataset, exclude_units=[held])
    val = RefinerDataset(args.dataset, units=[held])

    def pairs_of(ds: RefinerDataset):
        out = []
        for i in range(len(ds)):
            item = ds[i]
            out.append((item[args.source].float().to(device), item["image"].float().to(device)))
        return out

    train_pairs, val_pairs = pairs_of(train), pairs_of(val)
    trained = load_trained_scene(args.run, device=device, refiner="none")
    assert trained.scene_path is not None and trained.train_indices is not None
    scene = load_scene(Path(trained.scene_path), size_multiple=codec.downscale)
    test_views = sorted(set(range(len(scene))) - {int(i) for i in trained.train_indices})
    test_pairs = []
    for i in test_views:
        f = render_frame(
            scene=trained,
            c2w=scene.camera_to_worlds[i],
            K=scene.Ks[i],
            width=int(scene.widths[i]),
            height=int(scene.heights[i]),
            outputs=("latent", "rgb"),
        )
        assert f.latent is not None and f.rgb is not None
        with torch.no_grad():
            latent = f.latent.float() if args.source == "render" else codec.encode(f.rgb.permute(2, 0, 1)[None])[0]
        test_pairs.append((latent.float(), scene.load_image(i).to(device).permute(2, 0, 1).float()))

    decoder0 = copy.deepcopy(codec.decoder).eval()
    before = {"validation": _score(decoder0, val_pairs), "test": _score(decoder0, test_pairs)}
    decoder = codec.decoder.train().requires_grad_(True)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for step in range(args.steps):
        pick = torch.randint(0, len(train_pairs), (args.batch_size,), generator=g).tolist()
        latents = torch.stack([train_pairs[j][0] for j in pick])
        images = torch.stack([train_pairs[j][1] for j in pick])
        loss = l1_ssim_loss(decoder(latents).clamp(0, 1), images, ssim_lambda=args.ssim_lambda)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step} loss {float(loss):.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    decoder.eval()
    after = {"validation": _score(decoder, val_pairs), "test": _score(decoder, test_pairs)}
    seconds = time.perf_counter() - started
    record = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "held_unit": held,
        "samples": {"train": len(train_pairs), "validation": len(val_pairs), "test": len(test_pairs)},
        "before": before,
        "after": after,
        "fine_tune_seconds": seconds,
        "device": str(device),
    }
    lines = [
        f"Decoder adaptation (issue 17 ablation), {device}, {time.strftime('%Y-%m-%d')}: TAEF2's decoder fine-tuned "
        f"{args.steps} steps (batch {args.batch_size}, lr {args.lr:g}, {seconds:.0f} s) on {len(train_pairs)} "
        f"leave-some-out renders of training views; validation = unit {held} ({len(val_pairs)} views), test = the "
        f"run's {len(test_pairs)} held-out views. "
        + ("Decoded latent render" if args.source == "render" else "Decoded RGB guide (encoded RGB splats)")
        + ", PSNR / SSIM:",
        "",
        "| decoder | validation (held-out unit) | test (held-out views) |",
        "|---|---|---|",
        f"| TAEF2 (shipped) | {before['validation'][0]:.2f} / {before['validation'][1]:.3f} | "
        f"{before['test'][0]:.2f} / {before['test'][1]:.3f} |",
        f"| adapted to the scene | {after['validation'][0]:.2f} / {after['validation'][1]:.3f} | "
        f"{after['test'][0]:.2f} / {after['test'][1]:.3f} |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        args.output.with_suffix(".json").write_text(json.dumps(record, indent=1))
    return record


if __name__ == "__main__":
    main(tyro.cli(Args))
