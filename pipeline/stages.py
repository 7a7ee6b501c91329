"""Workspace-level stages: what `review run` and the Prefect flow call, one plain function each.

Stages read the store but never write it; `commit` writes a run's results in one transaction,
so a run that dies half-way leaves the store as it was.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from pipeline import __version__
from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.io import write_csv, write_json
from pipeline.records import Record, records_to_frame
from pipeline.store import InputEntry, RunRecord, Store, utc_now
from pipeline.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    """New records from files the store has not seen, and the files skipped as already ingested."""

    records: list[Record] = field(default_factory=list)
    new_inputs: list[InputEntry] = field(default_factory=list)
    record_input: dict[str, str] = field(default_factory=dict)  # record_id -> input sha256
    already_ingested: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "files_new": len(self.new_inputs),
            "files_already_ingested": len(self.already_ingested),
            "records_new": len(self.records),
        }


def start_run() -> RunRecord:
    return RunRecord(run_id=uuid.uuid4().hex, started_at=utc_now(), package_version=__version__)


def ingest_stage(paths: Iterable[Path], known_hashes: set[str]) -> IngestResult:
    """Read every file whose content hash the store does not know yet (same file twice adds nothing)."""
    result = IngestResult()
    seen = set(known_hashes)
    for path in paths:
        source = open_source(path)
        if source.sha256 in seen:
            result.already_ingested.append(str(path))
            continue
        seen.add(source.sha256)
        reader = detect_format(source)
        records = list(read_source(source, reader))
        if not records:
            raise no_records_error(source, reader)
        for record in records:
            result.record_input[record.record_id] = source.sha256
        result.records.extend(records)
        result.new_inputs.append(
            InputEntry(
                sha256=source.sha256,
                path=str(path),
                source_format=reader.FORMAT,
                encoding=source.encoding,
                size_bytes=source.size,
                n_records=len(records),
            )
        )
        log.info("ingested %s: %d records (%s)", path.name, len(records), reader.FORMAT)
    return result


def clean_stage(new_records: list[Record], existing: list[Record]) -> list[Record]:
    """Clean the new records; truncation is judged against the whole corpus (old and new)."""
    from pipeline.clean import clean_records, flag_truncated_prefixes

    cleaned = list(clean_records(new_records, find_prefixes=False))
    flag_truncated_prefixes([*existing, *cleaned])
    flagged = sum(1 for r in cleaned if "truncated" in r.flags)
    log.info("cleaned %d records (%d truncated copies)", len(cleaned), flagged)
    return cleaned


def commit_stage(store: Store, run: RunRecord, ingest: IngestResult, cleaned: list[Record]) -> None:
    store.commit_run(run, new_inputs=ingest.new_inputs, new_records=cleaned, record_input=ingest.record_input)


def sorted_records(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.source_file, r.position, r.record_id))


def export_records_stage(workspace: Workspace, records: list[Record]) -> Path:
    """outputs/records.csv: the cleaned corpus, one row per record, with its flags."""
    path = workspace.outputs_dir / "records.csv"
    write_csv(records_to_frame(sorted_records(records)), path)
    return path


def write_run_summary(workspace: Workspace, run: RunRecord, store: Store) -> Path:
    path = workspace.outputs_dir / "run_summary.json"
    summary = {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "package_version": run.package_version,
        "workspace": workspace.config.name,
        "inputs": run.inputs,
        "counts": run.counts,
        "store": {"records": store.count_records(), "inputs": len(store.inputs()), "runs": len(store.runs())},
    }
    write_json(summary, path)
    return path
