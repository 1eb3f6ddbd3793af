"""The one place a ``--device`` option becomes a :class:`torch.device`."""

from __future__ import annotations

from typing import Literal

import torch

from splatent_viewer.errors import SplatentError

DeviceName = Literal["auto", "cpu", "cuda"]
"""What a ``--device`` option accepts (``cuda:N`` is accepted by :func:`resolve_device` too)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda when this torch has a CUDA device, else cpu; ``cuda`` (or ``cuda:N``) without CUDA is a
    :class:`SplatentError` with the fix; anything else is passed to :class:`torch.device`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SplatentError(f"--device {name} was asked but this torch has no CUDA device; use --device cpu or auto.")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise SplatentError(f"--device {name!r} is not a device; use auto, cpu or cuda.") from e
