"""Locations of the files the project ships (``assets/`` at the repository top level)."""

from __future__ import annotations

import os
from pathlib import Path

#: Repository top level (the package is installed editable from the checkout).
REPO_ROOT = Path(__file__).resolve().parents[1]


def assets_dir() -> Path:
    """The shipped ``assets/`` folder (``SPLATENT_ASSETS`` overrides it)."""
    return Path(os.environ.get("SPLATENT_ASSETS", REPO_ROOT / "assets"))


def shared_data_dir() -> Path:
    """Development data beside the checkout (``../shared/data``); may be absent (``SPLATENT_SHARED_DATA`` overrides)."""
    return Path(os.environ.get("SPLATENT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
