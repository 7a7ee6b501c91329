from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.errors import ReviewError
from pipeline.records import Record
from pipeline.store import SCHEMA_VERSION, open_store
from tests.support.postgres import temporary_postgres

SEEDS = Path(__file__).resolve().parents[1] / "corpus" / "seeds"


def _ingest_and_commit(store_url: str, paths: list[Path]) -> stages.IngestResult:
    store = open_store(store_url)
    run = stages.start_run()
    ingested = stages.ingest_stage(paths, store.known_input_hashes())
    cleaned = stages.clean_stage(ingested.records, list(store.iter_records()))
    run.counts = {"ingest": ingested.counts()}
    stages.commit_stage(store, run, ingested, cleaned)
    return ingested


def _exercise(url: str) -> None:
    seeds = sorted(SEEDS.glob("*.txt"))
    first = _ingest_and_commit(url, seeds)
    store = open_store(url)
    assert store.schema_version() == SCHEMA_VERSION
    assert store.count_records() == len(first.records) > 5
    assert len(store.inputs()) == 5
    second = _ingest_and_commit(url, seeds)
    assert second.records == [] and len(second.already_ingested) == 5
    assert open_store(url).count_records() == len(first.records)
    runs = open_store(url).runs()
    assert [r.counts["ingest"]["records_new"] for r in runs] == [len(first.records), 0]
    stored = list(open_store(url).iter_records())
    assert {r.record_id for r in stored} == {r.record_id for r in first.records}
    assert all(isinstance(r, Record) and r.title or r.abstract for r in stored)


def test_sqlite_store_ingests_each_file_once(tmp_path: Path) -> None:
    _exercise(f"sqlite:///{tmp_path / 'review.db'}")


def test_postgresql_store_works_too() -> None:
    with temporary_postgres() as url:
        _exercise(url)


def test_same_file_under_two_names_is_ingested_once(tmp_path: Path) -> None:
    seed = sorted(SEEDS.glob("*.txt"))[1]
    copy = tmp_path / "copy.txt"
    copy.write_bytes(seed.read_bytes())
    result = stages.ingest_stage([seed, copy], set())
    assert len(result.new_inputs) == 1 and result.already_ingested == [str(copy)]


def test_failed_commit_leaves_store_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'review.db'}"
    seeds = sorted(SEEDS.glob("*.txt"))
    _ingest_and_commit(url, seeds[:2])
    before = open_store(url).count_records()

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    from pipeline import store as store_module

    monkeypatch.setattr(store_module, "_record_row", explode)
    with pytest.raises(RuntimeError):
        _ingest_and_commit(url, seeds)
    store = open_store(url)
    assert store.count_records() == before
    assert len(store.inputs()) == 2 and len(store.runs()) == 1


def _killed_during_commit(url: str, paths: list[Path]) -> None:
    from pipeline import store as store_module

    original = store_module._record_row
    calls = {"n": 0}

    def row_then_die(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    store_module._record_row = row_then_die  # type: ignore[assignment]
    _ingest_and_commit(url, paths)


def test_run_killed_half_way_leaves_store_as_before(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.db'}"
    seeds = sorted(SEEDS.glob("*.txt"))
    _ingest_and_commit(url, seeds[:1])
    before = (open_store(url).count_records(), len(open_store(url).inputs()), len(open_store(url).runs()))
    child = multiprocessing.get_context("spawn").Process(target=_killed_during_commit, args=(url, seeds))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    store = open_store(url)
    assert (store.count_records(), len(store.inputs()), len(store.runs())) == before


def test_bad_store_url_is_one_clear_sentence() -> None:
    with pytest.raises(ReviewError, match="not a database URL"):
        open_store("nonsense://x")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'review.db'}"
    store = open_store(url)
    import sqlalchemy as sa

    from pipeline.store import meta_table

    with store.engine.begin() as conn:
        conn.execute(sa.update(meta_table).values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(ReviewError, match="upgrade the tool"):
        open_store(url)


def test_duplicate_decisions_persist_and_win_over_the_machine(tmp_path: Path) -> None:
    import pandas as pd

    url = f"sqlite:///{tmp_path / 'review.db'}"
    seeds = sorted(SEEDS.glob("*.txt"))
    ingested = _ingest_and_commit(url, seeds)
    records = list(open_store(url).iter_records())
    machine = stages.dedupe_stage(records, None).groups
    merged = machine[machine["duplicate_group"] != machine["record_id"]].iloc[0]
    split = pd.DataFrame(
        [{"record_id_a": merged["duplicate_group"], "record_id_b": merged["record_id"], "decision": "different"}]
    )
    store = open_store(url)
    assert store.append_dedupe_decisions(split, "ana", "sheet1") == 1
    assert store.append_dedupe_decisions(split, "ana", "sheet1") == 0  # the same sheet twice adds nothing
    again = stages.dedupe_stage(records, open_store(url).dedupe_decisions()).groups.set_index("record_id")
    assert again.loc[merged["record_id"], "duplicate_group"] != again.loc[merged["duplicate_group"], "duplicate_group"]
    assert len(ingested.records) == len(records)
