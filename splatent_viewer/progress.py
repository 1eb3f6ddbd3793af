"""Progress bars that also work when the output is not a terminal (CI logs, ``| tee``, a file).

Drop-in replacements for :class:`rich.progress.Progress` and :func:`rich.progress.track`: on an
interactive terminal they *are* rich's (same columns, same live bar); otherwise rich would draw the
bar only once, at the end, so these print plain lines instead, e.g.::

    rendering 12/120 (10%) 3.2 s, ~29 s left
    rendering 120/120 (100%) 38.4 s

A line is printed when the task has advanced by another ``plain_every_percent`` (default 10 %) or,
for slow tasks, when ``plain_interval_s`` (default 10 s) passed since the last line and the count
moved; the last line is printed when the task completes (or, unfinished, when the progress stops).

Usage is rich's::

    from splatent_viewer.progress import Progress, track

    for item in track(items, description="encoding views", console=CONSOLE):
        ...

    with Progress(TextColumn("{task.description}"), BarColumn(), console=CONSOLE) as bar:
        task = bar.add_task("training", total=steps)
        for step in range(steps):
            ...
            bar.update(task, advance=1, loss=loss)   # or bar.advance(task)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import length_hint
from typing import Any, TypeVar

from rich import get_console
from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as _RichProgress
from rich.style import StyleType

__all__ = ["Progress", "plain_output", "track"]

ProgressType = TypeVar("ProgressType")


def plain_output(console: Console) -> bool:
    """True when rich would not animate a bar on ``console`` (not an interactive terminal, not Jupyter)."""
    return not console.is_interactive and not console.is_jupyter


@dataclass
class _PlainState:
    bucket: int = 0
    """Progress bucket (``plain_every_percent`` steps) of the last line."""
    time: float = 0.0
    """When the last line (or the task's start) was."""
    completed: float = 0.0
    """Count shown by the last line."""
    finished: bool = False
    """The final line was printed."""


def _number(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:.1f}"


class Progress(_RichProgress):
    """:class:`rich.progress.Progress` that prints plain progress lines when its console is not a terminal.

    Same constructor, methods and context-manager use as rich's; two keyword-only extras:
    ``plain_every_percent`` and ``plain_interval_s`` (see the module docstring). ``disable=True``
    prints nothing in either mode.
    """

    def __init__(
        self,
        *columns: str | ProgressColumn,
        console: Console | None = None,
        disable: bool = False,
        plain_every_percent: float = 10.0,
        plain_interval_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        self.plain = not disable and plain_output(console or get_console())
        """Plain lines instead of a live bar (the console is not an interactive terminal)."""
        self._every = max(float(plain_every_percent), 1e-9)
        self._interval = float(plain_interval_s)
        self._plain_states: dict[TaskID, _PlainState] = {}
        self._plain_lock = threading.RLock()
        super().__init__(*columns, console=console, disable=disable or self.plain, **kwargs)

    # -- rich's API, plus a plain line when one is due -------------------------------------------
    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        task_id = super().add_task(
            description, start=start, total=total, completed=completed, visible=visible, **fields
        )
        if self.plain:
            with self._plain_lock:
                self._plain_states[task_id] = _PlainState(time=self.get_time(), completed=completed)
        return task_id

    def update(
        self,
        task_id: TaskID,
        *,
        total: float | None = None,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        visible: bool | None = None,
        refresh: bool = False,
        **fields: Any,
    ) -> None:
        super().update(
            task_id,
            total=total,
            completed=completed,
            advance=advance,
            description=description,
            visible=visible,
            refresh=refresh,
            **fields,
        )
        if self.plain:
            self._plain_line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        if self.plain:
            self._plain_line(task_id)

    def reset(self, task_id: TaskID, **kwargs: Any) -> None:
        super().reset(task_id, **kwargs)
        if self.plain:
            with self._plain_lock:
                self._plain_states[task_id] = _PlainState(
                    time=self.get_time(), completed=self._tasks[task_id].completed
                )

    def track(
        self,
        sequence: Iterable[ProgressType],
        total: float | None = None,
        completed: int = 0,
        task_id: TaskID | None = None,
        description: str = "Working...",
        update_period: float = 0.1,
    ) -> Iterable[ProgressType]:
        if not self.plain:
            yield from super().track(
                sequence,
                total=total,
                completed=completed,
                task_id=task_id,
                description=description,
                update_period=update_period,
            )
            return
        # rich's track thread stops at once without a live display: count in this thread instead.
        if total is None:
            total = float(length_hint(sequence)) or None
        if task_id is None:
            task_id = self.add_task(description, total=total, completed=completed)
        else:
            self.update(task_id, total=total, completed=completed)
        for value in sequence:
            yield value
            self.advance(task_id, 1)

    def stop(self) -> None:
        super().stop()
        if self.plain:  # the state of every unfinished task that moved since its last line
            for task_id in list(self._plain_states):
                self._plain_line(task_id, force=True)

    # -- plain lines ------------------------------------------------------------------------------
    def _plain_line(self, task_id: TaskID, *, force: bool = False) -> None:
        with self._plain_lock:
            state = self._plain_states.get(task_id)
            task = self._tasks.get(task_id)
            if state is None or task is None or state.finished or not task.visible:
                return
            now, done, total = self.get_time(), task.completed, task.total
            finished = total is not None and done >= total
            bucket = int(100.0 * done / total // self._every) if total else 0
            moved = done != state.completed
            due = finished or (moved and (bucket > state.bucket or force or now - state.time >= self._interval))
            if not due:
                return
            state.bucket, state.time, state.completed, state.finished = bucket, now, done, finished
            elapsed = task.elapsed or 0.0
            text = f"{task.description} {_number(done)}".lstrip()
            if total:
                text += f"/{_number(total)} ({100.0 * done / total:.0f}%)"
            text += f" {elapsed:.1f} s"
            if total and not finished and done > 0 and elapsed > 0:
                text += f", ~{(total - done) * elapsed / done:.0f} s left"
            self.console.print(text, soft_wrap=True, highlight=False)


def track(
    sequence: Iterable[ProgressType],
    description: str = "Working...",
    total: float | None = None,
    completed: int = 0,
    auto_refresh: bool = True,
    console: Console | None = None,
    transient: bool = False,
    get_time: Callable[[], float] | None = None,
    refresh_per_second: float = 10,
    style: StyleType = "bar.back",
    complete_style: StyleType = "bar.complete",
    finished_style: StyleType = "bar.finished",
    pulse_style: StyleType = "bar.pulse",
    update_period: float = 0.1,
    disable: bool = False,
    show_speed: bool = True,
) -> Iterable[ProgressType]:
    """:func:`rich.progress.track` (same arguments, same bar on a terminal) with plain lines elsewhere."""
    columns: list[ProgressColumn] = [TextColumn("[progress.description]{task.description}")] if description else []
    columns += [
        BarColumn(style=style, complete_style=complete_style, finished_style=finished_style, pulse_style=pulse_style),
        TaskProgressColumn(show_speed=show_speed),
        TimeRemainingColumn(elapsed_when_finished=True),
    ]
    progress = Progress(
        *columns,
        auto_refresh=auto_refresh,
        console=console,
        transient=transient,
        get_time=get_time,
        refresh_per_second=refresh_per_second or 10,
        disable=disable,
    )
    with progress:
        yield from progress.track(
            sequence, total=total, completed=completed, description=description, update_period=update_period
        )
