"""StageMeter: figures per stage from injected clocks, and real memory of this process and its children."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from pipeline import metrics
from pipeline.metrics import MB, TABLE_KEYS, StageMeter, tree_cpu_seconds, tree_pids, tree_rss_bytes

ALLOCATION = 200 * MB


def ticking(*values: float) -> Callable[[], float]:
    """A clock that returns the given readings in turn."""
    readings: Iterator[float] = iter(values)
    return lambda: next(readings)


def test_records_per_second_comes_from_the_measured_seconds() -> None:
    meter = StageMeter(clock=ticking(10.0, 12.5), cpu_clock=ticking(1.0, 1.75))
    with meter.stage("dedupe", records=1000):
        pass
    (row,) = meter.table()
    assert row == {
        "stage": "dedupe",
        "records": 1000,
        "seconds": 2.5,
        "cpu_seconds": 0.75,
        "records_per_second": 400.0,
        "peak_rss_mb": row["peak_rss_mb"],
    }
    assert row["peak_rss_mb"] > 0


def test_records_known_only_at_the_end_and_stages_in_start_order() -> None:
    meter = StageMeter(clock=ticking(0.0, 1.0, 5.0, 9.0), cpu_clock=ticking(0.0, 0.0, 0.0, 0.0))
    with meter.stage("ingest") as stage:
        stage.records = 300
    with meter.stage("export"):
        pass
    table = meter.table()
    assert [row["stage"] for row in table] == ["ingest", "export"]
    assert all(tuple(row) == TABLE_KEYS for row in table)
    assert table[0]["records_per_second"] == 300.0
    assert table[1]["records"] is None and table[1]["records_per_second"] is None


def test_a_stage_that_raises_is_still_measured() -> None:
    meter = StageMeter(clock=ticking(0.0, 2.0), cpu_clock=ticking(0.0, 0.5))
    with pytest.raises(ValueError):
        with meter.stage("code", records=10):
            raise ValueError("boom")
    assert meter.table()[0]["seconds"] == 2.0


def test_peak_rss_grows_when_a_stage_allocates_200_mb() -> None:
    meter = StageMeter()
    with meter.stage("idle"):
        pass
    with meter.stage("allocate"):
        block = np.ones(ALLOCATION // 8)  # written, so resident
        assert block[-1] == 1.0
    del block
    with meter.stage("after"):
        pass
    idle, allocate, after = (row["peak_rss_mb"] for row in meter.table())
    assert allocate >= idle + 190
    assert after < allocate - 150  # the block is freed: a later stage does not inherit the peak


def test_memory_of_child_processes_counts() -> None:
    child_code = "import sys; block = b'x' * %d; print('ready', flush=True); sys.stdin.read()" % ALLOCATION
    meter = StageMeter()
    with meter.stage("alone"):
        pass
    child = subprocess.Popen(
        [sys.executable, "-c", child_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        with meter.stage("with a worker"):
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            assert child.pid in tree_pids()
        alone, with_worker = (row["peak_rss_mb"] for row in meter.table())
        assert with_worker >= alone + 190
        assert tree_rss_bytes() >= ALLOCATION
    finally:
        child.communicate("")


def test_cpu_seconds_include_a_finished_child() -> None:
    before = tree_cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert tree_cpu_seconds() > before


def test_the_proc_scan_fallback_finds_the_same_tree() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert sorted(metrics._proc_scan_tree(metrics.os.getpid())) == sorted(tree_pids())
        assert child.pid in tree_pids()
    finally:
        child.communicate(b"")


def test_the_sampler_walks_the_tree_every_few_samples_and_reads_rss_at_each(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[int] = []
    reads: list[int] = []
    monkeypatch.setattr(metrics, "tree_pids", lambda pid: walks.append(pid) or [pid])
    monkeypatch.setattr(metrics, "_rss", lambda pid: reads.append(pid) or 7 * MB)
    sampler = metrics.RssSampler(pid=12345)
    samples = [sampler.sample() for _ in range(2 * metrics.TREE_WALK_EVERY)]
    assert samples == [7 * MB] * len(samples)
    assert len(walks) == 2 and len(reads) == len(samples)
    sampler.sample(walk=True)
    assert len(walks) == 3
