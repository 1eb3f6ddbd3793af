"""Issue 17's protocol: is the enhanced view the best picture the tool shows, on scenes its refiner never saw?

    python benchmarks/enhancement.py --scenes demo temple dino fern lego --device cuda \\
        --generic LOSO_DIR --output benchmarks/results/enhancement_h100.md
    # CPU rows (demo scene; the real scenes at half resolution):
    python benchmarks/enhancement.py --scenes demo dino fern --downscale 2 --device cpu \\
        --output benchmarks/results/enhancement_cpu.md

Per scene (``demo`` is the embedded demo scene, any other name a folder under ``--root``), the core trainer fits
latent + RGB Gaussians to the standard training split (nerfstudio's; blender scenes are scored on their test views,
``--max-eval-views`` of them evenly spaced) and these are scored on the held-out views, PSNR and SSIM:

* **decoded**: the latent render, decoded;
* **generic latent**: enhanced by the generic pure-latent refiner (the paper's setting);
* **generic guided**: enhanced by the generic RGB-guided refiner (default: the pure-latent one made guided, which
  starts as the identity on the guide = decode(encode(RGB render)));
* **adapted guided**: enhanced by the guided refiner adapted to the scene's training views (``adapt_to_scene``, from
  the generic refiner), and **adapted fresh**: the same adaptation from a new refiner (``--adapt-fresh``), which no
  other scene shaped;
* **RGB splats** of the same Gaussians; **splatfacto** at the same steps (``--splatfacto``: the .json written by
  ``benchmarks/ns_train_gpu.py --methods splatfacto``; CUDA only); the codec's **round trip** of the ground truth
  (the decoded render's ceiling).

Plus the flicker of a 120-frame orbit decoded and enhanced with each refiner, as ``splatent-render`` reports it: plain
(mean |frame_t - frame_t-1|, the camera's motion included) and warped (frame_t-1 warped into frame_t along the
Gaussians' depth first, :mod:`splatent_viewer.export.consistency`), and the adaptation's seconds. ``--generic`` is the shipped refiner (``embedded``), a
refiner folder, or a folder of leave-one-scene-out fold refiners (``DIR/<scene>/refiner``, as
``benchmarks/refiner_loso.py`` writes them) so that the generic refiner never saw the scene it is scored on; the
table marks each generic cell that did not come from such a fold. The goals of issue 17 are checked at the end.
"""

from __future__ import annotations

import datetime
import json
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import torch
import tyro
from rich.console import Console

from splatent_viewer.atomic import write_json_atomic, write_text_atomic
from splatent_viewer.codecs import load_codec
from splatent_viewer.data.scene import Scene, load_scene
from splatent_viewer.devices import DeviceName, resolve_device
from splatent_viewer.errors import SplatentError, exit_on_error
from splatent_viewer.evaluation import evaluate_views, mean_metrics, threaded_map
from splatent_viewer.export.camera_paths import CameraPath, orbit_path
from splatent_viewer.export.flythrough import ExportConfig, export_flythrough
from splatent_viewer.frame import render_frame
from splatent_viewer.paths import assets_dir
from splatent_viewer.refine import Refiner, load_refiner
from splatent_viewer.refine.refiner import guided_from
from splatent_viewer.refiner_training.adapt import (
    AdaptationConfig,
    adapt_to_scene,
    describe_candidate,
    describe_candidates,
)
from splatent_viewer.trained import TrainedScene, trained_scene_from_splats
from splatent_viewer.training.encode import LatentCache
from splatent_viewer.training.losses import psnr, ssim
from splatent_viewer.training.trainer import LatentSplatTrainerConfig, encode_views, train_latent_splats

CONSOLE = Console()
SHIPPED_SAW = ("temple", "dino", "fern", "lego")
"""Scenes in the shipped refiner's training data (assets/refiner/README.md): its cells there are not unseen."""


@dataclass
class Args:
    scenes: tuple[str, ...] = ("demo", "temple", "dino", "fern", "lego")
    """Scenes: demo (the embedded demo scene) or folder names under --root."""
    root: Path = Path("../shared/data/scenes")
    """Folder holding the real scenes."""
    downscale: int = 1
    """Image downscale of the --root scenes at load (1 = full resolution; 2 for CPU-sized rows); demo is 256² always."""
    max_eval_views: int = 20
    """At most this many held-out views per scene, evenly spaced (a scene with fewer uses all)."""
    steps: Optional[int] = None
    """Core-trainer steps (default: 7000 on CUDA, 400 on the CPU)."""
    generic: str = "embedded"
    """The generic pure-latent refiner: embedded (shipped), a refiner folder, or a folder of fold refiners
    (DIR/<scene>/refiner, leave-one-scene-out)."""
    generic_guided: Optional[str] = None
    """The generic RGB-guided refiner, given like --generic (default: --generic made guided: the identity on the
    guide)."""
    adaptation: AdaptationConfig = field(default_factory=lambda: AdaptationConfig(max_seconds=180.0))
    """Scene adaptation (starting weights: the generic guided refiner when --generic-guided is given, else the
    generic one; --adaptation.refiner is set per scene)."""
    adapt_fresh: bool = True
    """Also adapt a new refiner (starts as the identity on the guide) with the same settings."""
    orbit_frames: int = 120
    """Frames of the flicker orbit (0: no orbit)."""
    splatfacto: Optional[Path] = None
    """ns_train_gpu.py's .json with splatfacto rows at the same steps (optional)."""
    device: DeviceName = "auto"
    """Compute device."""
    output_dir: Path = Path("outputs/bench_enhancement")
    """Runs (splats, adapted refiners, adaptation work folders) and per-scene JSON go here."""
    output: Path = Path("benchmarks/results/enhancement.md")
    """Markdown table (rewritten after each scene) and a .json beside it."""
    seed: int = 0
    """Random seed of training and adaptation."""
    merge: tuple[Path, ...] = ()
    """Only write the table (--output) from these .json files of earlier runs, e.g. one process per scene on one
    GPU; --splatfacto still merges in."""


def scene_folder(name: str, root: Path) -> Path:
    return assets_dir() / "demo_scene" if name == "demo" else root / name


def eval_indices(scene: Scene, limit: int) -> list[int]:
    """The held-out views: the test split where the scene has one (blender), else val; at most ``limit``, spaced."""
    views = scene.split_indices["test"].tolist() or scene.split_indices["val"].tolist()
    if len(views) > limit:
        views = [views[round(i * (len(views) - 1) / (limit - 1))] for i in range(limit)] if limit > 1 else views[:1]
    return views


def _db(value: float | None) -> str:
    return "diverged" if value is None else f"{value:.2f} dB"


def generic_refiner(spec: str, scene_name: str, *, device: torch.device, dtype: torch.dtype) -> tuple[Refiner, str]:
    """The refiner ``spec`` names for ``scene_name`` and how it relates to the scene (unseen / SAW)."""
    if spec == "embedded":
        seen = scene_name in SHIPPED_SAW
        return load_refiner("embedded", device=device, dtype=dtype), "shipped" + (" (SAW this scene)" if seen else "")
    folder = Path(spec)
    fold = folder / scene_name / "refiner"
    if fold.is_dir():
        return load_refiner(fold, device=device, dtype=dtype), "leave-one-scene-out fold"
    if (folder / "refiner.json").is_file():
        return load_refiner(folder, device=device, dtype=dtype), f"{folder} (may have seen this scene)"
    raise SplatentError(
        f"{folder} holds neither a refiner nor a fold refiner {fold}; pass a refiner folder or a "
        "benchmarks/refiner_loso.py output folder."
    )


def adaptation_refiners(run: Path, adaptation: str, *, device: str) -> tuple[Refiner, Refiner]:
    """The start of a run's adaptation in ``run/adaptation`` (the shipped refiner made guided and residual, as this
    protocol adapts from it) and its fine-tuned end point (``adaptation/train/refiner``), float32."""
    start = guided_from(load_refiner("embedded", device=device, dtype=torch.float32), residual=True)
    end = load_refiner(run / adaptation / "adaptation" / "train" / "refiner", device=device, dtype=torch.float32)
    return start, end


def score_enhanced(*, scene: Scene, trained: TrainedScene, indices: list[int], workers: int) -> dict[str, float]:
    """Mean PSNR/SSIM of the enhanced render over ``indices``."""

    def one(i: int) -> tuple[float, float]:
        gt = scene.load_image(i).to(trained.device)
        f = render_frame(
            scene=trained,
            c2w=scene.camera_to_worlds[i],
            K=scene.Ks[i],
            width=int(scene.widths[i]),
            height=int(scene.heights[i]),
            outputs=("enhanced",),
        )
        assert f.enhanced is not None
        return psnr(f.enhanced, gt), float(ssim(f.enhanced.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None].float()))

    rows = list(threaded_map(one, indices, workers=workers))
    return {"psnr": sum(r[0] for r in rows) / len(rows), "ssim": sum(r[1] for r in rows) / len(rows)}


def orbit_flicker(*, trained: TrainedScene, scene: Scene, frames: int, work: Path) -> dict[str, dict[str, float]]:
    """Flicker (``plain``) and warped flicker (``warped``) of the decoded and the enhanced stream on the default orbit
    of the training views at their size."""
    train = scene.split_indices["train"]
    cams = CameraPath(
        c2ws=orbit_path(train_c2ws=scene.camera_to_worlds[train].double(), num_frames=frames).float(),
        Ks=scene.Ks[train[0]][None].expand(frames, 3, 3).float(),
        width=int(scene.widths[train[0]]),
        height=int(scene.heights[train[0]]),
    )
    result = export_flythrough(
        scene=trained,
        cameras=cams,
        config=ExportConfig(
            output=work, mode="enhanced", measure_flicker=True, write_stats=False, sticky_references=True
        ),
    )
    return {"plain": dict(result.flicker), "warped": dict(result.warped_flicker)}


def run_scene(args: Args, name: str, *, device: torch.device) -> dict:
    started = time.perf_counter()
    on_cpu = device.type == "cpu"
    workers = min(2, torch.get_num_threads()) if on_cpu else 1
    dtype = torch.float32 if on_cpu else torch.float16
    codec = load_codec("taef2", device=device, dtype=torch.float32)
    scene = load_scene(
        scene_folder(name, args.root), downscale=1 if name == "demo" else args.downscale, size_multiple=codec.downscale
    )
    train = scene.split_indices["train"].tolist()
    held_out = eval_indices(scene, args.max_eval_views)
    run = args.output_dir / name
    CONSOLE.print(
        f"[bold]{name}[/]: {len(train)} training views, {len(held_out)} scored, "
        f"{int(scene.widths[train[0]])}x{int(scene.heights[train[0]])}"
    )

    trainer = LatentSplatTrainerConfig(
        steps=args.steps or (400 if on_cpu else 7000), densify=not on_cpu, seed=args.seed
    )
    if on_cpu:
        trainer.rgb_downscale = 2  # as splatent-demo on the CPU
    else:
        trainer.strategy.refine_stop_iter = trainer.steps // 2
    latents = encode_views(
        scene=scene, indices=train, codec=codec, device=device, cache=LatentCache(codec_name=codec.name)
    )
    t0 = time.perf_counter()
    result = train_latent_splats(scene=scene, codec=codec, config=trainer, device=device, train_latents=latents)
    train_seconds = time.perf_counter() - t0
    trained = trained_scene_from_splats(
        scene=scene,
        params=result.params,
        codec=codec,
        sh_degree=result.sh_degree,
        train_indices=train,
        device=device,
        name=name,
        train_latents=latents,
        output_dir=run,
        extra={"steps": trainer.steps},
        rgb_background=result.rgb_background,
        latent_background=result.latent_background,
    )
    base = mean_metrics(
        [ev.metrics for ev in evaluate_views(scene=scene, indices=held_out, trained=trained, workers=workers)]
    )
    row: dict = {
        "scene": name,
        "views": len(held_out),
        "train_views": len(train),
        "steps": trainer.steps,
        "size": [int(scene.widths[train[0]]), int(scene.heights[train[0]])],
        "gaussians": int(result.params["means"].shape[0]),
        "train_seconds": round(train_seconds, 1),
        "decoded": {"psnr": base["decoded_psnr"], "ssim": base["decoded_ssim"]},
        "rgb": {"psnr": base["rgb_psnr"], "ssim": base["rgb_ssim"]},
        "roundtrip": {"psnr": base["codec_psnr"]},
        "flicker": {},
        "flicker_warped": {},
        "notes": {},
    }
    orbit = Path(tempfile.mkdtemp(prefix="splatent-orbit-"))

    generic, row["notes"]["generic latent"] = generic_refiner(args.generic, name, device=device, dtype=dtype)
    if args.generic_guided is None:
        residual = args.adaptation.residual
        guided, row["notes"]["generic guided"] = (
            guided_from(generic, residual=residual),
            "generic latent made guided (identity on the guide" + (": the RGB splats, residual)" if residual else ")"),
        )
    else:
        guided, row["notes"]["generic guided"] = generic_refiner(args.generic_guided, name, device=device, dtype=dtype)
    variants: dict[str, Refiner] = {"generic latent": generic, "generic guided": guided}

    start = args.generic_guided or args.generic  # the adaptation starts from the generic refiner of this scene
    if start != "embedded" and (Path(start) / name / "refiner").is_dir():
        start = str(Path(start) / name / "refiner")
    starts = {"adapted guided": start, **({"adapted fresh": "fresh"} if args.adapt_fresh else {})}
    row["adapt_seconds"] = {}
    for label, init in starts.items():
        settings = replace(args.adaptation, refiner=init, guided=True, seed=args.seed)
        adapted = adapt_to_scene(
            scene=scene,
            train_views=train,
            codec=codec,
            run=run / label.replace(" ", "_"),
            config=settings,
            device=device,
            trained=trained,
        )
        row["adapt_seconds"][label] = adapted.seconds
        v = adapted.validation
        each = "" if adapted.step_seconds is None else f" ({adapted.step_seconds:.3f} s each)"
        each += f", validation {adapted.seconds['validation']:.0f} s" if adapted.seconds.get("validation") else ""
        row["notes"][label] = f"{adapted.samples} training-view samples, {adapted.steps} steps{each}" + (
            ""
            if v is None
            else f", validation on {v['unit']} ({v['views']} views): "
            + describe_candidates(v)
            + f" (α=0 start, 1 fine-tuned): kept {describe_candidate(v)} ({v['kept']})"
        )
        variants[label] = load_refiner(adapted.refiner, device=device, dtype=dtype, codec=codec)

    for label, refiner in variants.items():
        trained.refiner = refiner
        row[label] = score_enhanced(scene=scene, trained=trained, indices=held_out, workers=workers)
        if args.orbit_frames:
            flicker = orbit_flicker(
                trained=trained, scene=scene, frames=args.orbit_frames, work=orbit / label.replace(" ", "_")
            )
            for key, values in (("flicker", flicker["plain"]), ("flicker_warped", flicker["warped"])):
                row[key]["decoded"] = values["decoded"]
                row[key][label] = values["enhanced"]
        CONSOLE.print(f"  {label}: {row[label]['psnr']:.2f} dB / {row[label]['ssim']:.3f}")
    row["seconds"] = round(time.perf_counter() - started, 1)
    return row


def splatfacto_rows(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    return {
        r["scene"]: {"psnr": r["metrics"]["psnr"], "ssim": r["metrics"]["ssim"]}
        for r in json.loads(path.read_text())
        if r.get("method") == "splatfacto"
    }


def _cell(m: dict | None, *, note: str = "") -> str:
    if not m:
        return "—"
    s = f"{m['psnr']:.2f}" + (f" / {m['ssim']:.3f}" if "ssim" in m else "")
    return s + (f" ({note})" if note else "")


def goals(row: dict) -> list[str]:
    """Issue 17's per-scene goals, met or missed by how much."""
    out = []
    a, rgb, dec, ceil = row["adapted guided"], row["rgb"], row["decoded"], row["roundtrip"]["psnr"]
    need = max(rgb["psnr"], dec["psnr"] + 3.0) + (1.0 if ceil - rgb["psnr"] >= 3.0 else 0.0)
    out.append(
        f"adapted guided PSNR ≥ {need:.2f}: " + ("met" if a["psnr"] >= need else f"missed by {need - a['psnr']:.2f} dB")
    )
    out.append(
        f"adapted guided SSIM ≥ RGB {rgb['ssim']:.3f}: "
        + ("met" if a["ssim"] >= rgb["ssim"] else f"missed by {rgb['ssim'] - a['ssim']:.3f}")
    )
    g = row["generic guided"]["psnr"]
    out.append(
        "generic guided ≥ RGB − 0.5 dB: "
        + ("met" if g >= rgb["psnr"] - 0.5 else f"missed by {rgb['psnr'] - 0.5 - g:.2f} dB")
    )
    for key, name in (("flicker", "flicker"), ("flicker_warped", "warped flicker")):
        if row.get(key):
            f, d = row[key]["adapted guided"], row[key]["decoded"]
            out.append(f"adapted orbit {name} ≤ decoded: " + ("met" if f <= d else f"missed ({f:.4f} > {d:.4f})"))
    return out


def markdown(rows: list[dict], *, args: Args, device: torch.device, splatfacto: dict[str, dict]) -> str:
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    cmd = "python benchmarks/enhancement.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    cols = ["decoded", "generic latent", "generic guided", "adapted guided", "adapted fresh", "rgb"]
    head = (
        "| scene | views | "
        + " | ".join(c.replace("rgb", "RGB splats") for c in cols)
        + " | splatfacto | round trip |\n|"
        + "---|" * (len(cols) + 4)
        + "\n"
    )
    lines = []
    for r in rows:
        cells = [
            _cell(r.get(c), note="SAW" if c.startswith("generic") and "SAW" in r["notes"].get(c, "") else "")
            for c in cols
        ]
        lines.append(
            f"| {r['scene']} {r['size'][0]}×{r['size'][1]} | {r['views']} | "
            + " | ".join(cells)
            + f" | {_cell(splatfacto.get(r['scene']))} | {r['roundtrip']['psnr']:.2f} |"
        )
    flick = [
        "| scene | " + " | ".join(["decoded", *[c for c in cols[1:5]]]) + " | adaptation s (units + fine-tune) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["flicker"]:
            secs = ", ".join(f"{k}: {v['units']:.0f} + {v['fine_tune']:.0f}" for k, v in r["adapt_seconds"].items())
            flick.append(
                f"| {r['scene']} | "
                + " | ".join(
                    f"{r['flicker'].get(c, float('nan')):.4f} / {r.get('flicker_warped', {}).get(c, float('nan')):.4f}"
                    for c in ["decoded", *cols[1:5]]
                )
                + f" | {secs} |"
            )
    notes = "\n".join(
        f"- {r['scene']}: {r['gaussians']:,} Gaussians, {r['steps']} steps ({r['train_seconds']:.0f} s); "
        + "; ".join(f"{k}: {v}" for k, v in r["notes"].items())
        + ". Goals: "
        + "; ".join(goals(r))
        for r in rows
    )
    return (
        f"Enhancement protocol (issue 17), {name}, torch {torch.__version__}, {datetime.date.today().isoformat()}.\n"
        f"Command: `{cmd}`\n\nHeld-out PSNR / SSIM (mean over the scored views; SAW = that generic refiner was "
        f"trained on this scene's views, so the cell is not an unseen-scene number):\n\n{head}"
        + "\n".join(lines)
        + (
            f"\n\nFlicker of a {args.orbit_frames}-frame orbit, plain / warped (mean |frame_t − frame_t−1|; the same "
            "after warping frame_t−1 into frame_t along the Gaussians' depth, over the pixels both see: the camera's "
            "motion taken out; lower is steadier):\n\n" + "\n".join(flick)
            if len(flick) > 2
            else ""
        )
        + "\n\n"
        + notes
        + "\n"
    )


def main(args: Args) -> list[dict]:
    device = resolve_device(args.device)
    if args.merge:
        missing_json = [str(f) for f in args.merge if not Path(f).is_file()]
        if missing_json:
            raise SplatentError(f"--merge: {missing_json} not found (did those runs finish?).")
        rows = [row for f in args.merge for row in json.loads(Path(f).read_text())]
        table = markdown(rows, args=args, device=device, splatfacto=splatfacto_rows(args.splatfacto))
        write_text_atomic(args.output, table)
        write_json_atomic(args.output.with_suffix(".json"), rows)
        return rows
    missing = [n for n in args.scenes if not scene_folder(n, args.root).exists()]
    if missing:
        raise SplatentError(
            f"No scene folder for {missing} under {args.root} (pass --root, or demo for the demo scene)."
        )
    splatfacto = splatfacto_rows(args.splatfacto)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for name in args.scenes:
        rows.append(run_scene(args, name, device=device))
        table = markdown(rows, args=args, device=device, splatfacto=splatfacto)
        write_text_atomic(args.output, table)
        write_json_atomic(args.output.with_suffix(".json"), rows)
    CONSOLE.print(args.output.read_text())
    return rows


if __name__ == "__main__":
    exit_on_error(main, tyro.cli(Args))
