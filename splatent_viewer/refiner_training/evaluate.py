"""Evaluating a refiner on a refiner dataset (``splatent-refiner eval``): per scene, training fraction
and k, PSNR/SSIM of the decoded render and of the enhanced render against the ground-truth IMAGE
(pixel space), next to the RGB-splat baseline.

decoded = codec.decode(render); enhanced = codec.decode(refiner(render, refs[:k])); the codec's
round trip decode(target) is the ceiling both approach. RGB splats = the same Gaussians' RGB (SH)
render, scored when the dataset was built (``rgb_psnr``/``rgb_ssim`` in the index; older
datasets lack them and their tables show "–"). Rows are split by the unit's training fraction:
a scene's fraction-1.0 unit is its standard held-out split, the smaller ones are sparser renders.
Whole frames, one at a time.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import torch
from rich.console import Console

from splatent_viewer.atomic import write_text_atomic
from splatent_viewer.codecs import LatentCodec, load_codec
from splatent_viewer.errors import SplatentError
from splatent_viewer.progress import track
from splatent_viewer.refine.checkpoint import load_refiner
from splatent_viewer.refine.refiner import Refiner
from splatent_viewer.refiner_training.dataset import RefinerDataset, refiner_guide, refiner_rgb
from splatent_viewer.training.losses import psnr, ssim

CONSOLE = Console()
ALL = "all"
"""Scene name of the rows averaging every evaluated view (one per training fraction and k)."""
METRICS = ("decoded_psnr", "enhanced_psnr", "decoded_ssim", "enhanced_ssim", "roundtrip_psnr")
"""Metrics every row has."""
BASELINE_METRICS = ("rgb_psnr", "rgb_ssim")
"""RGB-splat metrics: None in a row when a view of it lacks them (datasets built before they were recorded)."""


@dataclass
class RefinerEvalConfig:
    """Score a refiner on a refiner dataset's samples (decoded vs enhanced, per scene and k)."""

    dataset: Path = Path("outputs/refiner_dataset")
    """Dataset folder written by `splatent-refiner make-dataset`."""
    refiner: Path = Path("outputs/refiner_train/refiner")
    """Refiner folder (refiner.json + refiner.safetensors), e.g. TRAIN_OUTPUT/refiner."""
    output: Path = Path("refiner_eval.md")
    """Markdown table to write; the same numbers (and per-view ones) go to the .json beside it."""
    scenes: Optional[tuple[str, ...]] = None
    """Evaluate these scenes only (default: all)."""
    ks: tuple[int, ...] = (0, 3)
    """Numbers of references to evaluate with (each at most the refiner's num_references)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Compute device; auto = cuda when available."""
    codec_path: Optional[Path] = None
    """Weights folder of the dataset's codec (default: its usual location)."""


def _fraction_order(fraction: float | None) -> tuple[bool, float]:
    return (fraction is None, -(fraction or 0.0))  # 1.0 (standard split) first, then sparser, then runs


def _mean_row(sel: Sequence[dict]) -> dict:
    row: dict[str, float | None] = {m: sum(v[m] for v in sel) / len(sel) for m in METRICS}
    for m in BASELINE_METRICS:
        values = [x for x in (v.get(m) for v in sel) if x is not None]
        row[m] = sum(values) / len(values) if len(values) == len(sel) else None  # None when a view lacks it
    return row


@torch.no_grad()
def evaluate_refiner(
    *, dataset: RefinerDataset, refiner: Refiner, codec: LatentCodec, ks: Sequence[int], progress: bool = True
) -> tuple[list[dict], list[dict]]:
    """``(rows, views)``: mean metrics per (scene, training fraction, k) plus ``all`` rows per (fraction, k),
    and the per-view metrics. ``fraction`` is the unit's training fraction (None for trained runs)."""
    too_many = [k for k in ks if not 0 <= k <= refiner.config.num_references]
    if too_many:
        raise SplatentError(
            f"k {too_many} outside 0..{refiner.config.num_references}, the references this refiner was trained with."
        )
    dev, dtype = refiner.device, refiner.dtype
    fraction_of = {u["key"]: u.get("fraction") for u in dataset.index["units"]}
    views = []
    for i in track(range(len(dataset)), description="evaluating refiner", console=CONSOLE, disable=not progress):
        item, meta = dataset[i], dataset.samples[i]
        gt = item["image"][None].to(dev)
        render, target, refs = item["render"][None].to(dev), item["target"][None].to(dev), item["refs"][None].to(dev)
        decode_raw = lambda z: codec.decode(z.to(codec.dtype)).float()  # noqa: E731
        decode = lambda z: decode_raw(z).clamp(0, 1)  # noqa: E731
        decoded, roundtrip = decode(render), decode(target)
        base = {
            "scene": item["scene"],
            "unit": meta["unit"],
            "fraction": fraction_of.get(meta["unit"]),
            "view": item["view"],
            "decoded_psnr": psnr(decoded, gt),
            "decoded_ssim": float(ssim(decoded, gt)),
            "roundtrip_psnr": psnr(roundtrip, gt),
            "rgb_psnr": meta.get("rgb_psnr"),
            "rgb_ssim": meta.get("rgb_ssim"),
        }
        guide = refiner_guide(refiner, item)
        guide = None if guide is None else guide.to(dev, dtype)
        rgb = refiner_rgb(refiner, item)
        rgb = None if rgb is None else rgb.to(dev)
        for k in ks:
            used = min(k, int(item["num_refs"]))
            refined = refiner(target=render.to(dtype), references=refs[:, :used].to(dtype), guide=guide)
            enhanced = refiner.image(refined=refined, decode=decode_raw, guide=guide, rgb=rgb).clamp(0, 1)
            views.append(
                {
                    **base,
                    "k": k,
                    "num_refs": used,
                    "enhanced_psnr": psnr(enhanced, gt),
                    "enhanced_ssim": float(ssim(enhanced, gt)),
                }
            )
    rows = []
    for scene in [*dataset.scene_names(), ALL]:
        in_scene = [v for v in views if scene == ALL or v["scene"] == scene]
        for fraction in sorted({v["fraction"] for v in in_scene}, key=_fraction_order):
            for k in ks:
                sel = [v for v in in_scene if v["k"] == k and v["fraction"] == fraction]
                rows.append({"scene": scene, "fraction": fraction, "k": k, "views": len(sel), **_mean_row(sel)})
    return rows, views


def _num(value: float | None, digits: int, *, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown_table(rows: Sequence[dict]) -> str:
    """The rows of :func:`evaluate_refiner` as a markdown table ("–" where a dataset lacks the RGB-splat metrics)."""
    lines = [
        "| scene | train fraction | views | k | decoded PSNR | enhanced PSNR | Δ PSNR | RGB splats PSNR "
        "| decoded SSIM | enhanced SSIM | RGB splats SSIM | codec round trip PSNR |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fraction = r.get("fraction")
        lines.append(
            f"| {r['scene']} | {'–' if fraction is None else f'{fraction:g}'} | {r['views']} | {r['k']} | "
            f"{_num(r['decoded_psnr'], 2)} | {_num(r['enhanced_psnr'], 2)} | "
            f"{_num(r['enhanced_psnr'] - r['decoded_psnr'], 2, signed=True)} | {_num(r.get('rgb_psnr'), 2)} | "
            f"{_num(r['decoded_ssim'], 4)} | {_num(r['enhanced_ssim'], 4)} | {_num(r.get('rgb_ssim'), 4)} | "
            f"{_num(r['roundtrip_psnr'], 2)} |"
        )
    return "\n".join(lines) + "\n"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)


def run_eval(config: RefinerEvalConfig, *, progress: bool = True) -> list[dict]:
    """Loads dataset, codec and refiner, evaluates, writes ``config.output`` (+ .json); returns the rows."""
    device = torch.device(
        "cuda"
        if config.device == "auto" and torch.cuda.is_available()
        else ("cpu" if config.device == "auto" else config.device)
    )
    dataset = RefinerDataset(config.dataset, scenes=config.scenes)
    codec = load_codec(dataset.codec, path=config.codec_path, device=device, dtype=torch.float32)
    refiner = load_refiner(config.refiner, device=device, dtype=torch.float32, codec=codec)
    rows, views = evaluate_refiner(dataset=dataset, refiner=refiner, codec=codec, ks=config.ks, progress=progress)
    header = (
        f"Refiner `{config.refiner}` on `{config.dataset}` ({dataset.codec}), {device}, "
        f"{datetime.date.today().isoformat()}. PSNR/SSIM against the ground-truth images.\n\n"
    )
    _write_atomic(config.output, header + markdown_table(rows))
    _write_atomic(
        config.output.with_suffix(".json"),
        json.dumps(
            {
                "dataset": str(config.dataset),
                "refiner": str(config.refiner),
                "device": str(device),
                "rows": rows,
                "views": views,
            },
            indent=1,
        ),
    )
    CONSOLE.print(markdown_table([r for r in rows if r["scene"] == ALL]))
    CONSOLE.print(f"wrote {config.output} and {config.output.with_suffix('.json')}")
    return rows
