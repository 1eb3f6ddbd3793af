"""Atomic text/JSON writes: the target is old or new, never half-written, and no temp file stays behind."""

from __future__ import annotations

import json
import os

import pytest

from splatent_viewer.atomic import write_json_atomic, write_text_atomic


def test_writes_replace_the_file_and_leave_no_temp_file(tmp_path) -> None:
    path = tmp_path / "metrics.json"
    assert write_json_atomic(path, {"a": 1}) == path
    write_json_atomic(path, {"a": [1, 2]}, indent=None)
    assert json.loads(path.read_text()) == {"a": [1, 2]} and path.read_text() == '{"a": [1, 2]}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path, monkeypatch) -> None:
    path = tmp_path / "table.md"
    write_text_atomic(path, "old\n")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "new\n")
    assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["table.md"]
    with pytest.raises(TypeError):  # not JSON-serialisable: fails before anything is written
        write_json_atomic(path, {"x": object()})
    assert path.read_text() == "old\n"
