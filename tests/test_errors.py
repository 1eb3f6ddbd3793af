"""exit_on_error: one line and an exit code for bad input and Ctrl+C."""

from __future__ import annotations

import signal

import pytest

from splatent_viewer.errors import SplatentError, exit_on_error


def _raise(exc: BaseException) -> None:
    raise exc


def test_error_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        exit_on_error(_raise, SplatentError("scene /x/transforms.json is missing: pass a scene folder"))
    assert e.value.code == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "error:" in out and "/x/transforms.json" in out


def test_interrupt_exits_130_and_ignores_a_second_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as e:
            exit_on_error(_raise, KeyboardInterrupt(), interrupted="checkpoint kept")
        assert e.value.code == 130
        assert capsys.readouterr().out.strip() == "interrupted; checkpoint kept"
        # a second Ctrl+C while the process exits must not raise KeyboardInterrupt (exit code -2 and a traceback)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
