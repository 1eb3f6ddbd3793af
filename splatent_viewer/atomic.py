"""Atomic text/JSON writes: a temp file beside the target, then a rename, so a crash never leaves half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> Path:
    """Writes ``text`` to ``path`` through ``.<name>.partial`` + :func:`os.replace`; returns ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> Path:
    """``json.dumps(data, indent=indent)`` written atomically (:func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=indent))
