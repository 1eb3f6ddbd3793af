"""Rendering one camera's frame: rasterize latents → decode → refine with the nearest training views.

This is the single render function that the demo, the viewer and the exporter call.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from splatent_viewer.cameras import opengl_c2w_to_viewmat, scale_intrinsics
from splatent_viewer.errors import SplatentError
from splatent_viewer.splats import render_splats
from splatent_viewer.trained import NO_REFINER_MESSAGE, TrainedScene

OUTPUTS = ("decoded", "enhanced", "rgb", "depth", "alpha", "latent", "guide")


@dataclass
class Frame:
    """Outputs for one camera (images HxWx3 in [0, 1], latents Cxhxw with h = H / downscale)."""

    decoded: Float[Tensor, "H W 3"] | None = None
    """The latent render decoded by the codec."""
    enhanced: Float[Tensor, "H W 3"] | None = None
    """The refined latent render, decoded."""
    rgb: Float[Tensor, "H W 3"] | None = None
    """The RGB splats render."""
    depth: Float[Tensor, "H W"] | None = None
    """Expected depth (image resolution)."""
    alpha: Float[Tensor, "H W"] | None = None
    """Accumulated opacity of the Gaussians (image resolution)."""
    latent: Float[Tensor, "C h w"] | None = None
    """The rendered latent."""
    latent_enhanced: Float[Tensor, "C h w"] | None = None
    """The refined latent."""
    guide: Float[Tensor, "C h w"] | None = None
    """The RGB splats' render encoded by the codec: an RGB-guided refiner's base (made for ``enhanced`` with a guided
    refiner, or when asked for)."""
    references: list[int] = field(default_factory=list)
    """Reference indices (into the scene's reference bank) used for enhancement, nearest first."""
    timings_ms: dict[str, float] = field(default_factory=dict)
    """Milliseconds per stage (rgb, guide, raster, decode, refine, decode_enhanced) when ``time_stages`` was set
    (device time between CUDA events on the GPU)."""


class _StageTimer:
    """Milliseconds per stage. On CUDA from events recorded between the stages (read once, after the last
    stage: one wait per frame instead of a synchronisation around every stage); on the CPU wall time."""

    def __init__(self, *, enabled: bool, device: torch.device) -> None:
        self.enabled, self.cuda = enabled, device.type == "cuda"
        self._spans: list[tuple[str, object, object]] = []
        self._t: object = None

    def _now(self) -> object:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def start(self) -> None:
        if self.enabled:
            self._t = self._now()

    def stop(self, name: str) -> None:
        if self.enabled:
            self._spans.append((name, self._t, self._now()))

    def result(self) -> dict[str, float]:
        times: dict[str, float] = {}
        if self.cuda and self._spans:
            self._spans[-1][2].synchronize()  # type: ignore[attr-defined]
        for name, a, b in self._spans:
            ms = a.elapsed_time(b) if self.cuda else (b - a) * 1e3  # type: ignore[attr-defined,operator]
            times[name] = times.get(name, 0.0) + ms
        return times


def resize_latent(latent: Float[Tensor, "C h0 w0"], *, height: int, width: int) -> Float[Tensor, "C h w"]:
    """A reference latent at the target's latent size (bilinear, antialiased when shrinking); as is when it fits."""
    if latent.shape[-2:] == (height, width):
        return latent
    return F.interpolate(
        latent[None].float(),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
        antialias=latent.shape[-2] > height or latent.shape[-1] > width,
    )[0]


def reference_latents(
    *, scene: TrainedScene, indices: Sequence[int], height: int, width: int
) -> Float[Tensor, "K C h w"]:
    """The bank's latents of ``indices`` resized (:func:`resize_latent`) to ``height``x``width``."""
    bank = scene.references
    out = [resize_latent(bank.latent(int(i)), height=height, width=width) for i in indices]
    if not out:
        return bank.latents.new_zeros(0, bank.latent_channels, height, width)
    return torch.stack(out)


@torch.no_grad()
def render_frame(
    *,
    scene: TrainedScene,
    c2w: Float[Tensor, "4 4"] | Float[Tensor, "3 4"],
    K: Float[Tensor, "3 3"],
    width: int,
    height: int,
    outputs: Collection[str] = ("decoded",),
    num_references: int | None = None,
    references: Sequence[int] | None = None,
    time_stages: bool = False,
) -> Frame:
    """Renders what ``outputs`` asks for one camera (``c2w`` OpenGL camera-to-world, ``K`` at ``width``x``height``).

    ``width``/``height`` must be multiples of the codec's downscale for the latent outputs (decoded, enhanced,
    latent, guide). ``enhanced`` refines the rendered
    latent with the ``num_references`` nearest training views (default: the refiner's k), or with
    the explicit ``references`` (e.g. from hysteresis), nearest first; an RGB-guided refiner also gets the
    encoded RGB render (``guide``, rendered first).
    """
    unknown = set(outputs) - set(OUTPUTS)
    if unknown:
        raise SplatentError(f"Unknown frame outputs {sorted(unknown)}; choose from {OUTPUTS}.")
    ds, dev = scene.codec.downscale, scene.device
    if (width % ds or height % ds) and {"decoded", "enhanced", "latent", "guide"} & set(outputs):
        raise SplatentError(f"Frame size {width}x{height} is not a multiple of the codec's downscale {ds}; round it.")
    if "enhanced" in outputs and scene.refiner is None:
        raise SplatentError(NO_REFINER_MESSAGE)  # before any rendering
    timer = _StageTimer(enabled=time_stages, device=dev)
    query = c2w  # reference choice runs on the host: keep the caller's (usually CPU) pose for it
    c2w = c2w.to(dev, torch.float32)
    vm, Kb = opengl_c2w_to_viewmat(c2w)[None], K.to(dev, torch.float32)[None]
    frame = Frame()

    guided = "enhanced" in outputs and scene.refiner is not None and scene.refiner.config.guided
    # A residual guided refiner that still returns its guide (the generic start, before adaptation) shows the RGB
    # splats exactly: no guide to encode, no latent pass, nothing to refine or decode.
    as_rgb = guided and scene.refiner is not None and scene.refiner.config.residual and scene.refiner.returns_guide()
    if {"rgb", "depth", "alpha", "guide"} & set(outputs) or guided:
        timer.start()
        bg = None if scene.rgb_background is None else scene.rgb_background.to(dev, torch.float32)[None]
        out = render_splats(
            params=scene.params,
            viewmats=vm,
            Ks=Kb,
            width=width,
            height=height,
            content="rgb",
            sh_degree=scene.sh_degree,
            backgrounds=bg,
            depth="depth" in outputs,
        )
        frame.rgb = out.features[0].clamp(0, 1)
        if "depth" in outputs:
            assert out.depth is not None  # asked for
            frame.depth = out.depth[0, ..., 0]
        if "alpha" in outputs:
            frame.alpha = out.alpha[0, ..., 0]
        timer.stop("rgb")
        if "guide" in outputs or (guided and not as_rgb):
            timer.start()
            frame.guide = scene.encode_guide(frame.rgb)[0].float()
            timer.stop("guide")

    if {"decoded", "latent"} & set(outputs) or ("enhanced" in outputs and not as_rgb):
        timer.start()
        bg = None if scene.latent_background is None else scene.latent_background.to(dev, torch.float32)[None]
        out = render_splats(
            params=scene.params,
            viewmats=vm,
            Ks=scale_intrinsics(Kb, 1.0 / ds),
            width=width // ds,
            height=height // ds,
            content="latent",
            backgrounds=bg,
            depth=False,
        )
        frame.latent = out.features[0].permute(2, 0, 1)
        timer.stop("raster")
        if "decoded" in outputs:
            timer.start()
            frame.decoded = scene.decode(frame.latent[None])[0].float().clamp(0, 1).permute(1, 2, 0)
            timer.stop("decode")

    if "enhanced" in outputs:
        refiner = scene.refiner
        assert refiner is not None
        k = refiner.config.num_references if num_references is None else num_references
        frame.references = list(references) if references is not None else scene.references.nearest(c2w=query, k=k)
        if as_rgb:
            assert frame.rgb is not None  # rendered above for guided refiners
            frame.enhanced = frame.rgb.clone()
        else:
            assert frame.latent is not None  # rendered above for every other refiner
            timer.start()
            refs = reference_latents(scene=scene, indices=frame.references, height=height // ds, width=width // ds)
            refined = scene.refine(
                target=frame.latent[None],
                references=refs[None],
                guide=frame.guide[None] if guided and frame.guide is not None else None,
            )
            frame.latent_enhanced = refined[0].float()
            timer.stop("refine")
            timer.start()
            image = refiner.image(
                refined=refined,
                decode=scene.decode,
                guide=frame.guide[None] if guided and frame.guide is not None else None,
                rgb=frame.rgb.permute(2, 0, 1)[None] if guided and frame.rgb is not None else None,
            )
            frame.enhanced = image[0].clamp(0, 1).permute(1, 2, 0)
            timer.stop("decode_enhanced")
    if "rgb" not in outputs:
        frame.rgb = None  # rendered only for the guide
    frame.timings_ms = timer.result()
    return frame
