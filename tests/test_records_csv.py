"""records.csv: written whole as every CSV output is written, and spliced by an update into the very bytes a
whole write gives, on real exports (the seeds, IEEE, Embase and PubMed files) in a real store."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from pipeline import records_csv, stages
from pipeline.batches import clean_batch, flag_truncated_prefixes_in_store, iter_ingest_batches
from pipeline.io import write_csv
from pipeline.records_csv import RecordsCsvFiles, usable_layout
from pipeline.store import Store, open_store

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO.parent / "shared" / "data" / "exports"
FIRST = [*sorted((REPO / "corpus" / "seeds").glob("*.txt")), EXPORTS / "csv" / "litstudy_ieee.csv",
         EXPORTS / "medline" / "biopython_pubmed_result2.txt"]
ADDED = EXPORTS / "csv" / "asreview_embase.csv"


def _files(folder: Path) -> RecordsCsvFiles:
    return RecordsCsvFiles(folder / "records.csv", folder / "pending.csv", folder / "layout.npz",
                           folder / "pending_layout.npz")


def _stage(store: Store, run_id: str, paths: list[Path]) -> None:
    for batch in iter_ingest_batches(paths, store.known_input_hashes(), 50):
        store.stage_records(run_id, clean_batch(batch.records), batch.record_input)
        store.stage_inputs(run_id, batch.new_inputs)


def _publish(files: RecordsCsvFiles) -> None:
    os.replace(files.pending, files.published)
    os.replace(files.pending_layout, files.layout)


@pytest.fixture
def first_run(tmp_path: Path) -> tuple[Store, RecordsCsvFiles]:
    """A store with one committed run and the records.csv it published."""
    store = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    run = stages.start_run()
    store.begin_run(run)
    _stage(store, run.run_id, FIRST)
    flag_truncated_prefixes_in_store(store, run.run_id)
    files = _files(tmp_path)
    stages._records_csv_and_dedupe_frame(store, run.run_id, files)
    store.commit_run(run)
    _publish(files)
    return store, files


def test_a_whole_records_csv_is_what_write_csv_writes_and_neutralises_formulas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_csv, "ROWS_PER_CHUNK", 7)  # rows serialised 7 at a time
    store = open_store(f"sqlite:///{tmp_path / 'review.db'}")
    run = stages.start_run()
    store.begin_run(run)
    _stage(store, run.run_id, FIRST)
    corpus = stages.corpus_frame(store, run.run_id)
    corpus.loc[3, "title"] = "=HYPERLINK(\"http://x\")"
    write_csv(corpus, tmp_path / "write_csv.csv")
    layout = records_csv.write_whole(corpus, tmp_path / "records.csv", 1)
    written = (tmp_path / "records.csv").read_bytes()
    assert written == (tmp_path / "write_csv.csv").read_bytes()
    assert b"'=HYPERLINK" in written
    assert len(layout) == len(corpus) > 50 and int(layout.offsets[-1]) == len(written)
    row = written[layout.offsets[3] : layout.offsets[4]].decode("utf-8")
    assert corpus.loc[3, "record_id"] in row and row.endswith("\r\n")


def test_an_update_splices_the_last_file_into_the_bytes_a_whole_write_gives(
    first_run: tuple[Store, RecordsCsvFiles], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, files = first_run
    monkeypatch.setattr(records_csv, "COPY_BYTES", 1000)  # the last file's rows copied 1,000 bytes at a time
    run = stages.start_run()
    store.begin_run(run)
    _stage(store, run.run_id, [ADDED])  # a new file: its rows go between the others' (corpus order is by file)
    # and a record whose abstract extends a stored one's: the stored record is flagged a truncated copy
    stored = next(r for r in store.iter_records() if len(r.abstract) > 200)
    longer = dataclasses.replace(stored, record_id="r-longer-copy", id="copy-1", source_file="zz_update.ris",
                                 abstract=stored.abstract + " And a further sentence the stored copy lost.")
    store.stage_records(run.run_id, [longer], {"r-longer-copy": next(iter(store.known_input_hashes()))})
    flag_truncated_prefixes_in_store(store, run.run_id)
    changed = store.record_ids_changed_by(run.run_id)
    assert stored.record_id in changed and "r-longer-copy" in changed

    def no_whole_write(*args: object) -> None:
        raise AssertionError("the update wrote records.csv whole")

    with monkeypatch.context() as patch:
        patch.setattr(records_csv, "write_whole", no_whole_write)
        frame = stages._records_csv_and_dedupe_frame(store, run.run_id, files)
    corpus = stages.corpus_frame(store, run.run_id)
    once_committed = store.committed_runs() + 1
    whole = records_csv.write_whole(corpus, tmp_path / "whole.csv", once_committed)
    assert files.pending.read_bytes() == (tmp_path / "whole.csv").read_bytes()
    spliced = usable_layout(files.pending_layout, files.pending, once_committed)
    assert spliced is not None and np.array_equal(spliced.offsets, whole.offsets)
    assert np.array_equal(spliced.record_ids, whole.record_ids)
    assert list(frame["record_id"]) == list(corpus["record_id"])
    assert "truncated" in corpus.loc[corpus["record_id"] == stored.record_id, "flags"].item()


def test_the_layout_is_trusted_only_for_the_published_file_and_the_runs_it_knows(
    first_run: tuple[Store, RecordsCsvFiles],
) -> None:
    store, files = first_run
    committed = store.committed_runs()
    assert usable_layout(files.layout, files.published, committed) is not None
    assert usable_layout(files.layout, files.published, committed + 1) is None  # a run committed since
    stat = files.published.stat()
    os.utime(files.published, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # edited by hand
    assert usable_layout(files.layout, files.published, committed) is None
    os.utime(files.published, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert usable_layout(files.layout, files.published, committed) is not None
    files.layout.write_bytes(files.layout.read_bytes()[:200])  # truncated
    assert usable_layout(files.layout, files.published, committed) is None
    files.layout.write_bytes(b"not a layout")
    assert usable_layout(files.layout, files.published, committed) is None


def test_an_update_without_a_trusted_layout_writes_the_file_whole(
    first_run: tuple[Store, RecordsCsvFiles], tmp_path: Path
) -> None:
    store, files = first_run
    with files.published.open("ab") as handle:
        handle.write(b"a reviewer's note\r\n")
    run = stages.start_run()
    store.begin_run(run)
    _stage(store, run.run_id, [ADDED])
    stages._records_csv_and_dedupe_frame(store, run.run_id, files)
    records_csv.write_whole(stages.corpus_frame(store, run.run_id), tmp_path / "whole.csv", 3)
    assert files.pending.read_bytes() == (tmp_path / "whole.csv").read_bytes()
