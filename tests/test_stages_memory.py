"""The flow's memory-bounding mechanisms give the results of the plain in-process path: the corpus pass run in a
child process (pipeline/subprocess_stage.py, stages.corpus_pass), the per-batch reads of study records from the
store (store.record_projection_of, stages.study_records), the assembly of study batches (stages.studies_merged_in_order),
the studies kept on disk (pipeline/study_table.py) and rule coding batch by batch with its cache entries staged.
On real records: the bundled seeds (seed 001 repeats itself, truncated) and three small real exports."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline import stages
from pipeline.batches import clean_batch, flag_truncated_prefixes_in_store, iter_ingest_batches
from pipeline.codebook import Codebook, load_codebook
from pipeline.dedupe import DedupeIndex, deduplicate, duplicates_sheet, iter_duplicates_sheet
from pipeline.errors import ReviewError
from pipeline.io import write_csv, write_csv_parts
from pipeline.records_csv import RecordsCsvFiles
from pipeline.runner import group_batches
from pipeline.store import Store, coding_cache_table, open_store
from pipeline.study_table import SpilledTexts, StudyTable, StudyTableWriter, study_slices
from pipeline.subprocess_stage import release_memory, run_in_child

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "corpus" / "seeds"
EXPORTS = REPO.parent / "shared" / "data" / "exports"
INPUTS = [
    *sorted(SEEDS.glob("*.txt")),
    EXPORTS / "csv" / "litstudy_ieee.csv",
    EXPORTS / "csv" / "asreview_embase.csv",
    EXPORTS / "medline" / "biopython_pubmed_result2.txt",
]


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook(REPO / "codebook" / "school_to_school.yaml")


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A store whose records are staged by a running run (as the flow has them at dedupe): (url, run id)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'review.db'}"
    store = open_store(url)
    run = stages.start_run()
    store.begin_run(run)
    for batch in iter_ingest_batches(INPUTS, store.known_input_hashes(), 50):
        store.stage_records(run.run_id, clean_batch(batch.records), batch.record_input)
        store.stage_inputs(run.run_id, batch.new_inputs)
    flag_truncated_prefixes_in_store(store, run.run_id)
    return url, run.run_id


def _csv_files(folder: Path) -> RecordsCsvFiles:
    """records.csv written into `folder`, with no last file to splice."""
    return RecordsCsvFiles(folder / "published.csv", folder / "records.csv", folder / "layout.npz",
                           folder / "pending_layout.npz")


def _corpus_pass(url: str, run_id: str, codebook: Codebook, folder: Path, *, child: bool) -> stages.CorpusPass:
    folder.mkdir()
    args = (url, run_id, codebook, folder / "dedupe.index", folder / "pending.index", _csv_files(folder),
            folder / "sheet.csv")
    return run_in_child(stages.corpus_pass, *args) if child else stages.corpus_pass(*args)


def test_corpus_pass_in_a_child_matches_the_in_process_path(
    staged: tuple[str, str], codebook: Codebook, tmp_path: Path
) -> None:
    url, run_id = staged
    here = _corpus_pass(url, run_id, codebook, tmp_path / "here", child=False)
    there = _corpus_pass(url, run_id, codebook, tmp_path / "child", child=True)

    assert here.dedupe.counts["studies"] < here.dedupe.counts["records"]  # the corpus has real duplicates
    pd.testing.assert_frame_equal(there.dedupe.groups, here.dedupe.groups)
    assert there.dedupe.sheet.empty and here.dedupe.sheet.empty  # written, not handed back
    assert (tmp_path / "child" / "sheet.csv").read_bytes() == (tmp_path / "here" / "sheet.csv").read_bytes()
    pd.testing.assert_series_equal(there.signatures, here.signatures)
    assert there.dedupe.counts == here.dedupe.counts and there.identified == here.identified
    assert there.dedupe.records.empty  # no corpus text comes back, nor any buffer of it
    assert there.dedupe.records["title"].array._pa_array.nbytes == 0
    assert (tmp_path / "child" / "records.csv").read_bytes() == (tmp_path / "here" / "records.csv").read_bytes()
    assert _index_state(tmp_path / "child" / "pending.index") == _index_state(tmp_path / "here" / "pending.index")

    # ... and both are what the flow computed before with the corpus frame in its own process
    store = open_store(url)
    corpus = stages.corpus_frame(store, run_id)
    index = DedupeIndex()
    before = stages.dedupe_stage(corpus, store.dedupe_decisions(), index=index)  # raw abstracts, no keys column
    index.save(tmp_path / "before.index")
    assert _index_state(tmp_path / "before.index") == _index_state(tmp_path / "child" / "pending.index")
    pd.testing.assert_frame_equal(there.dedupe.groups, before.groups)
    assert len(before.sheet) > 0
    write_csv(before.sheet, tmp_path / "before_sheet.csv")
    assert (tmp_path / "child" / "sheet.csv").read_bytes() == (tmp_path / "before_sheet.csv").read_bytes()
    pd.testing.assert_series_equal(there.signatures, stages.study_signatures(corpus, before.groups, codebook))
    assert there.identified == stages.identified_by_source(corpus)


def _merged(built: list[pd.DataFrame], reused: pd.DataFrame) -> pd.DataFrame:
    """stages.studies_merged_in_order's parts as one frame."""
    parts = list(stages.studies_merged_in_order(built, reused))
    return pd.concat(parts, ignore_index=True) if parts else reused.reset_index(drop=True)


def test_studies_built_from_batches_read_from_the_store_equal_those_of_the_whole_corpus(
    staged: tuple[str, str], codebook: Codebook, tmp_path: Path
) -> None:
    url, run_id = staged
    store = open_store(url)
    corpus = stages.corpus_frame(store, run_id)
    groups = stages.dedupe_stage(corpus, None).groups
    whole = stages.studies_stage(corpus, groups, codebook)
    assert (whole["records"] > 1).any()  # merged studies are part of the comparison

    batches = group_batches(groups, 10)
    assert len(batches) > 3
    built = [stages.studies_stage(stages.study_records(store, b["record_id"], run_id), b, codebook) for b in batches]
    pd.testing.assert_frame_equal(_merged(built, pd.DataFrame()), whole)

    # reused studies (the cache) land among the built ones in study_id order
    reused = whole.iloc[::3]
    todo = groups[~groups["duplicate_group"].isin(set(reused["study_id"]))]
    rebuilt = [stages.studies_stage(stages.study_records(store, b["record_id"], run_id), b, codebook)
               for b in group_batches(todo, 10)]
    pd.testing.assert_frame_equal(_merged(rebuilt, reused), whole)
    # ... and so does a study table written part by part as the batches come
    with StudyTableWriter(tmp_path / "studies.parquet", empty=whole.iloc[:0]) as writer:
        for part in stages.studies_merged_in_order(iter(rebuilt), reused.reset_index(drop=True)):
            writer.write(part)
    assert writer.table.rows == len(whole)
    pd.testing.assert_frame_equal(writer.table.read(), whole)
    # only reused studies, and none at all
    pd.testing.assert_frame_equal(_merged([], whole), whole)
    with StudyTableWriter(tmp_path / "none.parquet", empty=whole.iloc[:0]) as writer:
        pass
    assert len(writer.table) == 0 and writer.table.read().columns.tolist() == whole.columns.tolist()


def test_corpus_frame_reorders_by_slicing_runs_and_gives_the_sorted_rows(
    staged: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, run_id = staged
    projection = open_store(url).record_projection(stages.CORPUS_COLUMNS, run_id=run_id)
    keys = ["source_file", "position", "record_id"]
    expected = projection.sort_values(keys, kind="stable").reset_index(drop=True)
    order = projection[keys].sort_values(keys, kind="stable").index.to_numpy()
    assert 1 < len(np.flatnonzero(np.diff(order) != 1)) < stages.MAX_ORDER_RUNS  # whole files move: sliced
    pd.testing.assert_frame_equal(stages.corpus_frame(open_store(url), run_id), expected)
    shuffled = np.random.default_rng(7).permutation(len(projection))
    expected = projection.iloc[shuffled].reset_index(drop=True)
    pd.testing.assert_frame_equal(stages.rows_in_order(projection, shuffled), expected)  # sliced
    monkeypatch.setattr(stages, "MAX_ORDER_RUNS", 2)
    pd.testing.assert_frame_equal(stages.rows_in_order(projection, shuffled), expected)  # copied
    pd.testing.assert_frame_equal(stages.rows_in_order(projection, np.array([], dtype=int)), projection.iloc[:0])


def test_record_projection_of_reads_just_those_records_in_store_order(staged: tuple[str, str]) -> None:
    url, run_id = staged
    store: Store = open_store(url)
    columns = ["record_id", "title", "authors", "year", "abstract", "flags"]
    everything = store.record_projection(columns, run_id=run_id)
    wanted = everything["record_id"].iloc[::-7].tolist() + ["r-not-in-the-store"]
    some = store.record_projection_of(wanted, columns, run_id=run_id)
    expected = everything[everything["record_id"].isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(some, expected)
    assert store.record_projection_of(wanted, columns).empty  # the running run's records are invisible without its id
    with pytest.raises(ValueError, match="unknown projection column"):
        store.record_projection_of(wanted, ["record_id", "nonsense"])


def _whole_studies(url: str, run_id: str, codebook: Codebook) -> tuple[pd.DataFrame, pd.Series]:
    store = open_store(url)
    corpus = stages.corpus_frame(store, run_id)
    groups = stages.dedupe_stage(corpus, None).groups
    return stages.studies_stage(corpus, groups, codebook), stages.study_signatures(corpus, groups, codebook)


def test_study_table_gives_back_the_studies_whole_by_column_and_in_slices(
    staged: tuple[str, str], codebook: Codebook, tmp_path: Path
) -> None:
    whole, signatures = _whole_studies(*staged, codebook)
    table = StudyTable.write(whole, tmp_path / "pending" / stages.STUDY_CACHE_NAME, signatures)

    assert len(table) == len(whole) > 20 and table.columns == list(whole.columns)
    pd.testing.assert_frame_equal(table.read(), whole)
    pd.testing.assert_frame_equal(table.read(["study_id", "records"]), whole[["study_id", "records"]])
    columns = list(stages.CODING_COLUMNS)
    from_table, from_frame = list(study_slices(table, columns, 7)), list(study_slices(whole, columns, 7))
    assert [len(part) for part in from_table] == [len(part) for part in from_frame]
    for part, expected in zip(from_table, from_frame, strict=True):
        pd.testing.assert_frame_equal(part, expected)  # same rows, same index: slices line up with whole reads
    # the file is the next run's studies cache: every study is reusable while its signature holds
    pd.testing.assert_frame_equal(stages.reusable_studies(stages.load_study_cache(table.path), signatures), whole)
    changed = signatures.copy()
    changed.iloc[0] = "another signature"
    assert len(stages.reusable_studies(stages.load_study_cache(table.path), changed)) == len(whole) - 1


def test_coding_batch_by_batch_with_a_staged_cache_equals_coding_at_once(
    staged: tuple[str, str], codebook: Codebook, tmp_path: Path
) -> None:
    whole, _ = _whole_studies(*staged, codebook)
    whole.loc[whole.index[::11], "abstract"] = ""  # studies the coder sets aside, in several batches
    whole = stages.with_skip_reasons(whole)
    at_once = stages.code_stage(whole, codebook)
    assert len(at_once.hits) > 10 and at_once.set_aside["no abstract"] >= 4
    table = StudyTable.write(whole, tmp_path / stages.STUDY_CACHE_NAME)
    store = open_store(f"sqlite:///{tmp_path / 'cache.db'}")

    def code_in_batches(run_id: str) -> stages.CodingOutcome:
        tally = stages.CodingTally()
        for part in table.slices(stages.CODING_COLUMNS, 9):
            plan = stages.plan_coding(part, codebook, store.cached_hits(set(stages.coding_cache_keys(part, codebook))))
            store.stage_coding_cache(run_id, tally.add(plan, stages.code_batch(plan.todo, codebook)))
        return tally.outcome()

    first = stages.start_run()
    store.begin_run(first)
    batched = code_in_batches(first.run_id)
    pd.testing.assert_frame_equal(batched.hits, at_once.hits)
    assert batched.set_aside == at_once.set_aside and batched.coded_now == len(whole)
    keys = set(at_once.new_cache)
    assert store.cached_hits(keys) == {}  # staged entries count only once their run commits
    store.commit_run(first)
    assert store.cached_hits(keys) == at_once.new_cache

    second = stages.start_run()
    store.begin_run(second)
    again = code_in_batches(second.run_id)
    assert again.coded_now == 0 and again.set_aside == at_once.set_aside
    order = ["id", "code", "start", "end"]
    pd.testing.assert_frame_equal(
        again.hits.sort_values(order, ignore_index=True), at_once.hits.sort_values(order, ignore_index=True)
    )

    # a run that never commits leaves no cache entry behind once the next run begins
    store.stage_coding_cache(second.run_id, {"f" * 64: "[]"})
    store.begin_run(stages.start_run())
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(coding_cache_table.c.cache_key).where(coding_cache_table.c.cache_key == "f" * 64)).all() == []
    assert store.cached_hits(keys) == at_once.new_cache


def test_duplicates_sheet_made_and_written_in_parts_is_the_whole_sheet(staged: tuple[str, str], tmp_path: Path) -> None:
    corpus = stages.corpus_frame(open_store(staged[0]), staged[1])
    for frame in (corpus, corpus.drop(columns="id").assign(record_id=corpus["record_id"].where(corpus.index % 4 > 0, ""))):
        result = deduplicate(frame)
        whole = duplicates_sheet(result, frame)
        parts = list(iter_duplicates_sheet(result, frame, chunk_pairs=3))
        assert len(whole) > 6 and len(parts) == -(-len(whole) // 3)
        assert (whole["status"] == "merged").any() and (whole["id_a"] != "").all()
        pd.testing.assert_frame_equal(pd.concat(parts), whole)  # each part indexed from its first row's position
        write_csv(whole, tmp_path / "whole.csv")
        assert write_csv_parts(iter(parts), tmp_path / "parts.csv") == len(whole)
        assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()


def _index_state(path: Path) -> tuple[object, ...]:
    """What a saved dedupe index holds (pickle's bytes may differ with the objects' sharing, not their values)."""
    index = DedupeIndex.load(path)
    assert index.size > 0
    names = ("title", "authors", "doi", "year", "abstract", "venue_id")
    features = {name: getattr(index.features, name) for name in names}
    codes = {kind: array.tolist() for kind, array in index.keys.codes.items()}
    return index.record_ids, features, codes, index.keys.order.tolist()


def _log_and_fail(message: str) -> None:
    logging.getLogger("pipeline.dedupe").info("child says %s", message)
    raise ReviewError(f"{message}: fix the input.")


def _log_and_return(message: str) -> str:
    logging.getLogger("pipeline.dedupe").info("child says %s", message)
    return message.upper()


def test_run_in_child_replays_the_childs_log_and_raises_its_errors(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="pipeline"):
        assert run_in_child(_log_and_return, "hello") == "HELLO"
    assert ("pipeline.dedupe", logging.INFO, "child says hello") in caplog.record_tuples
    with pytest.raises(ReviewError, match="broken: fix the input"):
        run_in_child(_log_and_fail, "broken")
    release_memory()  # harmless wherever it runs


def _wait_for_flag(flag: str) -> bool:
    """Logs that it waits, then waits (at most a minute) for the parent to create `flag` on seeing that line."""
    import time

    logging.getLogger("pipeline.topics").info("waiting for %s", Path(flag).name)
    for _ in range(600):
        if Path(flag).exists():
            return True
        time.sleep(0.1)
    return False


def test_run_in_child_relays_the_childs_log_while_it_runs(tmp_path: Path) -> None:
    """The child's progress reaches the flow's log as it is made, not when the child ends: here the child waits
    for an answer to its own log line, which only a live relay can give."""
    flag = tmp_path / "seen"
    seen: list[tuple[str, int, str]] = []

    class Answer(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.name, record.levelno, record.getMessage()))
            if record.getMessage() == "waiting for seen":
                flag.touch()

    logger = logging.getLogger("pipeline")
    handler, level = Answer(logging.INFO), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert run_in_child(_wait_for_flag, str(flag)) is True
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert seen == [("pipeline.topics", logging.INFO, "waiting for seen")]


def test_a_study_table_whose_writing_fails_leaves_no_file(tmp_path: Path) -> None:
    studies = pd.DataFrame({"study_id": ["s1", "s2"], "title": ["A", "B"]})
    target = tmp_path / "studies.parquet"
    with pytest.raises(RuntimeError, match="the build failed"):
        with StudyTableWriter(target) as writer:
            writer.write(studies)
            raise RuntimeError("the build failed")
    assert not target.exists() and list(tmp_path.iterdir()) == []
    with StudyTableWriter(target) as writer:
        writer.write(studies)
        writer.write(pd.DataFrame({"study_id": ["s3"], "title": [None]}))  # an all-empty column takes the first type
    pd.testing.assert_frame_equal(writer.table.read(), pd.DataFrame({"study_id": ["s1", "s2", "s3"], "title": ["A", "B", None]}))


def test_spilled_texts_read_back_each_row_in_the_order_asked(tmp_path: Path) -> None:
    texts = ["Ein Überblick", None, "", "ascii only", float("nan"), "日本語の要旨 — with a dash"]
    table = StudyTable.write(pd.DataFrame({"study_id": [f"s{i}" for i in range(6)], "abstract": texts}),
                             tmp_path / "studies.parquet")
    spilled = SpilledTexts.from_table(table, "abstract")
    expected = ["Ein Überblick", "", "", "ascii only", "", "日本語の要旨 — with a dash"]
    assert len(spilled) == 6
    assert spilled.take(np.arange(6)) == expected
    assert spilled.take(np.array([5, 0, 5, 3])) == [expected[5], expected[0], expected[5], expected[3]]
    assert spilled.take(np.array([], dtype=np.int64)) == []
    spilled.close()


def test_exports_with_the_abstracts_spilled_to_disk_are_byte_identical(
    staged: tuple[str, str], codebook: Codebook, tmp_path: Path
) -> None:
    from pipeline.assign import assign
    from pipeline.export import write_exports
    from pipeline.synth import STUDY_COLUMNS, build_matrix

    whole, signatures = _whole_studies(*staged, codebook)
    assignments = assign(stages.code_stage(whole, codebook).hits, None)
    table = StudyTable.write(whole, tmp_path / stages.STUDY_CACHE_NAME, signatures)
    assert whole["abstract"].fillna("").str.len().gt(500).sum() > 10  # real abstracts, some long
    in_memory = build_matrix(assignments, table.read(STUDY_COLUMNS), codebook)
    spilled = SpilledTexts.from_table(table, "abstract")
    kept = [c for c in STUDY_COLUMNS if c != "abstract"]
    from_disk = build_matrix(assignments, table.read(kept), codebook, spilled={"abstract": spilled})

    pd.testing.assert_frame_equal(from_disk.studies, in_memory.studies)
    chunks = pd.concat(list(from_disk.iter_studies(7)), ignore_index=True)
    pd.testing.assert_frame_equal(chunks, in_memory.studies)
    formats = ("csv", "xlsx", "html")
    one = write_exports(in_memory, None, tmp_path / "memory", formats=formats)
    two = write_exports(from_disk, None, tmp_path / "disk", formats=formats)
    assert [p.name for p in one] == [p.name for p in two] and "evidence_matrix.xlsx" in {p.name for p in two}
    for a, b in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    spilled.close()


def test_an_update_reads_only_the_new_records_abstracts_and_dedupes_as_if_it_read_them_all(
    codebook: Codebook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.dedupe import DedupeIndex as Index

    url = f"sqlite:///{tmp_path / 'review.db'}"
    store = open_store(url)
    first = stages.start_run()
    store.begin_run(first)
    for batch in iter_ingest_batches([*INPUTS[:-2], INPUTS[-1]], store.known_input_hashes(), 50):
        store.stage_records(first.run_id, clean_batch(batch.records), batch.record_input)
        store.stage_inputs(first.run_id, batch.new_inputs)
    flag_truncated_prefixes_in_store(store, first.run_id)
    done = _corpus_pass(url, first.run_id, codebook, tmp_path / "first", child=False)
    store.commit_run(first, groups=done.dedupe.groups)
    index = tmp_path / "first" / "pending.index"

    update = stages.start_run()
    store.begin_run(update)
    (added,) = list(iter_ingest_batches(INPUTS[-2:-1], store.known_input_hashes(), 10_000))  # the Embase export
    store.stage_records(update.run_id, clean_batch(added.records), added.record_input)
    flag_truncated_prefixes_in_store(store, update.run_id)
    new_ids = {r.record_id for r in added.records}

    read: list[set[str]] = []
    streamed: list[list[str]] = []
    real_of, real_iter = Store.record_projection_of, Store.iter_record_projection
    monkeypatch.setattr(Store, "record_projection_of", lambda self, ids, columns, **kw: (
        read.append(set(ids)) if "abstract" in columns else None) or real_of(self, ids, columns, **kw))
    monkeypatch.setattr(Store, "iter_record_projection", lambda self, columns, **kw: (
        streamed.append(list(columns)) or real_iter(self, columns, **kw)))

    def pass_with(folder: str) -> stages.CorpusPass:
        (tmp_path / folder).mkdir()
        return stages.corpus_pass(url, update.run_id, codebook, index, tmp_path / folder / "pending.index",
                                  _csv_files(tmp_path / folder), tmp_path / folder / "sheet.csv")

    fast = pass_with("fast")
    assert read == [new_ids] and len(new_ids) == 6  # only the update's abstracts were read and folded ...
    assert ["record_id", "abstract"] not in streamed  # (the corpus frame for records.csv reads them, once)
    monkeypatch.setattr(Index, "abstract_keys_of", lambda self, ids: {})  # ... not every record's, as before
    slow = pass_with("slow")
    assert ["record_id", "abstract"] in streamed

    assert fast.dedupe.counts["records"] == slow.dedupe.counts["records"] > len(new_ids)
    pd.testing.assert_frame_equal(fast.dedupe.groups, slow.dedupe.groups)
    pd.testing.assert_series_equal(fast.signatures, slow.signatures)
    for name in ("sheet.csv", "records.csv"):
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes()
    assert _index_state(tmp_path / "fast" / "pending.index") == _index_state(tmp_path / "slow" / "pending.index")


def test_coding_loads_spacy_without_torch_and_torch_still_imports_afterwards() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from pipeline.codebook import load_codebook\n"
        "from pipeline import stages\n"
        "import pandas as pd\n"
        f"codebook = load_codebook({str(REPO / 'codebook' / 'school_to_school.yaml')!r})\n"
        "text = 'Schools that collaborate in a partnership report better teacher practice across the trust. ' * 3\n"
        "studies = pd.DataFrame({'study_id': ['s'], 'title': ['School partnerships'], 'abstract': [text], 'flags': ['']})\n"
        "hits = stages.code_stage(studies, codebook).hits\n"
        "assert len(hits) and 'torch' not in sys.modules, sorted(hits['code'])\n"
        "import torch, bertopic\n"
        "print('ok', torch.tensor([1.0]).sum().item())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok 1.0", done.stderr[-2000:]


def test_hits_put_aside_on_disk_come_back_equal(staged: tuple[str, str], codebook: Codebook, tmp_path: Path) -> None:
    whole, _ = _whole_studies(*staged, codebook)
    hits = stages.code_stage(whole, codebook).hits
    assert len(hits) > 10 and hits["evidence"].str.len().max() > 100
    path = stages.put_aside(hits, tmp_path / "pending" / "hits.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(path), hits)
    empty = stages.put_aside(stages.empty_like(hits), tmp_path / "none.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(empty), stages.empty_like(hits))


@pytest.mark.parametrize(("variable", "expected"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_arrow_buffers_come_from_the_system_allocator_unless_the_user_chose_one(variable: str | None, expected: str) -> None:
    import os
    import subprocess
    import sys

    env = {key: value for key, value in os.environ.items() if key != "ARROW_DEFAULT_MEMORY_POOL"}
    if variable:
        env["ARROW_DEFAULT_MEMORY_POOL"] = variable
    script = (
        "import pyarrow, pandas, pipeline\n"
        "frame = pandas.DataFrame({'t': pandas.array(['a' * 100] * 1000, dtype='str')})\n"
        "print(pyarrow.default_memory_pool().backend_name)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == expected, done.stderr[-2000:]


def test_each_study_keeps_its_skip_reason_and_later_stages_read_it_instead_of_the_abstract(
    staged: tuple[str, str], codebook: Codebook
) -> None:
    from pipeline.rules import skip_reason

    whole, _ = _whole_studies(*staged, codebook)
    whole.loc[whole.index[::11], "abstract"] = ""
    whole = stages.with_skip_reasons(whole)
    expected = [skip_reason(str(a or ""), f) for a, f in zip(whole["abstract"], whole["flags"], strict=True)]
    assert whole[stages.SKIP_COLUMN].tolist() == expected and "" in expected and set(expected) != {""}
    assert stages.code_stage_reasons(whole) == stages.code_stage_reasons(whole.drop(columns=stages.SKIP_COLUMN))
    marked = whole.assign(**{stages.SKIP_COLUMN: "empty abstract"})  # what the column says is what counts
    assert stages.code_stage_reasons(marked) == {"no abstract": len(whole)}
    cache = whole.assign(signature="s").drop(columns=stages.SKIP_COLUMN)  # a cache from before the column
    assert stages.reusable_studies(cache, pd.Series("s", index=whole["study_id"])).empty
