"""Held-out evaluation of trained splats: decoded latent render vs RGB splats vs the codec's own round trip."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.data.scene import Scene
from splatent_viewer.frame import render_frame
from splatent_viewer.trained import TrainedScene
from splatent_viewer.training.losses import psnr, ssim


@dataclass
class ViewEvaluation:
    """Metrics and images (HxWx3 in [0, 1]) of one evaluated view."""

    metrics: dict[str, float]
    """``view`` index, ``decoded_psnr/ssim``, ``rgb_psnr/ssim``, ``codec_psnr`` (round trip of the ground truth)."""
    ground_truth: Float[Tensor, "H W 3"]
    """The view's image."""
    roundtrip: Float[Tensor, "H W 3"]
    """decode(encode(ground truth)): the ceiling of the decoded latent render."""
    decoded: Float[Tensor, "H W 3"]
    """The decoded latent render."""
    rgb: Float[Tensor, "H W 3"]
    """The RGB splats render."""
    enhanced: Float[Tensor, "H W 3"] | None = None
    """The refined render (when the trained scene has a refiner)."""


def _chw(x: Tensor) -> Tensor:
    return x.permute(2, 0, 1)[None].float()


@torch.no_grad()
def evaluate_views(
    *,
    scene: Scene,
    indices: list[int],
    trained: TrainedScene,
) -> Iterator[ViewEvaluation]:
    """Renders and scores each view of ``indices`` in turn (a generator, so images are not all kept).

    With a refiner, the enhanced render is scored too (``enhanced_psnr/ssim``), using the refiner's k
    nearest training views of the bank."""
    codec, device = trained.codec, trained.device
    outputs = ("decoded", "rgb", "enhanced") if trained.refiner is not None else ("decoded", "rgb")
    for i in indices:
        gt = scene.load_image(i).to(device)
        frame = render_frame(scene=trained, c2w=scene.camera_to_worlds[i], K=scene.Ks[i], width=int(scene.widths[i]),
                             height=int(scene.heights[i]), outputs=outputs)
        roundtrip = codec.decode(codec.encode(_chw(gt)))[0].float().clamp(0, 1).permute(1, 2, 0)
        metrics = {
            "view": i,
            "decoded_psnr": psnr(frame.decoded, gt), "decoded_ssim": float(ssim(_chw(frame.decoded), _chw(gt))),
            "rgb_psnr": psnr(frame.rgb, gt), "rgb_ssim": float(ssim(_chw(frame.rgb), _chw(gt))),
            "codec_psnr": psnr(roundtrip, gt),
        }  # fmt: skip
        if frame.enhanced is not None:
            metrics["enhanced_psnr"] = psnr(frame.enhanced, gt)
            metrics["enhanced_ssim"] = float(ssim(_chw(frame.enhanced), _chw(gt)))
        yield ViewEvaluation(metrics=metrics, ground_truth=gt, roundtrip=roundtrip, decoded=frame.decoded, rgb=frame.rgb,
                             enhanced=frame.enhanced)


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over views (``view`` excluded); empty for no views."""
    return {k: float(sum(r[k] for r in rows) / len(rows)) for k in (rows[0] if rows else {}) if k != "view"}
