"""Run a memory-heavy stage in a child process, so that its peak is given back to the OS when the child exits.

glibc keeps the arenas a large computation grew (a million-record dedupe: ~2 GB) for the life of the process,
so a stage run in the flow's own process leaves its peak resident for every later stage. `run_in_child`
runs a function in a fresh "spawn" process (a fork of a process with Prefect's threads is not safe) and
returns its result; the function should read what it needs itself (e.g. from the store) and return only
small results. The child's log records are relayed to this process as they are made, so they reach Prefect's logger.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import ctypes.util
import gc
import logging
import logging.handlers
import multiprocessing
import pickle
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pyarrow

log = logging.getLogger(__name__)

Result = TypeVar("Result")
LOGGED_PACKAGE = "pipeline"  # the child forwards this package's log records (INFO and up)


def run_in_child(function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
    """`function(*args, **kwargs)` in a spawned child process; its exceptions are raised here.

    `function` and its arguments must be picklable (a module-level function); so must its result. The result
    is pickled into a temporary file and loaded here once the child has exited, so the child's memory and the
    result's copy here are never held at the same time (sent through a pipe, both ends would hold it). The
    child's log records reach this process's loggers as they are made (a stage's progress lines, live).
    """
    context = multiprocessing.get_context("spawn")
    records = context.Queue()
    relay = _LogRelay(records)
    with tempfile.TemporaryDirectory(prefix="living-review-stage-") as folder:
        path = Path(folder) / "result.pickle"
        try:
            with ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_forward_logs, initargs=(records,)
            ) as pool:
                pool.submit(_call, function, args, kwargs, path).result()
        finally:
            relay.close()  # the child has exited: every record it sent is in the queue, before the end marker
        with path.open("rb") as handle:
            return pickle.load(handle)


class _LogRelay:
    """A thread that logs here, as it arrives, each record the child sends. It runs in a copy of the caller's
    context, so Prefect's log handler sees the flow run the records belong to."""

    def __init__(self, records: Any) -> None:
        self.records = records
        self.thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._relay,), name="child-log-relay", daemon=True
        )
        self.thread.start()

    def _relay(self) -> None:
        while (record := self.records.get()) is not None:
            logging.getLogger(record.name).log(record.levelno, "%s", record.getMessage())

    def close(self) -> None:
        self.records.put(None)
        self.thread.join()
        self.records.close()


def _forward_logs(records: Any) -> None:
    """In the child, first: send this package's log records (INFO and up) to the parent."""
    logger = logging.getLogger(LOGGED_PACKAGE)
    logger.addHandler(logging.handlers.QueueHandler(records))
    logger.setLevel(logging.INFO)


def _call(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], path: Path) -> None:
    """In the child: run the function and pickle its result into `path`."""
    result = function(*args, **kwargs)
    with path.open("wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)


def release_memory() -> None:
    """After a large frame is dropped: collect garbage, and have Arrow's allocator (where pandas keeps text) and
    glibc's give their freed pages back to the OS; neither does on its own (a million-record corpus frame:
    ~1.5 GB kept). malloc_trim is skipped where it is missing (musl, macOS, Windows)."""
    gc.collect()
    pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(name).malloc_trim
    return None
