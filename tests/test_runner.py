"""Runner settings in review.yaml, batching, and the progress reporting of long stages."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import ConfigError
from pipeline.progress import _RateLogger, stage_progress
from pipeline.runner import chunks, describe_runner, frame_batches, task_runner_for
from pipeline.workspace import RunnerSettings, load_workspace


def _write_config(workspace: Path, extra: str) -> None:
    config = workspace / "review.yaml"
    config.write_text(config.read_text(encoding="utf-8") + extra, encoding="utf-8")


def test_default_runner_is_prefects_own(workspace: Path) -> None:
    settings = load_workspace(workspace).config.runner
    assert settings.kind == "default" and task_runner_for(settings) is None
    assert load_workspace(workspace).config.batch_size == 5000


def test_dask_runner_for_a_local_cluster_and_for_an_address() -> None:
    from prefect_dask import DaskTaskRunner

    local = task_runner_for(RunnerSettings(kind="dask", workers=3))
    assert isinstance(local, DaskTaskRunner) and local.cluster_kwargs["n_workers"] == 3
    remote = task_runner_for(RunnerSettings(kind="dask", address="tcp://10.1.2.3:8786"))
    assert remote.address == "tcp://10.1.2.3:8786"
    assert "10.1.2.3" in describe_runner(RunnerSettings(kind="dask", address="tcp://10.1.2.3:8786"))


def test_an_address_without_dask_is_refused_with_its_location(workspace: Path) -> None:
    _write_config(workspace, "\nrunner:\n  address: tcp://10.1.2.3:8786\n")
    with pytest.raises(ConfigError, match="runner"):
        load_workspace(workspace)


def test_bad_batch_size_is_refused(workspace: Path) -> None:
    _write_config(workspace, "\nbatch_size: 0\n")
    with pytest.raises(ConfigError, match="batch_size"):
        load_workspace(workspace)


def test_batches_keep_order_and_cover_everything() -> None:
    frame = pd.DataFrame({"x": range(11)})
    batches = frame_batches(frame, 4)
    assert [len(b) for b in batches] == [4, 4, 3]
    assert pd.concat(batches)["x"].tolist() == list(range(11))
    assert frame_batches(frame.iloc[:0], 4) == []
    assert [list(c) for c in chunks(list("abcde"), 2)] == [["a", "b"], ["c", "d"], ["e"]]


def test_rate_logger_reports_rate_and_time_left() -> None:
    logger = _RateLogger("code", total=1000)
    logger.started = 100.0
    logger.done = 250
    assert logger.describe(110.0) == "250 of 1,000 records, 25/s, about 30 s left"
    logger.done = 1000
    assert "left" not in logger.describe(110.0)


def test_stage_progress_logs_when_done(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline.progress"):
        with stage_progress("ingest", 10, show_bar=False) as advance:
            advance(4)
            advance(6)
    assert any("ingest: done, 10 of 10 records" in message for message in caplog.messages)


def test_group_batches_never_split_a_group() -> None:
    from pipeline.runner import group_batches

    groups = pd.DataFrame(
        {"record_id": [f"r{i}" for i in range(9)], "duplicate_group": ["a", "a", "b", "c", "c", "c", "d", "e", "e"]}
    )
    batches = group_batches(groups.sample(frac=1, random_state=3), 3)
    assert [b["duplicate_group"].unique().tolist() for b in batches] == [["a", "b"], ["c"], ["d", "e"]]
    assert sorted(pd.concat(batches)["record_id"]) == sorted(groups["record_id"])
    assert group_batches(groups.iloc[:0], 3) == []
