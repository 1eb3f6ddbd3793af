"""Held-out evaluation of trained splats: decoded latent render vs RGB splats vs the codec's own round trip."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

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


T = TypeVar("T")
R = TypeVar("R")


def _chw(x: Tensor) -> Tensor:
    return x.permute(2, 0, 1)[None].float()


def threaded_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int = 1) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in order, without autograd (``torch.no_grad``).

    ``workers > 1`` computes up to that many items at once on threads, each with an equal share of
    torch's intra-op threads (at least one), and at most ``2 * workers`` results ahead of the
    consumer. For CPU rendering: one frame on one core each beats one frame on all cores, because
    the rasterizer's many small ops scale badly across cores (2-core CPU: 1.26 vs 1.76 s a demo frame).
    Torch's thread count is restored when the iteration ends (also on errors or an early stop).
    """

    def call(item: T) -> R:
        with torch.no_grad():  # grad mode is per thread
            return fn(item)

    if workers <= 1:
        yield from map(call, items)
        return
    threads = torch.get_num_threads()
    share = max(1, threads // workers)
    torch.set_num_threads(share)  # threads started from here inherit it
    pool = ThreadPoolExecutor(
        workers, thread_name_prefix="splatent-render", initializer=torch.set_num_threads, initargs=(share,)
    )
    try:
        it = iter(items)
        pending: deque[Future[R]] = deque(pool.submit(call, item) for _, item in zip(range(2 * workers), it))
        while pending:
            result = pending.popleft().result()
            for item in it:  # refill one
                pending.append(pool.submit(call, item))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


def evaluate_views(
    *,
    scene: Scene,
    indices: list[int],
    trained: TrainedScene,
    workers: int = 1,
) -> Iterator[ViewEvaluation]:
    """Renders and scores each view of ``indices`` (a generator, in order, so images are not all kept).

    With a refiner, the enhanced render is scored too (``enhanced_psnr/ssim``), using the refiner's k
    nearest training views of the bank. ``workers``: views evaluated at once (:func:`threaded_map`;
    the same metrics, faster on a multi-core CPU)."""
    return threaded_map(lambda i: _evaluate_view(scene=scene, index=i, trained=trained), indices, workers=workers)


def _evaluate_view(*, scene: Scene, index: int, trained: TrainedScene) -> ViewEvaluation:
    codec, device = trained.codec, trained.device
    outputs = ("decoded", "rgb", "enhanced") if trained.refiner is not None else ("decoded", "rgb")
    gt = scene.load_image(index).to(device)
    frame = render_frame(
        scene=trained,
        c2w=scene.camera_to_worlds[index],
        K=scene.Ks[index],
        width=int(scene.widths[index]),
        height=int(scene.heights[index]),
        outputs=outputs,
    )
    assert frame.decoded is not None and frame.rgb is not None
    roundtrip = codec.decode(codec.encode(_chw(gt)))[0].float().clamp(0, 1).permute(1, 2, 0)
    metrics = {
        "view": index,
        "decoded_psnr": psnr(frame.decoded, gt), "decoded_ssim": float(ssim(_chw(frame.decoded), _chw(gt))),
        "rgb_psnr": psnr(frame.rgb, gt), "rgb_ssim": float(ssim(_chw(frame.rgb), _chw(gt))),
        "codec_psnr": psnr(roundtrip, gt),
    }  # fmt: skip
    if frame.enhanced is not None:
        metrics["enhanced_psnr"] = psnr(frame.enhanced, gt)
        metrics["enhanced_ssim"] = float(ssim(_chw(frame.enhanced), _chw(gt)))
    return ViewEvaluation(
        metrics=metrics,
        ground_truth=gt,
        roundtrip=roundtrip,
        decoded=frame.decoded,
        rgb=frame.rgb,
        enhanced=frame.enhanced,
    )


def mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over views (``view`` excluded); empty for no views."""
    return {k: float(sum(r[k] for r in rows) / len(rows)) for k in (rows[0] if rows else {}) if k != "view"}
