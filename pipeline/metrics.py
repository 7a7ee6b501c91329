"""Per-stage metering: wall seconds, CPU seconds, records/s and peak memory of each stage of a run.

    meter = StageMeter()
    with meter.stage("dedupe", records=len(frame)):
        ...
    with meter.stage("ingest") as stage:      # the count is known only at the end
        records = read_everything()
        stage.records = len(records)
    summary["stages"] = meter.table()

Memory is the resident set size (RSS) of this process *and all its descendants* (Dask workers, the
forkserver, any subprocess), summed, as a background thread samples it every `interval` seconds; each
stage also samples at its start and end, and this process's own high-water mark (Linux VmHWM) counts
when it rose during the stage, so a spike shorter than the sampling interval is not lost in this process.
Summed RSS counts pages that forked processes share once per process: it errs on the high side.

CPU seconds are user + system time of the same process tree: live processes' own times plus what
their finished children used (a worker that exits mid-stage moves from one term to the other).
Reads /proc on Linux (fast enough to sample every 50 ms); psutil elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:  # psutil is pinned in constraints.txt; the /proc fallback keeps the meter usable without it
    import psutil
except ImportError:  # pragma: no cover - exercised only where psutil is missing
    psutil = None

MB = 1024 * 1024
DEFAULT_INTERVAL = 0.05  # seconds between memory samples
# The tree is walked anew every this many samples (and at every watch and release); the samples between read
# the RSS of the processes found last. Walking reads a file per thread (a flow has dozens): walking at every
# sample cost a run ~9% of a core. A child is seen within 0.5 s of its start.
TREE_WALK_EVERY = 10
TABLE_KEYS = ("stage", "records", "seconds", "cpu_seconds", "records_per_second", "peak_rss_mb")


# --- reading the process tree -----------------------------------------------------------------
# On Linux the tree is walked through /proc/PID/task/TID/children (only our own subtree is read: about
# 0.1 ms, where psutil's children(recursive=True) reads every process's stat, ~5 ms here, which would
# cost a sampler ticking every 50 ms a tenth of a core). psutil serves where /proc is missing.

_PROC = Path("/proc")
_HAS_PROC = (_PROC / "self" / "statm").exists()


def tree_pids(pid: int | None = None) -> list[int]:
    """A process and its live descendants (the process first); [] if it is gone."""
    pid = os.getpid() if pid is None else pid
    if _HAS_PROC:
        found = _proc_descendants(pid)
        return found if found is not None else _proc_scan_tree(pid)
    if psutil is None:  # pragma: no cover - neither /proc nor psutil
        return [pid]
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.Error:
        return []


def tree_rss_bytes(pid: int | None = None) -> int:
    """Resident memory of a process and all its live descendants, summed (0 if the process is gone)."""
    return sum(_rss(p) for p in tree_pids(pid))


def tree_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process tree: each live process's own times plus its reaped children's."""
    return sum(_cpu(p) for p in tree_pids(pid))


def own_peak_rss_bytes() -> int | None:
    """This process's RSS high-water mark (Linux VmHWM), or None where the kernel does not say."""
    try:
        for line in (_PROC / "self" / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _proc_descendants(pid: int) -> list[int] | None:
    """Walk /proc/PID/task/*/children; None when the kernel lacks those files (CONFIG_PROC_CHILDREN)."""
    if not (_PROC / str(pid)).exists():
        return []
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list((_PROC / str(current) / "task").iterdir())
        except OSError:  # exited since its parent listed it
            continue
        for task in tasks:
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except FileNotFoundError:
                if not (task / "stat").exists():
                    continue  # the thread ended
                return None
            except OSError:
                continue
    return found


def _proc_scan_tree(pid: int) -> list[int]:
    """pid and its descendants from every /proc/*/stat (slow; kernels without the children files)."""
    parents: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _rss(pid: int) -> int:
    if _HAS_PROC:
        with contextlib.suppress(OSError, IndexError, ValueError):
            return int((_PROC / str(pid) / "statm").read_text().split()[1]) * _PAGE_SIZE
        return 0
    with contextlib.suppress(psutil.Error):  # pragma: no cover - non-Linux
        return int(psutil.Process(pid).memory_info().rss)
    return 0  # pragma: no cover


def _cpu(pid: int) -> float:
    if _HAS_PROC:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS  # utime stime cutime cstime
        return 0.0
    with contextlib.suppress(psutil.Error):  # pragma: no cover - non-Linux
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    return 0.0  # pragma: no cover


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --- sampling ---------------------------------------------------------------------------------


class RssSampler:
    """A daemon thread that samples a process tree's RSS and keeps the peak since each watcher started.

    `watch()` returns a key; `release(key)` gives the highest sample seen since that call. Used by StageMeter
    (one key per open stage) and by benchmarks watching a subprocess (`RssSampler(pid=child.pid)`).
    """

    def __init__(self, pid: int | None = None, interval: float = DEFAULT_INTERVAL) -> None:
        self.pid = os.getpid() if pid is None else pid
        self.interval = interval
        self._peaks: dict[int, int] = {}
        self._next_key = 0
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pids: list[int] = []
        self._samples = 0

    def sample(self, walk: bool = False) -> int:
        """Take one sample now and fold it into every open watcher's peak; returns it in bytes. The process tree
        is walked when `walk` is true and every TREE_WALK_EVERY samples."""
        with self._lock:
            if walk or self._samples % TREE_WALK_EVERY == 0:
                self._pids = tree_pids(self.pid)
            self._samples += 1
            pids = self._pids
        rss = sum(_rss(p) for p in pids)
        with self._lock:
            for key, peak in self._peaks.items():
                if rss > peak:
                    self._peaks[key] = rss
        return rss

    def watch(self) -> int:
        with self._lock:
            key = self._next_key
            self._next_key += 1
            self._peaks[key] = 0
            self._ensure_running()
        self.sample(walk=True)
        return key

    def peak(self, key: int) -> int:
        """The highest sample since `watch()` returned `key`, in bytes (the watcher stays open)."""
        with self._lock:
            return self._peaks[key]

    def release(self, key: int) -> int:
        """Sample once more, stop watching `key` and return its peak in bytes."""
        self.sample(walk=True)
        with self._lock:
            peak = self._peaks.pop(key)
            thread = self._thread if not self._peaks else None
            if thread is not None:
                self._thread = None
                self._stop.set()
        if thread is not None:
            thread.join()
        return peak

    def _ensure_running(self) -> None:
        """Start the thread if none runs (called with the lock held)."""
        if self._thread is None:
            self._stop = threading.Event()  # a fresh event: a thread still stopping keeps its own
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="rss-sampler", daemon=True)
            self._thread.start()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.sample()


# --- stages -----------------------------------------------------------------------------------


@dataclass
class StageFigures:
    """One stage's measurements; `records` may be set inside the `with` block once it is known."""

    stage: str
    records: int | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0

    @property
    def records_per_second(self) -> float | None:
        if not self.records or self.seconds <= 0:
            return None
        return self.records / self.seconds

    def as_row(self) -> dict[str, Any]:
        rate = self.records_per_second
        return {
            "stage": self.stage,
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "records_per_second": round(rate, 1) if rate is not None else None,
            "peak_rss_mb": round(self.peak_rss_bytes / MB, 1),
        }


class StageMeter:
    """Measures named stages of a run; `table()` lists them in the order they started.

    `clock` and `cpu_clock` are injectable so tests need not depend on real time; by default they are
    time.perf_counter and the CPU seconds of the watched process tree.
    """

    def __init__(
        self,
        *,
        pid: int | None = None,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] | None = None,
    ) -> None:
        self.pid = os.getpid() if pid is None else pid
        self._sampler = RssSampler(self.pid, interval)
        self._clock = clock
        self._cpu_clock = cpu_clock or (lambda: tree_cpu_seconds(self.pid))
        self._stages: list[StageFigures] = []

    @contextlib.contextmanager
    def stage(self, name: str, records: int | None = None) -> Iterator[StageFigures]:
        """Measure the block as stage `name`; the figures are kept even when the block raises."""
        figures = StageFigures(stage=name, records=records)
        self._stages.append(figures)
        own_peak_before = self._own_peak()
        key = self._sampler.watch()
        cpu_start, start = self._cpu_clock(), self._clock()
        try:
            yield figures
        finally:
            figures.seconds = self._clock() - start
            figures.cpu_seconds = max(0.0, self._cpu_clock() - cpu_start)
            figures.peak_rss_bytes = self._sampler.release(key)
            own_peak_after = self._own_peak()
            if own_peak_before is not None and own_peak_after is not None and own_peak_after > own_peak_before:
                # This process set a new high-water mark inside the stage: that peak happened here.
                figures.peak_rss_bytes = max(figures.peak_rss_bytes, own_peak_after)

    @property
    def stages(self) -> list[StageFigures]:
        return list(self._stages)

    def table(self) -> list[dict[str, Any]]:
        """One dict per stage (keys TABLE_KEYS), for run_summary.json's "stages"."""
        return [figures.as_row() for figures in self._stages]

    def _own_peak(self) -> int | None:
        return own_peak_rss_bytes() if self.pid == os.getpid() else None
