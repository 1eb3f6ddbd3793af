"""Fit images to a size multiple (a latent codec's downscale, 8 for TAEF2 / SD-Turbo / TAESD).

A codec encodes an image only when its height and width are multiples of its downscale. An image of
another size is either

- ``"crop"``ped to its top-left part whose sides are the largest multiples: pixel coordinates do not
  move, so the intrinsics stay exactly as they are (a few rows/columns on the right and bottom are
  dropped), or
- ``"resize"``d to those sides (antialiased bilinear, pixel edges aligned): the whole image is kept
  and the intrinsics are scaled by the ratio of the sizes in x and y.

:func:`fit_image` is the one per-image function: the core scene loader
(:func:`splatent_viewer.data.scene.load_scene`) and the nerfstudio plugin's datamanager both call it,
so they see the same pixels and cameras.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float, Shaped
from torch import Tensor

from splatent_viewer.errors import SplatentError

FitMode = Literal["crop", "resize"]
FIT_MODES: tuple[FitMode, ...] = ("crop", "resize")


def check_fit_arguments(multiple: int, mode: FitMode | str) -> FitMode:
    """One clear :class:`SplatentError` for a bad ``size_multiple`` or ``fit``; returns ``mode`` as a :data:`FitMode`.

    The user-facing functions take ``fit`` as any string and check it here (their type says so, so that the
    error is this one, also where annotations are checked at run time)."""
    if isinstance(multiple, bool) or not isinstance(multiple, int) or multiple < 1:
        raise SplatentError(
            f"size_multiple must be a positive integer (the codec's downscale, e.g. 8), not {multiple!r}."
        )
    if mode == "crop" or mode == "resize":
        return mode
    raise SplatentError(f"fit must be 'crop' or 'resize', not {mode!r}.")


def fitted_size(width: int, height: int, multiple: int) -> tuple[int, int]:
    """The largest ``(width, height)`` not above the given ones whose sides are multiples of ``multiple``."""
    w, h = int(width) // multiple * multiple, int(height) // multiple * multiple
    if w == 0 or h == 0:
        raise SplatentError(
            f"An image of {int(width)}x{int(height)} pixels is smaller than the codec's {multiple}x{multiple} latent cell; "
            "use larger images (or a smaller downscale)."
        )
    return w, h


def fit_intrinsics(
    K: Float[Tensor, "*batch 3 3"], *, size: tuple[int, int], fitted: tuple[int, int], mode: FitMode
) -> Float[Tensor, "*batch 3 3"]:
    """Intrinsics of an image of ``size`` = (width, height) after fitting it to ``fitted``: unchanged for a
    crop (top-left corner kept), scaled by ``fitted / size`` per axis for a resize (pixel centres at i + 0.5)."""
    out = K.clone()
    if mode == "resize":
        out[..., 0, :] *= fitted[0] / size[0]
        out[..., 1, :] *= fitted[1] / size[1]
    return out


def fit_image(
    image: Shaped[Tensor, "H W C"],
    K: Float[Tensor, "3 3"],
    *,
    multiple: int,
    mode: FitMode | str = "crop",
    nearest: bool = False,
) -> tuple[Shaped[Tensor, "h w C"], Float[Tensor, "3 3"]]:
    """``image`` and its intrinsics ``K`` fitted to the largest sides that are multiples of ``multiple``.

    Works on any dtype and device (float images in [0, 1] or uint8, masks with ``nearest=True``) and keeps
    both; a resized uint8 image is rounded back to uint8. An image already of such a size is returned as
    is (same tensor). ``mode="crop"`` keeps the top-left corner and ``K``; ``mode="resize"`` resamples the
    whole image (antialiased bilinear, or nearest for masks) and scales ``K``.
    """
    mode = check_fit_arguments(multiple, mode)
    height, width = int(image.shape[0]), int(image.shape[1])
    w, h = fitted_size(width, height, multiple)
    if (w, h) == (width, height):
        return image, K.clone()
    K_out = fit_intrinsics(K, size=(width, height), fitted=(w, h), mode=mode)
    if mode == "crop":
        return image[:h, :w].contiguous(), K_out
    x = image.permute(2, 0, 1)[None]
    x = x.float() if not x.is_floating_point() else x
    if nearest or image.dtype == torch.bool:
        y = F.interpolate(x, size=(h, w), mode="nearest-exact")
    else:
        y = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    y = y[0].permute(1, 2, 0)
    if image.dtype == torch.bool:
        y = y > 0.5
    elif image.dtype == torch.uint8:
        y = y.round().clamp(0, 255).to(torch.uint8)
    elif not image.is_floating_point():
        y = y.round().to(image.dtype)
    else:
        y = y.to(image.dtype)
    return y.contiguous(), K_out


def log_line(text: str) -> None:
    """Prints ``text`` as one line (never wrapped, no markup) on nerfstudio's console."""
    from nerfstudio.utils.rich_utils import CONSOLE

    CONSOLE.print(text, soft_wrap=True, markup=False, highlight=False)


def describe_fit(
    before: Sequence[tuple[int, int]],
    after: Sequence[tuple[int, int]],
    *,
    multiple: int,
    mode: FitMode,
    what: str = "views",
) -> str | None:
    """The one log line saying how many of the ``before`` sizes (width, height) were fitted to which ``after``
    sizes, or None when none changed."""
    changes = Counter((b, a) for b, a in zip(before, after) if tuple(b) != tuple(a))
    if not changes:
        return None
    how = "top-left crop, intrinsics unchanged" if mode == "crop" else "resize, intrinsics scaled"
    sizes = ", ".join(f"{b[0]}x{b[1]} → {a[0]}x{a[1]} ({n})" for (b, a), n in sorted(changes.items()))
    return f"{sum(changes.values())} of {len(before)} {what} fitted to multiples of {multiple} ({how}): {sizes}"


__all__ = [
    "FIT_MODES",
    "FitMode",
    "check_fit_arguments",
    "describe_fit",
    "fit_image",
    "fit_intrinsics",
    "fitted_size",
    "log_line",
]
