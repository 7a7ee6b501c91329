"""Functions behind the single-purpose CLI commands (ingest, status, ...)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import ReviewError
from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.io import atomic_write
from pipeline.records import Record, records_to_frame
from pipeline.codebook import Codebook
from pipeline.store import Store, open_store
from pipeline.workspace import Workspace, load_workspace


# Truncated copies are short; comparing the first characters of every abstract finds them while
# holding only this much text per record, so `review ingest` streams files of any size.
_PREFIX_WINDOW = 400


def ingest_to_jsonl(
    paths: list[Path], out_path: Path, on_file_done: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Read, clean and write records as JSON Lines; every file is read before the output appears."""
    from pipeline.clean import clean_records, flag_truncated_prefixes

    summary: list[dict[str, Any]] = []
    stand_ins: list[Record] = []
    with tempfile.TemporaryDirectory(dir=out_path.parent if out_path.parent.exists() else None) as tmp:
        first_pass = Path(tmp) / "cleaned.jsonl"
        with open(first_pass, "w", encoding="utf-8") as handle:
            for record in clean_records(_read_all(paths, summary, on_file_done), find_prefixes=False):
                stand_ins.append(Record(id=record.id, source_format="", source_file="", position=0,
                                        abstract=record.abstract[:_PREFIX_WINDOW], record_id=record.record_id))
                handle.write(json.dumps(asdict(record), ensure_ascii=False, sort_keys=True) + "\n")
        flag_truncated_prefixes(stand_ins)
        with open(first_pass, encoding="utf-8") as source, atomic_write(out_path) as target:
            for line, stand_in in zip(source, stand_ins, strict=True):
                row = json.loads(line)
                row["flags"] += [flag for flag in stand_in.flags if flag not in row["flags"]]
                target.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return summary


def _read_all(
    paths: list[Path], summary: list[dict[str, Any]], on_file_done: Callable[[], None] | None
) -> Iterator[Record]:
    for path in paths:
        source = open_source(path)
        reader = detect_format(source)
        row = {"file": str(path), "format": reader.FORMAT, "records": 0, "with_abstract": 0}
        summary.append(row)
        for record in read_source(source, reader):
            row["records"] += 1
            row["with_abstract"] += int(record.has_abstract())
            yield record
        if row["records"] == 0:
            raise no_records_error(source, reader)
        if on_file_done:
            on_file_done()


def load_clean_records(paths: list[Path]) -> list[Record]:
    """Read and clean files for the single-purpose commands (dedupe, code)."""
    from pipeline.clean import clean_records

    return list(clean_records(_read_all(paths, [], None)))


def dedupe_files(paths: list[Path], out_path: Path) -> dict[str, int]:
    """`review dedupe`: every input record with id, duplicate_group, keep, match_reason."""
    from pipeline import stages
    from pipeline.io import write_csv

    records = load_clean_records(paths)  # output keeps the input order
    outcome = stages.dedupe_stage(records, None)
    info = pd.DataFrame(
        {"record_id": [r.record_id for r in records], "source_file": [r.source_file for r in records],
         "title": [r.title for r in records]}
    )
    table = info.merge(outcome.groups, on="record_id", how="left")
    columns = ["id", "duplicate_group", "keep", "match_reason", "source_file", "title", "record_id"]
    write_csv(table[columns], out_path)
    return outcome.counts


def code_file(path: Path, out_path: Path, codebook_path: Path) -> dict[str, int]:
    """`review code`: one row per (id, code) for every record of one input file."""
    from pipeline.codebook import load_codebook
    from pipeline.io import write_csv
    from pipeline.rules import code_studies

    codebook = load_codebook(codebook_path)
    records = load_clean_records([path])
    studies = pd.DataFrame(
        {
            "id": [r.id for r in records],
            "title": [r.title for r in records],
            "abstract": [r.abstract for r in records],
            "flags": ["; ".join(r.flags) for r in records],
        }
    )
    hits = code_studies(studies, codebook, id_column="id")
    columns = ["id", "code", "category", "direction", "evidence", "method", "confidence"]
    write_csv(hits[columns].sort_values(["id", "code"], kind="stable"), out_path)
    return {"records": len(records), "codes": len(hits), "records_coded": int(hits["id"].nunique())}


@dataclass
class WorkspaceState:
    """What the last run left in the store, rebuilt for the commands that work after a run."""

    workspace: Workspace
    codebook: Codebook
    store: Store
    records: list[Record]
    studies: pd.DataFrame
    machine: pd.DataFrame  # the machine's assignments (rule / topic)
    ledger: pd.DataFrame  # every reviewer decision, append-only
    final: pd.DataFrame  # machine codes with the decisions applied


def load_state(root: Path) -> WorkspaceState:
    from pipeline import stages
    from pipeline.codebook import load_codebook
    from pipeline.ledger import ledger_frame
    from pipeline.store import assignments_table, groups_table

    workspace = load_workspace(root)
    codebook = load_codebook(workspace.codebook_path)
    store = open_store(workspace.store_url)
    groups = store.table_frame(groups_table)
    if groups.empty:
        raise ReviewError(f"the store of {workspace.root} has no studies yet; run `review run` first.")
    records = list(store.iter_records())
    machine = store.table_frame(assignments_table).drop(columns="run_id")
    ledger = ledger_frame(store)
    studies = stages.studies_stage(records_to_frame(records), groups, codebook)
    final = stages.final_assignments(machine, ledger, groups)
    return WorkspaceState(workspace, codebook, store, records, studies, machine, ledger, final)


def export_workspace(root: Path, formats: list[str]) -> list[Path]:
    """`review export`: rebuild the matrix from the store, with every reviewer decision applied."""
    from pipeline import stages
    from pipeline.export import write_exports
    from pipeline.synth import build_matrix

    state = load_state(root)
    prisma = stages.prisma_stage(state.records, state.studies, state.final, stages.code_stage_reasons(state.studies))
    matrix = build_matrix(state.final, state.studies, state.codebook)
    agreement = stages.agreement_stage(state.ledger, state.machine)
    return write_exports(matrix, prisma, state.workspace.outputs_dir, formats=formats, agreement=agreement)


def export_review_sheet(root: Path, out_path: Path) -> int:
    """`review sheet export`: one row per machine code (and per reviewer-added code), decisions pre-filled."""
    from pipeline.sheets import export_sheet

    state = load_state(root)
    export_sheet(state.machine, state.studies, out_path, ledger=state.ledger, codebook=state.codebook)
    return len(state.machine)


def import_review_sheet(root: Path, sheet: Path, reviewer: str) -> dict[str, Any]:
    """`review sheet import`: validate everything, append the decisions, refresh the outputs."""
    from pipeline.sheets import import_sheet

    state = load_state(root)
    result = import_sheet(state.store, sheet, reviewer, state.codebook, state.machine, state.studies)
    export_workspace(root, ["csv", "xlsx", "html", "prisma"])
    return {"counts": dict(result.counts), "unchanged": result.n_unchanged, "rows": result.n_rows}


def reconcile_sheets(root: Path, sheet_a: Path, sheet_b: Path, out_path: Path) -> int:
    """`review sheet reconcile`: the rows two reviewers decided differently, as a sheet to settle and import."""
    from pipeline.reconcile import reconcile, write_reconciliation_sheet

    state = load_state(root)
    conflicts = reconcile(
        sheet_a, sheet_b, codebook=state.codebook, assignments=state.machine, studies=state.studies, ledger=state.ledger
    )
    write_reconciliation_sheet(conflicts, out_path, codebook=state.codebook)
    return len(conflicts)


def check_codebook_file(path: Path) -> list[str]:
    from pipeline.codebook import check_codebook

    return check_codebook(path)


def workspace_status(root: Path) -> dict[str, Any]:
    """PRISMA-style counts from the store, reviewer decisions and agreement, and the runs."""
    from pipeline.agreement import agreement_report, summary_lines
    from pipeline.ledger import review_status

    try:
        state: WorkspaceState | None = load_state(root)
    except ReviewError:  # no run yet: only the raw counts
        state = None
    workspace = state.workspace if state else load_workspace(root)
    store = state.store if state else open_store(workspace.store_url)
    inputs, runs = store.inputs(), store.runs()
    counts: dict[str, Any] = {
        "input files and payloads": len(inputs),
        "records identified": sum(entry.n_records for entry in inputs),
        "records in store": store.count_records(),
    }
    agreement: list[str] = []
    if state is not None:
        decisions = review_status(state.ledger, state.machine)
        counts |= {
            "studies": len(state.studies),
            "duplicates removed": len(state.records) - len(state.studies),
            "studies coded": int(state.final["study_id"].nunique()) if len(state.final) else 0,
            "code assignments": len(state.final),
            "reviewer decisions": decisions["decisions"],
            "machine codes not yet reviewed": decisions["machine_unreviewed"],
        }
        if len(state.ledger):
            agreement = summary_lines(agreement_report(state.ledger, state.machine))
    counts["runs"] = len(runs)
    return {
        "name": workspace.config.name,
        "counts": counts,
        "agreement": agreement,
        "runs": [asdict(run) for run in runs],
        "last_run": runs[-1].counts if runs else {},
    }


def harvest_to_jsonl(
    source: str,
    query: str,
    out_path: Path,
    *,
    base_url: str | None = None,
    since: str | None = None,
    max_records: int | None = None,
    raw_dir: Path | None = None,
) -> dict[str, int]:
    """`review harvest`: one source's records, cleaned, as JSON Lines; the raw payloads kept if asked."""
    from pipeline.clean import clean_records
    from pipeline.harvest import harvest

    result = harvest(source, query, since=since, max_records=max_records, base_url=base_url, raw_dir=raw_dir)
    with atomic_write(out_path) as handle:
        for record in clean_records(result.records):
            handle.write(json.dumps(asdict(record), ensure_ascii=False, sort_keys=True) + "\n")
    return {"records": len(result.records), "pages": result.pages}


def import_duplicates_sheet(root: Path, sheet: Path, reviewer: str) -> int:
    """`review duplicates import`: record split/join decisions; every later run applies them."""
    import hashlib

    from pipeline.dedupe import read_dedupe_decisions

    workspace = load_workspace(root)
    decisions = read_dedupe_decisions(sheet)
    sha = hashlib.sha256(Path(sheet).read_bytes()).hexdigest()
    return open_store(workspace.store_url).append_dedupe_decisions(decisions, reviewer, sha)
