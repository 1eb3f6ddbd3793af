"""One exception type for bad user input, so CLIs can print one clear line instead of a trace."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

KEPT_ON_INTERRUPT = "outputs finished before it are kept, none is left half-written"
"""What the Ctrl+C line says was kept when the CLI does not say more (see :func:`exit_on_error`)."""


class SplatentError(RuntimeError):
    """Bad input (scene folder, weights, checkpoint, option). The message names the file and the fix."""


def _print_line(label: str, text: str) -> None:
    """``label`` (rich markup) then ``text`` (printed as is) on one line, however long or narrow the terminal."""
    from rich.console import Console
    from rich.markup import escape

    Console().print(f"{label} {escape(text)}", soft_wrap=True, highlight=False)


def _caused_by_interrupt(error: BaseException) -> bool:
    """Whether a ``KeyboardInterrupt`` is among ``error``'s causes: Ctrl+C during a C extension's import (open3d,
    pybind11 modules) surfaces as ``ImportError: initialization failed`` caused by it, which a loader then reports
    as a broken input."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _forget_unhandled_interrupt() -> None:
    """Clears CPython 3.11's record of a ``KeyboardInterrupt`` that escaped code run by ``exec(str)`` (a dataclass
    being created, a namedtuple): set once, it makes the interpreter kill itself with SIGINT at exit (status -2)
    although the interrupt was handled here, so the documented exit code 130 would depend on where Ctrl+C landed.
    Newer Pythons keep the flag elsewhere (no such symbol): nothing to do there."""
    import ctypes

    try:
        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (ValueError, AttributeError):  # not exported by this interpreter
        pass


def exit_on_error(main: Callable[[T], R], arg: T, *, interrupted: str | Callable[[T], str] | None = None) -> R:
    """Runs a CLI's ``main(arg)``.

    - A :class:`SplatentError` becomes one red ``error: <message>`` line and exit code 1.
    - Ctrl+C (``KeyboardInterrupt``) becomes one ``interrupted; <what was kept>`` line and exit code 130
      (128 + SIGINT), with no traceback. What was kept is ``interrupted`` (a string, or a function of ``arg``);
      without it ``arg.interrupted_message()`` when ``arg`` has that method (a config that knows what it leaves
      behind, e.g. a resumable checkpoint), else :data:`KEPT_ON_INTERRUPT`. Further Ctrl+C are ignored from then
      on (a second press, or one the terminal delivers late, must not turn the clean exit into a traceback). A
      :class:`SplatentError` caused by a Ctrl+C (it landed in an import a loader wraps) counts as the Ctrl+C.
    """
    try:
        return main(arg)
    except (SplatentError, KeyboardInterrupt) as e:
        if isinstance(e, SplatentError) and not _caused_by_interrupt(e):
            _print_line("[bold red]error:[/]", str(e))
            raise SystemExit(1) from None
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        _forget_unhandled_interrupt()
        if interrupted is None:
            method = getattr(arg, "interrupted_message", None)
            kept = str(method()) if callable(method) else KEPT_ON_INTERRUPT
        else:
            kept = interrupted(arg) if callable(interrupted) else interrupted
        _print_line("[bold yellow]interrupted;[/]", kept)
        raise SystemExit(130) from None
