"""The `review` flow: ingest -> clean -> (later stages) -> commit -> outputs, on one workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import stages
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
def commit(store: Store, run: RunRecord, ingested: stages.IngestResult, cleaned: list[Record]) -> None:
    stages.commit_stage(store, run, ingested, cleaned)


@_stage
def export_records(workspace: Workspace, records: list[Record]) -> Path:
    return stages.export_records_stage(workspace, records)


@flow(name="review", log_prints=False)
def review(workspace: str = ".") -> dict[str, Any]:
    """Run the whole review on a workspace folder; returns the run summary's counts."""
    logger = get_run_logger()
    ws = load_workspace(workspace)
    store = open_store(ws.store_url)
    run = stages.start_run()
    files = ws.input_files()
    logger.info("workspace %r: %d input file(s)", ws.config.name, len(files))

    ingested = ingest(files, store.known_input_hashes())
    logger.info("ingest: %s", ingested.counts())
    existing = list(store.iter_records())
    cleaned = clean(ingested.records, existing)
    logger.info("clean: %d new record(s) cleaned", len(cleaned))

    run.inputs = [{"path": e.path, "sha256": e.sha256, "records": e.n_records} for e in ingested.new_inputs]
    run.counts = {"ingest": ingested.counts(), "clean": {"records_cleaned": len(cleaned)}}
    commit(store, run, ingested, cleaned)

    corpus = existing + cleaned
    path = export_records(ws, corpus)
    stages.write_run_summary(ws, run, store)
    logger.info("wrote %s (%d records in the corpus)", path, len(corpus))
    return run.counts
