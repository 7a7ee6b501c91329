from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.errors import ReviewError
from pipeline.records import Record
from pipeline.store import SCHEMA_VERSION, Store, open_store
from tests.support.postgres import temporary_postgres

SEEDS = Path(__file__).resolve().parents[1] / "corpus" / "seeds"
CODEBOOK = SEEDS.parents[1] / "codebook" / "school_to_school.yaml"
EMBASE = SEEDS.parents[2] / "shared" / "data" / "exports" / "csv" / "asreview_embase.csv"


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
    """The same exercises on PostgreSQL (one server, a database each)."""
    with temporary_postgres() as url:
        _exercise(url)
        _exercise_staging(_database(url, "staging"))
        _exercise_reading(_database(url, "reading"))
        _exercise_migration(_database(url, "migration"))


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


# ---------------------------------------------------------------------------------------------------
# a run's lifecycle: staged batches stay invisible until the commit


def _records_and_inputs(paths: list[Path]) -> tuple[list[Record], dict[str, str], list]:
    from pipeline.batches import iter_ingest_batches

    batches = list(iter_ingest_batches(paths, set(), 10_000))
    records = [r for b in batches for r in b.records]
    return records, {k: v for b in batches for k, v in b.record_input.items()}, [e for b in batches for e in b.new_inputs]


def _view(store: Store) -> tuple:
    """Everything a reader can see of the records, inputs and runs."""
    return (
        store.count_records(),
        sorted(store.known_input_hashes()),
        store.inputs(),
        [(r.run_id, r.counts) for r in store.runs()],
        list(store.iter_records()),
        store.record_projection(["record_id", "title", "flags"]).to_dict("list"),
        store.own_ids(source_format="text", source_file=sorted(SEEDS.glob("*.txt"))[4].name),
    )


def _exercise_staging(url: str) -> None:
    from pipeline.batches import iter_ingest_batches

    seeds = sorted(SEEDS.glob("*.txt"))
    _ingest_and_commit(url, seeds[:2])
    store = open_store(url)
    before = _view(store)
    run = stages.start_run()
    store.begin_run(run)
    assert store.run_status(run.run_id) == "running"
    staged = 0
    for batch in iter_ingest_batches(seeds, store.known_input_hashes(), 4):
        staged += store.stage_records(run.run_id, batch.records, batch.record_input)
        store.stage_inputs(run.run_id, batch.new_inputs)
        assert _view(open_store(url)) == before  # another reader sees nothing of the running run
    assert staged > 4 and store.count_records(run_id=run.run_id) == before[0] + staged
    assert len(store.known_input_hashes(run_id=run.run_id)) == 5 and len(store.inputs(run_id=run.run_id)) == 5
    assert len(store.own_ids(source_format="text", source_file=seeds[4].name, run_id=run.run_id)) > 0
    run.counts = {"ingest": {"records_new": staged}}
    store.commit_run(run)
    after = open_store(url)
    assert after.count_records() == before[0] + staged and len(after.inputs()) == 5
    assert [r.counts for r in after.runs()][-1] == {"ingest": {"records_new": staged}}
    assert after.run_status(run.run_id) == "committed"
    with pytest.raises(ReviewError, match="already committed"):
        after.commit_run(run)
    with pytest.raises(ReviewError, match="already committed"):
        after.stage_records(run.run_id, [], {})


def _exercise_reading(url: str) -> None:
    import pandas as pd

    from pipeline.records import records_to_frame
    from pipeline.store import PROJECTION_COLUMNS

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "exports"
    paths = [*sorted(SEEDS.glob("*.txt")), data / "ris" / "asysd_wos_test.ris", data / "medline" / "metaknowledge_medline_test.medline"]
    records, record_input, inputs = _records_and_inputs(paths)
    store = open_store(url)
    store.commit_run(stages.start_run(), new_inputs=inputs, new_records=records, record_input=record_input)
    everything = list(store.iter_records())
    assert sorted(everything, key=lambda r: r.record_id) == sorted(records, key=lambda r: r.record_id)
    order = [(record_input[r.record_id], r.position, r.record_id) for r in everything]
    assert order == sorted(order)  # input file, position, record_id
    batches = list(store.iter_record_batches(7))
    assert [r for b in batches for r in b] == everything and {len(b) for b in batches[:-1]} == {7}
    projection = store.record_projection(list(PROJECTION_COLUMNS), chunk_size=50)
    expected = records_to_frame(everything)
    pd.testing.assert_frame_equal(projection[list(expected.columns)], expected)
    assert projection["has_abstract"].tolist() == [r.has_abstract() for r in everything]
    assert projection["input_sha256"].tolist() == [record_input[r.record_id] for r in everything]
    assert store.record_projection(["year", "title"], chunk_size=1000)["title"].tolist() == expected["title"].tolist()
    with pytest.raises(ValueError, match="unknown projection column"):
        store.record_projection(["extra"])


def test_sqlite_staged_rows_are_invisible_until_the_commit(tmp_path: Path) -> None:
    _exercise_staging(f"sqlite:///{tmp_path / 'review.db'}")


def test_sqlite_batches_and_projections_match_the_records(tmp_path: Path) -> None:
    _exercise_reading(f"sqlite:///{tmp_path / 'review.db'}")


def test_staging_needs_a_begun_run_and_a_discarded_run_cannot_commit(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    with pytest.raises(ReviewError, match="begin_run"):
        store.stage_records("nope", [], {})
    first, second = stages.start_run(), stages.start_run()
    store.begin_run(first)
    open_store(f"sqlite:///{tmp_path / 'review.db'}").begin_run(second)  # takes the store over
    with pytest.raises(ReviewError, match="was discarded while it ran"):
        store.commit_run(first)
    assert store.runs() == [] and store.run_status(second.run_id) == "running"


def test_commit_run_with_todays_signature_skips_the_records_already_staged(tmp_path: Path) -> None:
    records, record_input, inputs = _records_and_inputs(sorted(SEEDS.glob("*.txt")))
    store = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    run = stages.start_run()
    store.begin_run(run)
    assert store.stage_records(run.run_id, records[:10], record_input) == 10
    assert store.stage_records(run.run_id, records[:10], record_input) == 0  # the same batch twice
    store.stage_inputs(run.run_id, inputs[:1])
    store.commit_run(run, new_inputs=inputs, new_records=records, record_input=record_input)
    assert store.count_records() == len(records) and len(store.inputs()) == len(inputs)
    assert sorted(r.record_id for r in store.iter_records()) == sorted(record_input)


def _stage_two_batches_then_die(url: str, paths: list[Path]) -> None:
    from pipeline.batches import clean_batch, iter_ingest_batches, stage_ingest_batch

    store = open_store(url)
    run = stages.start_run()
    store.begin_run(run)
    batches = iter_ingest_batches(paths, store.known_input_hashes(), 5)
    for _ in range(2):
        batch = next(batches)
        stage_ingest_batch(store, run.run_id, batch, clean_batch(batch.records))
    os.kill(os.getpid(), signal.SIGKILL)


def test_run_killed_after_staging_two_batches_leaves_store_as_before(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from pipeline.store import records_table

    url = f"sqlite:///{tmp_path / 'review.db'}"
    seeds = sorted(SEEDS.glob("*.txt"))
    _ingest_and_commit(url, seeds[:1])
    before = _view(open_store(url))
    child = multiprocessing.get_context("spawn").Process(target=_stage_two_batches_then_die, args=(url, seeds))
    child.start()
    child.join(120)
    assert child.exitcode == -signal.SIGKILL
    store = open_store(url)
    assert _view(store) == before

    def rows_on_disk() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(records_table)).scalar_one())

    assert rows_on_disk() == before[0] + 10  # the dead run's two batches are there, unseen
    run = stages.start_run()
    store.begin_run(run)  # ... until the next run begins
    assert rows_on_disk() == before[0] and _view(store) == before


# ---------------------------------------------------------------------------------------------------
# schema 1 -> 2


def _write_schema_1_store(url: str, runs: list[list[Record]]) -> None:
    """A store as schema 1 wrote it (its tables as they were, frozen here): records committed run by run,
    each run's new records flagged against the stored ones in memory, the stored ones' flags not saved."""
    import dataclasses
    import json

    import sqlalchemy as sa

    from pipeline.clean import flag_truncated_prefixes

    old = sa.MetaData()
    sa.Table("meta", old, sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False))
    inputs = sa.Table(
        "inputs", old, sa.Column("sha256", sa.String(64), primary_key=True), sa.Column("path", sa.Text, nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False), sa.Column("encoding", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False), sa.Column("n_records", sa.Integer, nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False), sa.Column("run_id", sa.String(40), nullable=False),
    )
    records = sa.Table(
        "records", old, sa.Column("record_id", sa.String(40), primary_key=True),
        sa.Column("input_sha256", sa.String(64), nullable=False, index=True), sa.Column("own_id", sa.Text, nullable=False),
        sa.Column("source_format", sa.String(32), nullable=False), sa.Column("source_file", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False), sa.Column("title", sa.Text, nullable=False),
        sa.Column("year", sa.Integer), sa.Column("doi", sa.Text, nullable=False), sa.Column("data", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
    )
    runs_table = sa.Table(
        "runs", old, sa.Column("run_id", sa.String(40), primary_key=True), sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32), nullable=False), sa.Column("package_version", sa.String(32), nullable=False),
        sa.Column("inputs", sa.Text, nullable=False), sa.Column("counts", sa.Text, nullable=False),
    )
    engine = sa.create_engine(url)
    old.create_all(engine)
    stored: list[Record] = []
    with engine.begin() as conn:
        conn.execute(old.tables["meta"].insert().values(key="schema_version", value="1"))
        for number, new in enumerate(runs, start=1):
            run_id = f"run{number}"
            new = [dataclasses.replace(r, flags=list(r.flags)) for r in new]
            flag_truncated_prefixes([*[dataclasses.replace(r, flags=list(r.flags)) for r in stored], *new])
            sha = f"{number:064d}"
            conn.execute(inputs.insert().values(sha256=sha, path=f"file{number}", source_format="text", encoding="utf-8",
                                                size_bytes=1, n_records=len(new), added_at=f"2025-01-0{number}", run_id=run_id))
            conn.execute(records.insert(), [
                {"record_id": r.record_id, "input_sha256": sha, "own_id": r.id, "source_format": r.source_format,
                 "source_file": r.source_file, "position": r.position, "title": r.title, "year": r.year, "doi": r.doi,
                 "data": json.dumps(dataclasses.asdict(r), ensure_ascii=False, sort_keys=True), "run_id": run_id}
                for r in new
            ])
            conn.execute(runs_table.insert().values(run_id=run_id, started_at=f"2025-01-0{number}", finished_at="x",
                                                    package_version="0", inputs="[]", counts="{}"))
            stored += new
    engine.dispose()


def _exercise_migration(url: str) -> None:
    import dataclasses

    import sqlalchemy as sa

    from pipeline.batches import clean_batch
    from pipeline.clean import flag_truncated_prefixes
    from pipeline.store import _add_missing_columns

    records, _, _ = _records_and_inputs(sorted(SEEDS.glob("001_*.txt")))
    cleaned = clean_batch(records)
    full = next(r for r in cleaned if r.id == "1")  # records 5, 6, 20 and 21 are its truncated copies
    _write_schema_1_store(url, [[r for r in cleaned if r is not full], [full]])
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        stored = [data for (data,) in conn.exec_driver_sql("SELECT data FROM records")]
    _add_missing_columns(engine)  # a migration killed after adding the columns is simply done again
    engine.dispose()
    assert len(stored) == 34 and not any(f"prefix_of:{full.record_id}" in data for data in stored)

    store = open_store(url)
    assert store.schema_version() == SCHEMA_VERSION == 2
    migrated = list(store.iter_records())
    reference = [dataclasses.replace(r, flags=[f for f in r.flags if not f.startswith("prefix_of:")]) for r in migrated]
    flag_truncated_prefixes(reference)
    assert migrated == reference  # the whole corpus flagged, as schema 1 did in memory on every run
    by_id = {r.id: r for r in migrated}
    for own in ("5", "6", "20", "21"):
        assert f"prefix_of:{full.record_id}" in by_id[own].flags
    assert [r.run_id for r in store.runs()] == ["run1", "run2"]
    projection = store.record_projection(["id", "flags", "has_abstract", "authors"])
    assert projection["flags"].tolist() == ["; ".join(r.flags) for r in migrated]
    assert projection["authors"].tolist() == ["; ".join(r.authors) for r in migrated]
    assert projection["has_abstract"].all()
    run = stages.start_run()  # and the migrated store takes new runs
    store.begin_run(run)
    store.commit_run(run)
    assert len(open_store(url).runs()) == 3


def test_sqlite_schema_1_store_is_migrated(tmp_path: Path) -> None:
    _exercise_migration(f"sqlite:///{tmp_path / 'review.db'}")


def _database(server_url: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def test_derived_tables_are_written_and_read_a_slice_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A million groups and codes are committed and read back in slices (never as a million Python rows): the
    tables equal what was written, however the slices fall. Real records: the seeds and a real Embase export."""
    import pandas as pd

    from pipeline import store as store_module
    from pipeline.store import assignments_table, groups_table

    store, groups, machine = _real_groups_and_codes(f"sqlite:///{tmp_path / 'review.db'}")
    monkeypatch.setattr(store_module, "_PROJECTION_CHUNK", 7)  # _replace inserts 7 rows at a time
    store.commit_run(stages.start_run(), groups=groups, assignments=machine)
    for table, written in ((groups_table, groups), (assignments_table, machine)):
        whole = store.table_frame(table, rows_per_read=10**7)
        pd.testing.assert_frame_equal(store.table_frame(table, rows_per_read=7), whole)
        key = [column.name for column in table.primary_key.columns]
        expected = written[whole.columns.drop("run_id")].sort_values(key, ignore_index=True)
        assert len(whole) == len(written) > 7 and whole["run_id"].nunique() == 1
        pd.testing.assert_frame_equal(whole.drop(columns="run_id"), expected, check_dtype=False)


def _real_groups_and_codes(url: str) -> tuple[Store, "pd.DataFrame", "pd.DataFrame"]:
    """A store holding the seeds and a real Embase export, with their dedup groups and machine codes (not committed)."""
    from pipeline.assign import assign
    from pipeline.codebook import load_codebook

    _ingest_and_commit(url, [*sorted(SEEDS.glob("*.txt")), EMBASE])
    store, codebook = open_store(url), load_codebook(CODEBOOK)
    frame = stages.corpus_frame(store)
    groups = stages.dedupe_outcome(stages.dedupe_groups(frame, None), frame).groups
    return store, groups, assign(stages.code_stage(stages.studies_stage(frame, groups, codebook), codebook).hits)


def test_a_commit_given_the_previous_tables_writes_only_the_rows_that_differ(tmp_path: Path) -> None:
    """An update's commit deletes and inserts only the groups and codes that changed; the tables then equal the
    run's frames. When another run committed after the previous tables were read, everything is written anew."""
    import pandas as pd

    from pipeline.store import assignments_table, groups_table

    store, groups, machine = _real_groups_and_codes(f"sqlite:///{tmp_path / 'review.db'}")
    first = stages.start_run()
    store.commit_run(first, groups=groups, assignments=machine)
    # The update: a group's keep flag flips, a code's confidence changes, a code goes, a new record arrives.
    new_groups = groups.copy()
    new_groups.loc[3, "keep"] = not new_groups.loc[3, "keep"]
    new_groups = pd.concat([new_groups, new_groups.iloc[[0]].assign(record_id="r-new", duplicate_group="g-new")])
    new_machine = machine.drop(index=[5]).copy()
    new_machine.loc[8, "confidence"] = 0.123
    second = stages.start_run()
    previous = store.derived_tables()
    assert previous.committed_runs == 2  # the ingest's run and the first
    store.commit_run(second, groups=new_groups, assignments=new_machine, previous=previous)
    for table, frame, changed in ((groups_table, new_groups, {"r-new", groups.loc[3, "record_id"]}),
                                  (assignments_table, new_machine, {machine.loc[8, "assignment_id"]})):
        stored = store.table_frame(table)
        key = table.primary_key.columns.keys()[0]
        expected = frame[stored.columns.drop("run_id")].sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(stored.drop(columns="run_id"), expected, check_dtype=False)
        assert set(stored.loc[stored["run_id"] == second.run_id, key]) == changed
    assert machine.loc[5, "assignment_id"] not in set(store.table_frame(assignments_table)["assignment_id"])

    stale = store.derived_tables()
    store.commit_run(stages.start_run(), groups=groups, assignments=machine)  # another run commits meanwhile
    third = stages.start_run()
    store.commit_run(third, groups=new_groups, assignments=new_machine, previous=stale)
    assert set(store.table_frame(groups_table)["run_id"]) == {third.run_id}  # written anew: stale tables unused
    assert set(store.table_frame(assignments_table)["run_id"]) == {third.run_id}
