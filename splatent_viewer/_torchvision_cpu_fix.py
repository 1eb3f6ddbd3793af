"""Makes PyPI's (CUDA-built) torchvision importable next to a CPU-only torch build.

torchvision's compiled ``_C`` extension needs ``libtorch_cuda``; on a CPU torch it fails to
load and torchvision's Python code then dies at import time on
``RuntimeError: operator torchvision::nms does not exist`` (its ``register_fake`` decorators
need the schemas). Defining the two schemas before torchvision is imported is enough for the
import to succeed; torchvision's C++ operators stay unavailable (nothing here uses them).

The install script copies this file into the venv's site-packages as
``_splatent_torchvision_cpu_fix`` and a ``.pth`` file calls :func:`install` at interpreter
start. :func:`install` only registers a meta-path hook: torch is not imported until something
imports torchvision, so interpreter start-up stays fast.
"""

from __future__ import annotations

import importlib.abc
import sys

_LIBRARY = None  # keeps the schema registrations alive (a collected Library drops them)


def define_schemas() -> None:
    """Defines ``torchvision::nms`` and ``torchvision::qnms`` unless they already exist."""
    global _LIBRARY
    if _LIBRARY is not None:
        return
    import torch

    if torch.version.cuda is not None:
        return
    try:
        torch.ops.torchvision.nms  # noqa: B018 - present when torchvision's _C loaded
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY = lib


class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            define_schemas()
        return None  # let the normal finders import it


def install() -> None:
    """Registers the lazy hook (idempotent)."""
    if not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
