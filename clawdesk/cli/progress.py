"""Progress display for long CLI work (loading, judging, training), on stderr."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


@contextlib.contextmanager
def spinner(text: str) -> Iterator[None]:
    if not console.is_terminal:
        yield
        return
    with console.status(f"{text}…"):
        yield


def progress_bar() -> Progress:
    """A bar with counts and ETA; silent when stderr is not a terminal except for the final line."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=console, transient=False, disable=False)
