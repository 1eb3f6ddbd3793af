"""Viewer display modes: which :func:`~splatent_viewer.frame.render_frame` outputs each needs, and
how a :class:`~splatent_viewer.frame.Frame` becomes the image sent to the browser."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, UInt8
from torch import Tensor

from splatent_viewer.errors import SplatentError
from splatent_viewer.frame import Frame
from splatent_viewer.pca import LatentPCA

Mode = Literal["decoded", "enhanced", "split", "split-rgb", "rgb", "latent", "depth"]
MODES: tuple[Mode, ...] = get_args(Mode)
NEEDS_REFINER: frozenset[str] = frozenset({"enhanced", "split", "split-rgb"})
SPLIT_MODES: frozenset[str] = frozenset({"split", "split-rgb"})
"""Modes with a divider: decoded | enhanced (split) and RGB splats | enhanced (split-rgb)."""

_OUTPUTS: dict[str, tuple[str, ...]] = {
    "decoded": ("decoded",),
    "enhanced": ("enhanced",),
    "split": ("decoded", "enhanced"),
    "split-rgb": ("rgb", "enhanced"),
    "rgb": ("rgb",),
    "latent": ("latent",),
    "depth": ("depth",),
}


def available_modes(*, has_refiner: bool) -> tuple[Mode, ...]:
    """The modes a scene can show (enhanced and the split modes need a refiner)."""
    return tuple(m for m in MODES if has_refiner or m not in NEEDS_REFINER)


def outputs_for(*, mode: Mode | str, preview: bool) -> tuple[str, ...]:
    """``render_frame`` outputs for ``mode``; a preview (camera moving) skips the refiner and shows decoded. Another
    mode name is a :class:`SplatentError` listing the modes."""
    if mode not in _OUTPUTS:
        raise SplatentError(f"Unknown viewer mode {mode!r}; choose from {MODES}.")
    if preview and mode in NEEDS_REFINER:
        return ("decoded",)
    return _OUTPUTS[mode]


@lru_cache(maxsize=1)
def _turbo_lut() -> Tensor:
    from matplotlib import colormaps  # matplotlib comes with nerfstudio

    return torch.from_numpy(colormaps["turbo"](np.linspace(0.0, 1.0, 256))[:, :3]).float()


def colorize_depth(depth: Float[Tensor, "H W"]) -> Float[Tensor, "H W 3"]:
    """Turbo colour map of depth (near = blue, far = red), normalised over the 1st–99th percentile of the
    pixels that hit something; empty pixels (depth 0) are black."""
    d = depth.detach().float()
    valid = d > 0
    out = torch.zeros(*d.shape, 3, device=d.device)
    if not valid.any():
        return out
    vals = d[valid]
    if vals.numel() > 100_000:
        vals = vals[torch.linspace(0, vals.numel() - 1, 100_000, device=d.device).long()]
    lo, hi = torch.quantile(vals, 0.01), torch.quantile(vals, 0.99)
    t = ((d - lo) / (hi - lo).clamp_min(1e-8)).clamp(0, 1)
    lut = _turbo_lut().to(d.device)
    out[valid] = lut[(t[valid] * 255).round().long()]
    return out


def compose_split(
    *, left: Float[Tensor, "H W 3"], right: Float[Tensor, "H W 3"], position: float, line_px: int = 2
) -> Float[Tensor, "H W 3"]:
    """``left`` left of the divider at ``position`` (0 = left edge, 1 = right edge), ``right`` after it,
    with a white divider line."""
    width = left.shape[1]
    x = int(round(min(max(position, 0.0), 1.0) * width))
    out = right.clone()
    out[:, :x] = left[:, :x]
    lo, hi = max(0, x - line_px // 2), min(width, x + (line_px + 1) // 2)
    out[:, lo:hi] = 1.0
    return out


def frame_image(
    *,
    frame: Frame,
    mode: Mode,
    preview: bool,
    image_size: tuple[int, int],
    split_position: float = 0.5,
    pca: LatentPCA | None = None,
) -> UInt8[Tensor, "H W 3"]:
    """The ``uint8`` HxWx3 image (on the render device) to show for ``frame`` rendered with
    :func:`outputs_for` ``(mode, preview)``.

    ``image_size`` is the render's ``(height, width)`` (the latent mode is upscaled to it).
    """
    outputs = outputs_for(mode=mode, preview=preview)
    if outputs == ("decoded",):
        img = frame.decoded
    elif mode == "enhanced":
        img = frame.enhanced
    elif mode == "split":
        assert frame.decoded is not None and frame.enhanced is not None
        img = compose_split(left=frame.decoded, right=frame.enhanced, position=split_position)
    elif mode == "split-rgb":
        assert frame.rgb is not None and frame.enhanced is not None
        img = compose_split(left=frame.rgb, right=frame.enhanced, position=split_position)
    elif mode == "rgb":
        img = frame.rgb
    elif mode == "latent":
        if pca is None or frame.latent is None:
            raise SplatentError("The latent mode needs the rendered latent and a fitted PCA basis.")
        small = pca.project(frame.latent)
        # nearest upscale to the image size, so latent pixels stay visible as blocks
        img = F.interpolate(small.permute(2, 0, 1)[None], size=image_size, mode="nearest")[0].permute(1, 2, 0)
    else:  # depth
        assert frame.depth is not None
        img = colorize_depth(frame.depth)
    if img is None:
        raise SplatentError(f"render_frame returned no image for mode {mode!r}.")
    return img.detach().clamp(0, 1).mul(255).add(0.5).to(torch.uint8)
