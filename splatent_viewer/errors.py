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


def exit_on_error(main: Callable[[T], R], arg: T, *, interrupted: str | Callable[[T], str] | None = None) -> R:
    """Runs a CLI's ``main(arg)``.

    - A :class:`SplatentError` becomes one red ``error: <message>`` line and exit code 1.
    - Ctrl+C (``KeyboardInterrupt``) becomes one ``interrupted; <what was kept>`` line and exit code 130
      (128 + SIGINT), with no traceback. What was kept is ``interrupted`` (a string, or a function of ``arg``);
      without it ``arg.interrupted_message()`` when ``arg`` has that method (a config that knows what it leaves
      behind, e.g. a resumable checkpoint), else :data:`KEPT_ON_INTERRUPT`. Further Ctrl+C are ignored from then
      on (a second press, or one the terminal delivers late, must not turn the clean exit into a traceback).
    """
    try:
        return main(arg)
    except SplatentError as e:
        _print_line("[bold red]error:[/]", str(e))
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if interrupted is None:
            method = getattr(arg, "interrupted_message", None)
            kept = str(method()) if callable(method) else KEPT_ON_INTERRUPT
        else:
            kept = interrupted(arg) if callable(interrupted) else interrupted
        _print_line("[bold yellow]interrupted;[/]", kept)
        raise SystemExit(130) from None
