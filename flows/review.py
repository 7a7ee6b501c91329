"""The `review` flow: ingest -> clean -> dedupe -> code -> assign -> commit -> exports, on one workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import stages
from pipeline.assign import assign
from pipeline.codebook import Codebook, load_codebook
from pipeline.records import Record
from pipeline.store import RunRecord, Store, open_store
from pipeline.workspace import Workspace, load_workspace

# Records move between tasks in memory; hashing them for Prefect's default cache key would cost more
# than the stage itself, and Prefect cannot see changes inside pipeline/ anyway.
_stage = task(cache_policy=NO_CACHE, log_prints=False)


@_stage
def ingest(paths: list[Path], known_hashes: set[str]) -> stages.IngestResult:
    return stages.ingest_stage(paths, known_hashes)


@_stage
def clean(new_records: list[Record], existing: list[Record]) -> list[Record]:
    return stages.clean_stage(new_records, existing)


@_stage
def dedupe(records: list[Record], decisions: pd.DataFrame) -> stages.DedupeOutcome:
    return stages.dedupe_stage(records, decisions)


@_stage
def build_studies(records: list[Record], groups: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    return stages.studies_stage(records, groups, codebook)


@_stage
def code(studies: pd.DataFrame, codebook: Codebook) -> stages.CodingOutcome:
    return stages.code_stage(studies, codebook)


@_stage
def assign_codes(hits: pd.DataFrame) -> pd.DataFrame:
    return assign(hits)


@_stage
def commit(
    store: Store,
    run: RunRecord,
    ingested: stages.IngestResult,
    cleaned: list[Record],
    groups: pd.DataFrame,
    assignments: pd.DataFrame,
) -> None:
    stages.commit_stage(store, run, ingested, cleaned, groups, assignments)


@_stage
def export(
    workspace: Workspace,
    corpus: list[Record],
    studies: pd.DataFrame,
    assignments: pd.DataFrame,
    codebook: Codebook,
    prisma: dict[str, Any],
    duplicates_sheet: pd.DataFrame,
) -> list[Path]:
    records_csv = stages.export_records_stage(workspace, corpus)
    return [records_csv, *stages.export_stage(workspace, studies, assignments, codebook, prisma, duplicates_sheet)]


@flow(name="review", log_prints=False)
def review(workspace: str = ".") -> dict[str, Any]:
    """Run the whole review on a workspace folder; returns the run's counts per stage."""
    logger = get_run_logger()
    ws = load_workspace(workspace)
    codebook = load_codebook(ws.codebook_path)  # a codebook with errors stops the run before any work
    store = open_store(ws.store_url)
    run = stages.start_run()
    files = ws.input_files()
    logger.info("workspace %r: %d input file(s), codebook %s", ws.config.name, len(files), ws.codebook_path.name)

    ingested = ingest(files, store.known_input_hashes())
    logger.info("ingest: %s", ingested.counts())
    existing = list(store.iter_records())
    cleaned = clean(ingested.records, existing)
    corpus = existing + cleaned

    deduped = dedupe(corpus, store.dedupe_decisions())
    logger.info("dedupe: %s", deduped.counts)
    studies = build_studies(corpus, deduped.groups, codebook)
    coding = code(studies, codebook)
    assignments = assign_codes(coding.hits)
    prisma = stages.prisma_stage(corpus, studies, assignments, coding.set_aside)
    logger.info("code: %d assignments over %d studies; PRISMA included %d", len(assignments), len(studies), prisma["included"])

    run.inputs = [{"path": e.path, "sha256": e.sha256, "records": e.n_records} for e in ingested.new_inputs]
    run.counts = {
        "ingest": ingested.counts(),
        "clean": {"records_cleaned": len(cleaned)},
        "dedupe": deduped.counts,
        "code": {"studies": len(studies), "assignments": len(assignments), "studies_coded": prisma["included"]},
    }
    commit(store, run, ingested, cleaned, deduped.groups, assignments)

    written = export(ws, corpus, studies, assignments, codebook, prisma, deduped.sheet)
    stages.write_run_summary(ws, run, store)
    logger.info("wrote %d output file(s) into %s", len(written) + 1, ws.outputs_dir)
    return run.counts
