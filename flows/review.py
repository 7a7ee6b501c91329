"""The `review` flow: ingest -> clean -> dedupe -> code -> assign -> commit -> exports, on one workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task, unmapped
from prefect.cache_policies import NO_CACHE

from pipeline import stages
from pipeline.assign import assign
from pipeline.codebook import Codebook, load_codebook
from pipeline.ledger import ledger_frame
from pipeline.records import Record
from pipeline.progress import stage_progress
from pipeline.runner import describe_runner, frame_batches, task_runner_for
from pipeline.store import RunRecord, Store, open_store
from pipeline.workspace import Workspace, load_workspace

# Records move between tasks in memory; hashing them for Prefect's default cache key would cost more
# than the stage itself, and Prefect cannot see changes inside pipeline/ anyway.
_stage = task(cache_policy=NO_CACHE, log_prints=False)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[30, 120])
def harvest(workspace: Workspace, store: Store) -> stages.IngestResult:
    return stages.harvest_stage(workspace, store)


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
def build_studies(records: pd.DataFrame, groups: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    return stages.studies_stage(records, groups, codebook)


@_stage
def code_batch(studies: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    return stages.code_batch(studies, codebook)


def code(studies: pd.DataFrame, codebook: Codebook, store: Store, batch_size: int) -> stages.CodingOutcome:
    """Rule coding mapped over batches of the studies not in the coding cache (the CPU-heavy stage)."""
    plan = stages.plan_coding(studies, codebook, store.cached_hits(set(stages.coding_cache_keys(studies, codebook))))
    batches = frame_batches(plan.todo[list(stages.CODING_COLUMNS)], batch_size)
    futures = code_batch.map(batches, unmapped(codebook))
    fresh = []
    with stage_progress("code", len(plan.todo)) as advance:
        for batch, future in zip(batches, futures, strict=True):  # in order: the runner cannot reorder hits
            fresh.append(future.result())
            advance(len(batch))
    hits = pd.concat(fresh, ignore_index=True) if fresh else stages.code_batch(plan.todo, codebook)
    return stages.finish_coding(studies, plan, hits)


@_stage
def topics(studies: pd.DataFrame, codebook: Codebook, workspace: Workspace) -> Any:
    return stages.topics_stage(studies, codebook, workspace)


@_stage
def assign_codes(
    hits: pd.DataFrame, suggestions: pd.DataFrame | None, ledger: pd.DataFrame, groups: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(machine assignments, final assignments): reviewers' decisions apply on top of the machine's codes."""
    machine = assign(hits, suggestions)
    return machine, stages.final_assignments(machine, ledger, groups)


@_stage
def commit(
    store: Store,
    run: RunRecord,
    ingested: stages.IngestResult,
    cleaned: list[Record],
    groups: pd.DataFrame,
    assignments: pd.DataFrame,
    coding_cache: dict[str, str],
) -> None:
    stages.commit_stage(store, run, ingested, cleaned, groups, assignments, coding_cache)


@_stage
def export(
    workspace: Workspace,
    corpus: pd.DataFrame,
    studies: pd.DataFrame,
    assignments: pd.DataFrame,
    codebook: Codebook,
    prisma: dict[str, Any],
    duplicates_sheet: pd.DataFrame,
    agreement: dict[str, pd.DataFrame],
) -> list[Path]:
    records_csv = stages.export_records_stage(workspace, corpus)  # corpus: the records frame
    exports = stages.export_stage(workspace, studies, assignments, codebook, prisma, duplicates_sheet, agreement)
    return [records_csv, *exports]


@flow(name="review", log_prints=False)
def review(workspace: str = ".") -> dict[str, Any]:
    """Run the whole review on a workspace folder; returns the run's counts per stage.

    The task runner comes from review.yaml (`runner`), so scheduled runs, work-pool workers and `review run`
    all honour it: with Dask the work runs as a subflow on a DaskTaskRunner.
    """
    runner = task_runner_for(load_workspace(workspace).config.runner)
    if runner is None:
        return _review_body(workspace)
    return _review_on_dask.with_options(task_runner=runner)(workspace=workspace)


def _review_body(workspace: str) -> dict[str, Any]:
    logger = get_run_logger()
    ws = load_workspace(workspace)
    codebook = load_codebook(ws.codebook_path)  # a codebook with errors stops the run before any work
    store = open_store(ws.store_url)
    run = stages.start_run()
    files = ws.input_files()
    logger.info("workspace %r: %d input file(s), codebook %s", ws.config.name, len(files), ws.codebook_path.name)
    logger.info("heavy tasks run on %s, in batches of %d", describe_runner(ws.config.runner), ws.config.batch_size)

    harvested = harvest(ws, store)
    from_files = ingest(files, store.known_input_hashes())
    ingested = stages.merge_ingests(from_files, harvested)
    logger.info("harvest: %d new record(s); ingest: %s", len(harvested.records), from_files.counts())
    existing = list(store.iter_records())
    cleaned = clean(ingested.records, existing)
    corpus = existing + cleaned

    deduped = dedupe(corpus, store.dedupe_decisions())
    logger.info("dedupe: %s", deduped.counts)
    studies = build_studies(deduped.records, deduped.groups, codebook)
    coding = code(studies, codebook, store, ws.config.batch_size)
    topic_model = topics(studies, codebook, ws) if ws.config.topics.enabled else None
    suggestions = topic_model.suggestions if topic_model is not None else None
    ledger = ledger_frame(store)
    machine, assignments = assign_codes(coding.hits, suggestions, ledger, deduped.groups)
    prisma = stages.prisma_stage(corpus, studies, assignments, coding.set_aside)
    logger.info("code: %d assignments over %d studies; PRISMA included %d", len(assignments), len(studies), prisma["included"])

    run.inputs = [{"path": e.path, "sha256": e.sha256, "records": e.n_records} for e in ingested.new_inputs]
    run.counts = {
        "run": {"runner": describe_runner(ws.config.runner), "batch_size": ws.config.batch_size},
        "harvest": {"records_new": len(harvested.records), "payloads": len(harvested.new_inputs)},
        "ingest": from_files.counts(),
        "clean": {"records_cleaned": len(cleaned)},
        "dedupe": deduped.counts,
        "code": {"studies": len(studies), "assignments": len(assignments), "studies_coded": prisma["included"]},
        "topics": _topic_counts(topic_model),
    }
    previous = stages.previous_state(store)
    changes = stages.changes_since(previous, deduped.groups, machine, prisma, new_records=len(ingested.records))
    run.counts["changes"] = changes["counts"]
    run.counts["code"]["rules_ran_on"] = coding.coded_now
    commit(store, run, ingested, cleaned, deduped.groups, machine, coding.new_cache)

    agreement = stages.agreement_stage(ledger, machine)
    written = export(ws, deduped.records, studies, assignments, codebook, prisma, deduped.sheet, agreement)
    if topic_model is not None:
        written += stages.write_topics_stage(ws, topic_model)
    stages.write_run_summary(ws, run, store)
    stages.write_changes_report(ws, changes)
    logger.info("wrote %d output file(s) into %s", len(written) + 1, ws.outputs_dir)
    return run.counts


@flow(name="review-on-dask", log_prints=False)
def _review_on_dask(workspace: str) -> dict[str, Any]:
    return _review_body(workspace)


def run_review(workspace: str | Path = ".") -> dict[str, Any]:
    return review(workspace=str(Path(workspace).resolve()))


def _topic_counts(result: Any) -> dict[str, Any]:
    if result is None:
        return {"status": "disabled in review.yaml"}
    return {
        "status": result.status,
        "topics": len(result.topics),
        "suggestions": len(result.suggestions),
        "emergent_themes": len(result.emergent),
        "outlier_share_after": round(float(result.outlier_share_after), 4),
    }
