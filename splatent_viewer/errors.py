"""One exception type for bad user input, so CLIs can print one clear line instead of a trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class SplatentError(RuntimeError):
    """Bad input (scene folder, weights, checkpoint, option). The message names the file and the fix."""


def exit_on_error(main: Callable[[T], R], arg: T) -> R:
    """Runs a CLI's ``main(arg)``; a :class:`SplatentError` becomes one red ``error:`` line and exit code 1."""
    try:
        return main(arg)
    except SplatentError as e:
        from rich.console import Console

        Console().print(f"[bold red]error:[/] {e}", soft_wrap=True)  # one line, however long
        raise SystemExit(1) from None
