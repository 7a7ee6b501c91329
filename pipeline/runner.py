"""Where the flow's mapped tasks run, and the batches they are mapped over.

The flow is the same whichever runner is chosen (review.yaml `runner`): Prefect's default thread pool,
a temporary Dask LocalCluster (both cores), or a running Dask scheduler given by address. Batches are
cut in a fixed order and their results are put back in that order, so the runner cannot change a result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import pandas as pd

from pipeline.workspace import RunnerSettings

T = TypeVar("T")


def task_runner_for(settings: RunnerSettings) -> Any:
    """The Prefect task runner review.yaml asks for (None: keep Prefect's default)."""
    if settings.kind == "default":
        return None
    from prefect_dask import DaskTaskRunner

    if settings.address:
        return DaskTaskRunner(address=settings.address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.workers,
            "threads_per_worker": settings.threads_per_worker,
            "processes": True,
            "dashboard_address": None,  # no web dashboard: nothing listens beyond the scheduler on loopback
            "host": "127.0.0.1",
        },
    )


def describe_runner(settings: RunnerSettings) -> str:
    if settings.kind == "default":
        return "Prefect's default task runner"
    if settings.address:
        return f"the Dask scheduler at {settings.address}"
    return f"a local Dask cluster ({settings.workers} worker process(es) x {settings.threads_per_worker} thread(s))"


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items, in order."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def frame_batches(frame: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """Consecutive row slices of at most `size` rows (an empty frame gives no batch)."""
    return [frame.iloc[start : start + size] for start in range(0, len(frame), size)]


def group_batches(groups: pd.DataFrame, size: int) -> list[pd.DataFrame]:
    """Rows of the dedupe result (record_id, duplicate_group, ...) cut into batches of about `size` records,
    in duplicate_group order, never splitting a group (a group larger than `size` is a batch of its own)."""
    if not len(groups):
        return []
    ordered = groups.sort_values(["duplicate_group", "record_id"], kind="stable").reset_index(drop=True)
    starts = ordered["duplicate_group"].ne(ordered["duplicate_group"].shift()).to_numpy().nonzero()[0].tolist()
    cuts, batch_start = [], 0
    for group_start in starts[1:]:
        if group_start - batch_start >= size:
            cuts.append(group_start)
            batch_start = group_start
    bounds = [0, *cuts, len(ordered)]
    return [ordered.iloc[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
