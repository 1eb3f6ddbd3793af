"""splatent_viewer.progress: rich's bar on a terminal, plain throttled lines elsewhere (CI logs, pipes)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import BarColumn, TextColumn

from splatent_viewer.progress import Progress, track


class Clock:
    """A controllable ``get_time`` (seconds)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=40), out


def test_not_a_terminal_prints_a_line_per_tenth_and_a_final_line() -> None:
    console, out = _plain_console()
    clock = Clock()
    seen = []
    for i in track(range(120), description="rendering", console=console, get_time=clock):
        clock.now += 0.25  # 30 s in all: no 10 s heartbeat falls between two tenths (3 s apart)
        seen.append(i)
    assert seen == list(range(120))
    lines = out.getvalue().splitlines()
    # 12/120 ... 108/120, then the final line; never wrapped although the console is 40 columns wide
    assert [line.split()[1] for line in lines] == [f"{12 * k}/120" for k in range(1, 10)] + ["120/120"]
    assert lines[0] == "rendering 12/120 (10%) 3.0 s, ~27 s left"
    assert lines[-1] == "rendering 120/120 (100%) 30.0 s"
    assert "\x1b" not in out.getvalue() and "━" not in out.getvalue()  # no bar, no control codes


def test_slow_tasks_get_a_line_every_interval_and_unfinished_ones_one_at_the_end() -> None:
    console, out = _plain_console()
    clock = Clock()
    with Progress(
        TextColumn("{task.description}"), BarColumn(), console=console, get_time=clock, plain_interval_s=5.0
    ) as bar:
        assert bar.plain
        task = bar.add_task("training", total=1000)
        for _ in range(30):  # 30 steps of 1 s: 3 % in all, so only the 5 s heartbeat prints
            clock.now += 1.0
            bar.update(task, advance=1, loss=0.5)
        unknown = bar.add_task("encoding", total=None)
        bar.advance(unknown, 3)
    lines = out.getvalue().splitlines()
    assert [line.split()[1] for line in lines if line.startswith("training")] == [
        "5/1000",
        "10/1000",
        "15/1000",
        "20/1000",
        "25/1000",
        "30/1000",
    ]
    assert lines[-1].startswith("encoding 3 ")  # no total: the count; printed when the progress stopped


def test_disable_prints_nothing_and_interactive_terminals_get_rich_bar() -> None:
    console, out = _plain_console()
    assert list(track(range(5), console=console, disable=True)) == list(range(5))
    assert out.getvalue() == ""

    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, force_interactive=True, width=80)
    with Progress(TextColumn("{task.description}"), BarColumn(), console=terminal) as bar:
        assert not bar.plain
        task = bar.add_task("rendering", total=4)
        for _ in range(4):
            bar.advance(task)
    text = out.getvalue()
    assert "rendering" in text and "━" in text and "4/4" not in text  # rich's bar, no plain lines
