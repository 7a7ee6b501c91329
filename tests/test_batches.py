"""Streaming ingest/clean in batches and the bounded-memory truncated-prefix pass, on real data.

Data: the bundled seeds and, by path, ../shared/data/exports (one or more real files per format) and an
OpenAlex API page.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
from pathlib import Path

import pytest

from pipeline import stages
from pipeline.batches import (
    IngestTotals,
    clean_batch,
    flag_truncated_prefixes_in_store,
    iter_ingest_batches,
)
from pipeline.clean import clean_records, flag_truncated_prefixes
from pipeline.errors import InputFileError
from pipeline.records import Record, make_record_id
from pipeline.store import Store, open_store, record_updates_table
from tests.conftest import DATA, SEEDS

EXPORTS = DATA / "exports"
# One or more real files per reader (RIS, CSV, WoS tab and plain text, MEDLINE, ProQuest, EndNote XML,
# BibTeX, a JSON API page) and the seeds (plain text).
FILES = [
    EXPORTS / "ris" / "asysd_zotero_export.ris",
    EXPORTS / "ris" / "asreview_ris_issue_992_rayyan.txt",
    EXPORTS / "csv" / "litsearchr_scopus.csv",
    EXPORTS / "csv" / "asreview_embase.csv",
    EXPORTS / "wos-tab-delimited" / "litsearchr_borealis_WoS_corecollection_final_2.txt",
    EXPORTS / "wos-plaintext" / "metaknowledge_savedrecs.txt",
    EXPORTS / "medline" / "metaknowledge_medline_test.medline",
    EXPORTS / "proquest-text" / "metaknowledge_ProQuest_TestFile.txt",
    EXPORTS / "endnote-xml" / "asysd_zotero_export.xml",
    EXPORTS / "bibtex" / "litsearchr_borealis_scopus_final.bib",
    DATA / "api-responses" / "openalex" / "peneira_works.json",
    *sorted(SEEDS.glob("*.txt")),
]


@pytest.fixture(scope="module")
def reference() -> stages.IngestResult:
    """Today's whole-list ingest, plus a file given twice and one the store already has."""
    return stages.ingest_stage([*FILES, FILES[0]], known_hashes=set())


def _all_batches(paths: list[Path], known: set[str], batch_size: int) -> list:
    return list(iter_ingest_batches(paths, known, batch_size))


@pytest.mark.parametrize("batch_size", [1, 333])
def test_batches_concatenate_to_todays_ingest(reference: stages.IngestResult, batch_size: int) -> None:
    batches = _all_batches([*FILES, FILES[0]], set(), batch_size)
    records = [record for batch in batches for record in batch.records]
    assert len(records) == len(reference.records) > 4500
    assert records == reference.records  # same records, same order, same ids, field by field
    assert {k: v for b in batches for k, v in b.record_input.items()} == reference.record_input
    assert [e for b in batches for e in b.new_inputs] == reference.new_inputs
    assert [p for b in batches for p in b.already_ingested] == reference.already_ingested == [str(FILES[0])]
    sizes = [len(batch.records) for batch in batches]
    assert max(sizes) == batch_size and all(size == batch_size for size in sizes[:-1])
    totals = IngestTotals()
    for batch in batches:
        totals.add(batch)
    assert totals.counts() == reference.counts()


def test_a_file_is_indexed_in_the_batch_that_read_its_last_record() -> None:
    seeds = sorted(SEEDS.glob("*.txt"))
    batches = _all_batches(seeds, set(), 4)
    seen_records: dict[str, int] = {}
    for batch in batches:
        for record in batch.records:
            sha = batch.record_input[record.record_id]
            seen_records[sha] = seen_records.get(sha, 0) + 1
        for entry in batch.new_inputs:
            assert seen_records.get(entry.sha256) == entry.n_records  # all of the file's records are out
    assert sum(e.n_records for b in batches for e in b.new_inputs) == sum(len(b.records) for b in batches)


def test_known_files_are_skipped() -> None:
    seeds = sorted(SEEDS.glob("*.txt"))
    first = _all_batches(seeds[:2], set(), 1000)
    known = {e.sha256 for b in first for e in b.new_inputs}
    again = _all_batches(seeds, known, 1000)
    assert [p for b in again for p in b.already_ingested] == [str(p) for p in seeds[:2]]
    assert {e.path for b in again for e in b.new_inputs} == {str(p) for p in seeds[2:]}
    assert _all_batches(seeds[:2], known, 1000)[0].records == []


def _error_text(call: object) -> str:
    with pytest.raises(InputFileError) as caught:
        call()  # type: ignore[operator]
    return str(caught.value)


@pytest.mark.parametrize(
    ("name", "content"),
    [("empty.ris", b""), ("blank.txt", b" \n\n \n"), ("binary.csv", b"\x00\x01\x02PK\x03"), ("empty.json", b"[]")],
)
def test_bad_input_gives_todays_one_sentence_error(tmp_path: Path, name: str, content: bytes) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    seed = sorted(SEEDS.glob("*.txt"))[0]
    today = _error_text(lambda: stages.ingest_stage([seed, bad], set()))
    assert _error_text(lambda: _all_batches([seed, bad], set(), 5)) == today
    assert str(bad) in today or bad.name in today


def test_a_missing_file_gives_todays_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.ris"
    assert _error_text(lambda: _all_batches([missing], set(), 5)) == _error_text(
        lambda: stages.ingest_stage([missing], set())
    )


@pytest.mark.parametrize(
    ("source", "cut"),
    [
        (EXPORTS / "csv" / "litsearchr_scopus.csv", '\n"unterminated quote, never closed'),
        (EXPORTS / "endnote-xml" / "asysd_zotero_export.xml", None),  # cut in the middle of the XML
    ],
)
def test_readers_stream_records_before_reaching_a_broken_end(tmp_path: Path, source: Path, cut: str | None) -> None:
    """The first batches come out before the reader reaches a problem at the end of the file: the
    readers stream (a reader that read the whole file first would fail before the first batch)."""
    text = source.read_text(encoding="utf-8-sig")
    broken = tmp_path / source.name
    broken.write_text(text + cut if cut is not None else text[: len(text) * 3 // 4], encoding="utf-8")
    batches = iter_ingest_batches([broken], set(), 10)
    first = next(batches)
    assert len(first.records) == 10 and not first.new_inputs
    with pytest.raises(InputFileError):
        for _ in batches:
            pass


def test_clean_batch_is_pure_picklable_and_cleans_like_clean_records() -> None:
    records = [r for b in _all_batches(sorted(SEEDS.glob("*.txt")), set(), 1000) for r in b.records]
    snapshot = [dataclasses.replace(r, flags=list(r.flags), keywords=list(r.keywords)) for r in records]
    cleaned = pickle.loads(pickle.dumps(clean_batch))(pickle.loads(pickle.dumps(records)))
    assert cleaned == list(clean_records(records, find_prefixes=False))
    assert records == snapshot  # the input is not changed
    assert any("truncated" in r.flags for r in cleaned)


# ---------------------------------------------------------------------------------------------------
# truncated prefixes across the corpus, in bounded memory


def _store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'review.db'}")


def _run_with(store: Store, records: list[Record], batch_size: int = 500) -> stages.RunRecord:
    """Begin a run and stage `records` in batches (a record's input is its source file here)."""
    run = stages.start_run()
    store.begin_run(run)
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        store.stage_records(run.run_id, chunk, {r.record_id: _sha(r) for r in chunk})
    return run


def _sha(record: Record) -> str:
    return make_record_id("input", record.source_file)


def _reference(store: Store, run_id: str) -> list[Record]:
    """The in-memory pass on the whole corpus as the run sees it (stored records as committed, the
    run's as staged), in store order."""
    corpus = list(store.iter_records(run_id=run_id))
    flag_truncated_prefixes(corpus)
    return corpus


@pytest.mark.parametrize("max_records", [20_000, 3], ids=["all-at-once", "three-records-at-a-time"])
def test_seed_001_truncated_copies_are_flagged_across_the_corpus(tmp_path: Path, max_records: int) -> None:
    seeds = sorted(SEEDS.glob("*.txt"))
    cleaned = [r for b in _all_batches(seeds, set(), 1000) for r in clean_batch(b.records)]
    exports = [r for b in _all_batches(FILES[:3], set(), 5000) for r in b.records]
    store = _store(tmp_path)
    run = _run_with(store, [*exports, *cleaned])
    expected = _reference(store, run.run_id)
    loaded: list[int] = []
    real_load = store.records_with_prefix_heads

    def counted_load(heads: list[str], **options: object) -> list[Record]:
        records = real_load(heads, **options)  # type: ignore[arg-type]
        loaded.append(len(records))
        return records

    store.records_with_prefix_heads = counted_load  # type: ignore[method-assign]
    outcome = flag_truncated_prefixes_in_store(store, run.run_id, heads_per_query=7, max_records=max_records)
    assert list(store.iter_records(run_id=run.run_id)) == expected
    shared = store.shared_prefix_heads([h for heads in store.iter_staged_prefix_heads(run.run_id) for h in heads],
                                       run_id=run.run_id)
    assert max(loaded) <= max(max_records, max(shared.values()))  # a slice, or one head's records
    seed_001 = [r for r in expected if r.source_file.startswith("001_")]
    assert len(seed_001) == 34 and all("truncated" in r.flags for r in seed_001)
    prefixed = [r for r in expected if any(f.startswith("prefix_of:") for f in r.flags)]
    assert outcome.staged_changed == len(prefixed) >= 6 and outcome.committed_changed == 0
    # no ties among the seeds: the result is also today's (new records after the stored ones)
    today = [dataclasses.replace(r, flags=list(r.flags)) for r in [*exports, *cleaned]]
    flag_truncated_prefixes(today)
    assert sorted(today, key=lambda r: r.record_id) == sorted(expected, key=lambda r: r.record_id)
    assert list(store.iter_records()) == []  # nothing visible before the commit


@pytest.fixture(scope="module")
def real_abstracts() -> list[Record]:
    """About 9,000 real records from the exports (no cleaning needed to compare abstracts); the same
    papers exported in several formats give identical abstracts, so ties between extensions are real."""
    slow = {"asysd_zotero_export.bib", "litsearchr_borealis_WoS_corecollection_final_2.bib"}  # 5 s between them
    paths = sorted(p for p in EXPORTS.rglob("*") if p.is_file() and p.name not in slow)
    # `extra` (cited references, affiliations) is left out: the pass never reads it and it triples the JSON
    records = [dataclasses.replace(r, extra={}) for b in _all_batches(paths, set(), 5000) for r in b.records]
    assert len(records) > 9000
    return records


def _copy(record: Record, tag: str, abstract: str) -> Record:
    return dataclasses.replace(
        record,
        record_id=make_record_id(tag, record.record_id),
        source_file=f"{tag}.txt",
        abstract=abstract,
        flags=list(record.flags),
        extra={},
    )


def _truncated(record: Record, rng: random.Random, tag: str) -> Record:
    cut = rng.randint(len(record.abstract) // 3, len(record.abstract) - 20)
    ending = rng.choice(["...", " ...", "…", ""])
    return _copy(record, tag, record.abstract[:cut].rstrip() + ending)


def _two_runs(records: list[Record]) -> tuple[list[Record], list[Record]]:
    """Run 1: 90% of the records and truncated copies of some run-2 records (stored copies that run 2
    shows to be truncated); run 2: the rest, truncated copies of run-1 records, and exact duplicates of
    some run-1 records that have truncated copies (ties: two equally long extensions)."""
    rng = random.Random(9)
    long = [r for r in records if len(r.abstract) > 300]
    rng.shuffle(long)
    second_ids = {r.record_id for r in long[: len(long) // 10]}
    first = [r for r in records if r.record_id not in second_ids]
    second = [r for r in records if r.record_id in second_ids]
    run2_sources = [r for r in long if r.record_id in second_ids][:150]
    run1_sources = [r for r in long if r.record_id not in second_ids][:150]
    first += [_truncated(r, rng, "old_copies") for r in run2_sources]
    second += [_truncated(r, rng, "new_copies") for r in run1_sources]
    second += [_copy(r, "duplicates", r.abstract) for r in run1_sources[:40]]
    rng.shuffle(first)
    rng.shuffle(second)
    return first, second


def test_prefix_pass_is_exact_over_two_runs_of_real_abstracts(tmp_path: Path, real_abstracts: list[Record]) -> None:
    first, second = _two_runs(real_abstracts)
    store = _store(tmp_path)
    run1 = _run_with(store, first)
    expected1 = _reference(store, run1.run_id)
    flag_truncated_prefixes_in_store(store, run1.run_id)
    assert list(store.iter_records(run_id=run1.run_id)) == expected1
    store.commit_run(run1)

    run2 = _run_with(store, second)
    expected2 = _reference(store, run2.run_id)
    outcome = flag_truncated_prefixes_in_store(store, run2.run_id, heads_per_query=100)
    assert list(store.iter_records(run_id=run2.run_id)) == expected2
    assert outcome.committed_changed >= 100  # stored truncated copies that run 2's records extend
    assert outcome.staged_changed >= 100
    assert outcome.records_compared < len(first) // 2  # only records sharing a head with a new one
    stored = {r.record_id: r.flags for r in store.iter_records()}  # readers still see run 1's flags
    changed = [r for r in expected2 if r.record_id in stored and r.flags != stored[r.record_id]]
    assert len(changed) == outcome.committed_changed
    repointed = [r for r in changed if sum(f.startswith("prefix_of:") for f in r.flags) > 1]
    assert repointed  # a stored copy already pointing at one extension gains a pointer to a new, longer one
    store.commit_run(run2)
    assert list(store.iter_records()) == expected2  # the flag changes landed with the commit


def test_a_pending_flag_change_dies_with_its_run(tmp_path: Path, real_abstracts: list[Record]) -> None:
    rng = random.Random(3)
    full = [r for r in real_abstracts if len(r.abstract) > 300][:20]
    store = _store(tmp_path)
    copies = [_truncated(r, rng, "copies") for r in full]
    store.commit_run(stages.start_run(), new_records=copies, record_input={r.record_id: "x" for r in copies})
    before = list(store.iter_records())
    run = _run_with(store, full)
    assert flag_truncated_prefixes_in_store(store, run.run_id).committed_changed == len(full)
    assert list(store.iter_records()) == before
    store.begin_run(stages.start_run())  # the run above died: its staged rows and changes go
    assert list(store.iter_records()) == before
    assert store.table_frame(record_updates_table).empty
