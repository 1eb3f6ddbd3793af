"""Atomic writes: a temp file beside the target, then a rename, so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Calls ``write(tmp)`` on ``.<name>.partial`` beside ``path``, then :func:`os.replace`; returns ``path``. The temp
    file is removed on any failure (the target is untouched)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Writes ``text`` to ``path`` atomically (:func:`write_atomic`); returns ``path``."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> Path:
    """``json.dumps(data, indent=indent)`` written atomically (:func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=indent))
