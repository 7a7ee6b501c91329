"""Progress of long stages: a rich bar (records/s, time left) on a terminal, and a log line now and then.

The flow runs in the `review run` process, so the bar shows in the user's terminal; scheduled runs have no
terminal and get the log lines instead (Prefect keeps them with the run).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

log = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 10.0

Advance = Callable[[int], None]


class RateColumn(ProgressColumn):
    """Records per second, from rich's own moving estimate."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rec/s" if speed else "", style="cyan")


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<8}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=False,
    )


@contextmanager
def stage_progress(name: str, total: int | None, *, show_bar: bool | None = None) -> Iterator[Advance]:
    """Yields `advance(n)`; draws a bar when stderr is a terminal, logs progress every ~10 s either way."""
    show = sys.stderr.isatty() if show_bar is None else show_bar
    logger = _RateLogger(name, total)
    if not show:
        yield logger.advance
        logger.finish()
        return
    with progress_bar() as bar:
        task_id = bar.add_task(name, total=total)

        def advance(n: int) -> None:
            bar.advance(task_id, n)
            logger.advance(n)

        yield advance
    logger.finish()


class _RateLogger:
    def __init__(self, name: str, total: int | None) -> None:
        self.name, self.total, self.done = name, total, 0
        self.started = self.last_logged = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last_logged >= LOG_EVERY_SECONDS:
            self.last_logged = now
            log.info("%s: %s", self.name, self.describe(now))

    def describe(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.done:,}" + (f" of {self.total:,}" if self.total else "") + f" records, {rate:,.0f}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", about {(self.total - self.done) / rate:,.0f} s left"
        return text

    def finish(self) -> None:
        if self.done:
            log.info("%s: done, %s", self.name, self.describe(time.monotonic()))
