"""Streaming ingest and clean in batches, staged into the store: memory bounded by the batch size.

The pieces a flow strings together (see the store's run lifecycle in pipeline/store.py):

    store.begin_run(run)
    for batch in iter_ingest_batches(paths, store.known_input_hashes(), batch_size):
        cleaned = clean_batch(batch.records)               # pure: any runner may map it
        stage_ingest_batch(store, run.run_id, batch, cleaned)
    flag_truncated_prefixes_in_store(store, run.run_id)    # corpus-wide, from an indexed key
    ... corpus-wide steps read store.record_projection(..., run_id=run.run_id) ...
    store.commit_run(run, groups=..., assignments=..., coding_cache=...)

The batches' records, concatenated, are exactly what `stages.ingest_stage` returns, and the flags the
store ends up with are exactly what `clean.flag_truncated_prefixes` gives on the whole corpus in the
store's order (committed and staged records together, ordered by input file, position, record_id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.clean import clean_records, flag_truncated_prefixes
from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.records import Record
from pipeline.store import InputEntry, Store

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 5000


@dataclass
class IngestBatch:
    """At most `batch_size` new records, with what the store needs to stage them.

    `new_inputs` holds the files whose last record is in this batch or an earlier one (a file is
    indexed once it has been read to its end, with its record count); `already_ingested` the files
    skipped since this batch began because the store (or an earlier path of this run) has their content.
    """

    records: list[Record] = field(default_factory=list)
    record_input: dict[str, str] = field(default_factory=dict)  # record_id -> input sha256
    new_inputs: list[InputEntry] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.records or self.new_inputs or self.already_ingested)


@dataclass
class IngestTotals:
    """Running totals over a run's batches: the counts `IngestResult.counts()` reports, and the files."""

    new_inputs: list[InputEntry] = field(default_factory=list)
    already_ingested: list[str] = field(default_factory=list)
    records_new: int = 0

    def add(self, batch: IngestBatch) -> None:
        self.new_inputs.extend(batch.new_inputs)
        self.already_ingested.extend(batch.already_ingested)
        self.records_new += len(batch.records)

    def counts(self) -> dict[str, int]:
        return {
            "files_new": len(self.new_inputs),
            "files_already_ingested": len(self.already_ingested),
            "records_new": self.records_new,
        }


def iter_ingest_batches(paths: Iterable[Path], known_hashes: set[str], batch_size: int) -> Iterator[IngestBatch]:
    """Stream every file whose content hash is not known (the same file twice adds nothing) through
    the format readers, as batches of at most `batch_size` records, in file order.

    Bad input raises the same one-sentence error as `stages.ingest_stage` (an empty, binary or
    unreadable file, or one with no records); a problem found half-way through a file is raised
    when the reader reaches it, after the batches before it.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    seen = set(known_hashes)
    batch = IngestBatch()
    for path in paths:
        source = open_source(path)
        if source.sha256 in seen:
            batch.already_ingested.append(str(path))
            continue
        seen.add(source.sha256)
        reader = detect_format(source)
        count = 0
        for record in read_source(source, reader):
            count += 1
            batch.records.append(record)
            batch.record_input[record.record_id] = source.sha256
            if len(batch.records) >= batch_size:
                yield batch
                batch = IngestBatch()
        if count == 0:
            raise no_records_error(source, reader)
        batch.new_inputs.append(
            InputEntry(
                sha256=source.sha256,
                path=str(path),
                source_format=reader.FORMAT,
                encoding=source.encoding,
                size_bytes=source.size,
                n_records=count,
            )
        )
        log.info("ingested %s: %d records (%s)", Path(path).name, count, reader.FORMAT)
    if not batch.is_empty():
        yield batch


def clean_batch(records: list[Record]) -> list[Record]:
    """Clean one batch, record by record (no corpus-wide pass): pure and picklable, for any runner."""
    return list(clean_records(records, find_prefixes=False))


def stage_ingest_batch(store: Store, run_id: str, batch: IngestBatch, cleaned: list[Record]) -> int:
    """Stage a batch's cleaned records and its finished input files (two short transactions)."""
    written = store.stage_records(run_id, cleaned, batch.record_input)
    store.stage_inputs(run_id, batch.new_inputs)
    return written


@dataclass
class PrefixFlagOutcome:
    """What the corpus-wide truncated-prefix pass did."""

    heads_checked: int = 0  # distinct abstract heads of the run's records
    heads_shared: int = 0  # of those, heads two or more records share (compared in full)
    records_compared: int = 0  # records loaded in full for the comparison
    staged_changed: int = 0  # the run's own records newly flagged
    committed_changed: int = 0  # stored records newly flagged (applied when the run commits)


MAX_RECORDS_COMPARED = 20_000  # records loaded at a time to compare their abstracts (more only for one big head)


def _heads_by_records(counts: dict[str, int], max_records: int) -> Iterator[list[str]]:
    """The heads in runs whose records add up to at most `max_records` (a head with more is a run of its own):
    a corpus where many records share a head (an update to a million records: hundreds of thousands) is read a
    bounded slice at a time."""
    run: list[str] = []
    total = 0
    for head, count in counts.items():
        if run and total + count > max_records:
            yield run
            run, total = [], 0
        run.append(head)
        total += count
    if run:
        yield run


def flag_truncated_prefixes_in_store(
    store: Store, run_id: str, *, heads_per_query: int = 1000, max_records: int = MAX_RECORDS_COMPARED
) -> PrefixFlagOutcome:
    """Flag truncated copies across the whole corpus (committed records and the run's staged ones) in
    bounded memory: exactly what `flag_truncated_prefixes` does on the whole corpus in store order.

    A prefix and its extension share their abstract's head (`clean.prefix_head`, an indexed column),
    and flags are appended, never removed, so only heads that one of the run's records has can gain a
    flag: for each chunk of those heads, the records sharing a head with another record are loaded
    in full, in store order, and flagged together. The run's rows change at once (they are still
    invisible); a committed record's change waits for the run's commit.
    """
    outcome = PrefixFlagOutcome()
    for heads in store.iter_staged_prefix_heads(run_id, heads_per_query):
        outcome.heads_checked += len(heads)
        shared = store.shared_prefix_heads(heads, run_id=run_id)
        outcome.heads_shared += len(shared)
        for group in _heads_by_records(shared, max_records):
            records = store.records_with_prefix_heads(group, run_id=run_id)
            outcome.records_compared += len(records)
            before = {record.record_id: list(record.flags) for record in records}
            flag_truncated_prefixes(records)
            changed = {r.record_id: r.flags for r in records if r.flags != before[r.record_id]}
            if changed:
                staged, committed = store.stage_flag_updates(run_id, changed)
                outcome.staged_changed += staged
                outcome.committed_changed += committed
    log.info(
        "truncated prefixes: %d shared head(s), %d record(s) compared; newly flagged %d new and %d stored record(s)",
        outcome.heads_shared, outcome.records_compared, outcome.staged_changed, outcome.committed_changed,
    )
    return outcome
