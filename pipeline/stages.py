"""Workspace-level stages: what `review run` and the Prefect flow call, one plain function each.

Stages read the store but never write it; `commit` writes a run's results in one transaction,
so a run that dies half-way leaves the store as it was.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pipeline import __version__
from pipeline.codebook import Codebook
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


def commit_stage(
    store: Store,
    run: RunRecord,
    ingest: IngestResult,
    cleaned: list[Record],
    groups: pd.DataFrame | None = None,
    assignments: pd.DataFrame | None = None,
) -> None:
    store.commit_run(
        run,
        new_inputs=ingest.new_inputs,
        new_records=cleaned,
        record_input=ingest.record_input,
        groups=groups,
        assignments=assignments,
    )


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


@dataclass
class DedupeOutcome:
    """Dedup groups (one row per record), the reviewer's duplicates sheet, and PRISMA-style counts."""

    groups: pd.DataFrame
    sheet: pd.DataFrame
    counts: dict[str, int]


def dedupe_stage(records: list[Record], decisions: pd.DataFrame | None) -> DedupeOutcome:
    from pipeline.dedupe import deduplicate, duplicates_sheet

    frame = records_to_frame(sorted_records(records))
    groups = deduplicate(frame, decisions=decisions if decisions is not None and len(decisions) else None)
    sheet = duplicates_sheet(groups, frame)
    n_groups = int(groups["duplicate_group"].nunique()) if len(groups) else 0
    counts = {"records": len(frame), "studies": n_groups, "duplicates_removed": len(frame) - n_groups}
    log.info("dedupe: %d records -> %d studies", len(frame), n_groups)
    return DedupeOutcome(groups=groups.reset_index(drop=True), sheet=sheet, counts=counts)


def studies_stage(records: list[Record], groups: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    from pipeline.studies import build_studies

    return build_studies(records_to_frame(sorted_records(records)), groups, lenses=codebook.lenses or None)


@dataclass
class CodingOutcome:
    """Rule hits for the studies, and why the studies that were not coded were set aside."""

    hits: pd.DataFrame
    set_aside: dict[str, int]  # reason -> studies (empty abstract, not in English)


def code_stage(studies: pd.DataFrame, codebook: Codebook) -> CodingOutcome:
    from pipeline.rules import code_studies

    hits = code_studies(studies, codebook, id_column="study_id")
    set_aside = code_stage_reasons(studies)
    log.info("code: %d rule hits over %d studies; set aside %s", len(hits), len(studies), set_aside or "none")
    return CodingOutcome(hits=hits, set_aside=set_aside)


def code_stage_reasons(studies: pd.DataFrame) -> dict[str, int]:
    """Studies the coder sets aside, by PRISMA reason (no abstract, not in English)."""
    from pipeline.rules import skip_reason

    reasons = [skip_reason(str(a or ""), f) for a, f in zip(studies["abstract"], studies["flags"])]
    return dict(sorted(Counter(_prisma_reason(r) for r in reasons if r).items()))


def _prisma_reason(reason: str) -> str:
    return "no abstract" if reason == "empty abstract" else "not in English"


def prisma_stage(
    records: list[Record], studies: pd.DataFrame, assignments: pd.DataFrame, set_aside: dict[str, int]
) -> dict[str, Any]:
    from pipeline.export import prisma_counts

    by_source = Counter(record.database or record.source_file for record in records)
    return prisma_counts(
        studies, assignments, identified_by_source=dict(by_source), removed_before_screening=set_aside
    )


def export_stage(
    workspace: Workspace,
    studies: pd.DataFrame,
    assignments: pd.DataFrame,
    codebook: Codebook,
    prisma: dict[str, Any],
    duplicates_sheet: pd.DataFrame,
) -> list[Path]:
    """The evidence matrix (CSV, XLSX, HTML), the PRISMA flow and the duplicates sheet, into outputs/."""
    from pipeline.export import write_exports
    from pipeline.synth import build_matrix

    matrix = build_matrix(assignments, studies, codebook)
    written = write_exports(matrix, prisma, workspace.outputs_dir, formats=("csv", "xlsx", "html", "prisma"))
    sheet_path = workspace.outputs_dir / "duplicates_sheet.csv"
    write_csv(duplicates_sheet, sheet_path)
    return [*written, sheet_path]
