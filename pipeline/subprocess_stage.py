"""Run a memory-heavy stage in a child process, so that its peak is given back to the OS when the child exits.

glibc keeps the arenas a large computation grew (a million-record dedupe: ~2 GB) for the life of the process,
so a stage run in the flow's own process leaves its peak resident for every later stage. `run_in_child`
runs a function in a fresh "spawn" process (a fork of a process with Prefect's threads is not safe) and
returns its result; the function should read what it needs itself (e.g. from the store) and return only
small results. The child's log records are replayed in this process, so they reach Prefect's logger.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import multiprocessing
import pickle
import tempfile
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
    result's copy here are never held at the same time (sent through a pipe, both ends would hold it).
    """
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="living-review-stage-") as folder:
        path = Path(folder) / "result.pickle"
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            records = pool.submit(_call_logging, function, args, kwargs, path).result()
        for name, level, message in records:
            logging.getLogger(name).log(level, "%s", message)
        with path.open("rb") as handle:
            return pickle.load(handle)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _call_logging(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], path: Path
) -> list[tuple[str, int, str]]:
    """In the child: run the function, pickle its result into `path` and return what it logged (to be replayed
    by the parent)."""
    handler = _Collect()
    logger = logging.getLogger(LOGGED_PACKAGE)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        result = function(*args, **kwargs)
        with path.open("wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        logger.removeHandler(handler)
    return handler.records


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
