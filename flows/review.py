"""The `review` flow: harvest -> ingest -> clean -> dedupe -> studies -> code -> topics -> assign -> commit -> exports.

Records stream through ingest and clean in batches (review.yaml `batch_size`) and are staged in the store
batch by batch; the corpus-wide steps read compact projections from the store; cleaning, study building
and rule coding are mapped over batches, so the same flow runs on Prefect's default runner or on Dask
(review.yaml `runner`) with the same results. The run becomes visible in one final commit: a run that dies
leaves the store as it was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipeline import stages
from pipeline.assign import assign
from pipeline.batches import (
    IngestBatch,
    IngestTotals,
    clean_batch,
    flag_truncated_prefixes_in_store,
    iter_ingest_batches,
)
from pipeline.clean import release_caches as release_cleaning_caches
from pipeline.codebook import Codebook, load_codebook
from pipeline.frames import member_of
from pipeline.ledger import ledger_frame
from pipeline.metrics import StageMeter
from pipeline.progress import stage_progress
from pipeline.records import Record
from pipeline.runner import describe_runner, group_batches, task_runner_for
from pipeline.store import RunRecord, Store, open_store
from pipeline.study_table import StudyTable, StudyTableWriter
from pipeline.subprocess_stage import release_memory, run_in_child
from pipeline.workspace import Workspace, load_workspace

# Records move between tasks in memory; hashing them for Prefect's default cache key would cost more
# than the stage itself, and Prefect cannot see changes inside pipeline/ anyway.
_stage = task(cache_policy=NO_CACHE, log_prints=False)
IN_FLIGHT_PER_WORKER = 2  # batches submitted ahead of the one being stored: workers stay busy, memory bounded


def in_order(submit: Callable[[Any], Any], inputs: Iterable[Any], limit: int) -> Iterator[Any]:
    """Each input's result, in input order, with at most `limit` submitted tasks in flight: the inputs (slices
    of the corpus) are made only as workers can take them, so memory holds a few batches, not a second corpus."""
    window: deque[Any] = deque()
    for item in inputs:
        window.append(submit(item))
        if len(window) >= limit:
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[30, 120])
def harvest(workspace: Workspace, store: Store) -> stages.IngestResult:
    return stages.harvest_stage(workspace, store)


@_stage
def clean(records: list[Record]) -> list[Record]:
    return clean_batch(records)


@_stage
def build_studies(records: pd.DataFrame, groups: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    return stages.studies_stage(records, groups, codebook)


@_stage
def code_batch(studies: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    return stages.code_batch(studies, codebook)


@_stage
def topics(studies: StudyTable, codebook: Codebook, workspace: Workspace) -> Any:
    # In a child process: BERTopic's imports, the model and its texts (~1.5 GB at a million studies) never weigh
    # on the later stages. It writes the topic outputs to pending (published after the commit).
    return run_in_child(stages.topics_pass, workspace, studies, codebook)


# --- the mapped stages --------------------------------------------------------------------------------


def ingest_and_clean(store: Store, run: RunRecord, ws: Workspace, harvested: stages.IngestResult) -> IngestTotals:
    """Stream the new files in batches: read (here), clean (mapped), stage into the store (here, in order)."""
    totals = IngestTotals()
    submitted: deque[IngestBatch] = deque()

    def batches() -> Iterator[IngestBatch]:
        if harvested.records:
            yield IngestBatch(harvested.records, harvested.record_input, harvested.new_inputs)
        yield from iter_ingest_batches(ws.input_files(), store.known_input_hashes(), ws.config.batch_size)

    def submit(batch: IngestBatch) -> Any:
        submitted.append(batch)
        return clean.submit(batch.records)

    with stage_progress("ingest", None) as advance:
        for cleaned in in_order(submit, batches(), IN_FLIGHT_PER_WORKER * ws.config.runner.workers):
            batch = submitted.popleft()
            store.stage_records(run.run_id, cleaned, batch.record_input)
            store.stage_inputs(run.run_id, batch.new_inputs)
            totals.add(batch)
            advance(len(cleaned))
    return totals


def studies_in_batches(
    store: Store,
    run_id: str,
    groups: pd.DataFrame,
    signatures: pd.Series,
    codebook: Codebook,
    batch_size: int,
    cache_path: Path,
    target: Path,
    limit: int,
) -> StudyTable:
    """The studies, written to a study table at `target` in study_id order: a study whose members and flags are
    unchanged since the last run (`signatures`, stages.study_signatures) is reused from the studies cache; the
    others are built in group batches (mapped), each batch reading its records from the store and written as it
    comes back, so neither the corpus nor the studies are ever held whole."""
    reused = stages.reusable_studies(stages.load_study_cache(cache_path), signatures)
    todo = groups[~member_of(groups["duplicate_group"], reused["study_id"] if len(reused) else [])]
    batches = group_batches(todo, batch_size)

    def submit(batch: pd.DataFrame) -> Any:
        return build_studies.submit(stages.study_records(store, batch["record_id"], run_id), batch, codebook)

    empty = stages.studies_stage(stages.study_records(store, [], run_id), groups.iloc[:0], codebook)
    with stage_progress("studies", len(todo)) as advance, StudyTableWriter(target, signatures, empty) as writer:

        def built() -> Iterator[pd.DataFrame]:
            for batch, result in zip(batches, in_order(submit, batches, limit), strict=True):
                yield result
                advance(len(batch))

        for part in stages.studies_merged_in_order(built(), reused):
            writer.write(part)
    get_run_logger().info("studies: %d built, %d unchanged since the last run", len(todo), len(reused))
    return writer.table


def code(table: StudyTable, codebook: Codebook, store: Store, run_id: str, batch_size: int, limit: int) -> stages.CodingOutcome:
    """Rule coding (the CPU-heavy stage) mapped over batches of studies read from the study table; a study whose
    cache key the store holds reuses its hits. Each batch's new cache entries are staged into the store as the
    batch finishes, so only the batches in flight hold texts, and nothing holds every study's entry."""
    tally = stages.CodingTally()
    planned: deque[stages.CodingPlan] = deque()

    def plans() -> Iterator[stages.CodingPlan]:
        for part in table.slices(stages.CODING_COLUMNS, batch_size):
            yield stages.plan_coding(part, codebook, store.cached_hits(set(stages.coding_cache_keys(part, codebook))))

    def submit(plan: stages.CodingPlan) -> Any:
        planned.append(plan)
        return code_batch.submit(plan.todo, codebook)

    with stage_progress("code", len(table)) as advance:
        for hits in in_order(submit, plans(), limit):  # hits stay in study order
            plan = planned.popleft()
            store.stage_coding_cache(run_id, tally.add(plan, hits))
            advance(len(plan.studies))
    return tally.outcome()


# --- the flow -----------------------------------------------------------------------------------------


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


@flow(name="review-on-dask", log_prints=False)
def _review_on_dask(workspace: str) -> dict[str, Any]:
    return _review_body(workspace)


def run_review(workspace: str | Path = ".") -> dict[str, Any]:
    return review(workspace=str(Path(workspace).resolve()))


def _review_body(workspace: str) -> dict[str, Any]:
    logger = get_run_logger()
    ws = load_workspace(workspace)
    codebook = load_codebook(ws.codebook_path)  # a codebook with errors stops the run before any work
    store = open_store(ws.store_url)
    run = stages.start_run()
    meter = StageMeter()
    logger.info("workspace %r: %d input file(s), codebook %s", ws.config.name, len(ws.input_files()), ws.codebook_path.name)
    logger.info("heavy tasks run on %s, in batches of %d", describe_runner(ws.config.runner), ws.config.batch_size)
    store.begin_run(run)
    study_cache = ws.corpus_dir / "cache" / stages.STUDY_CACHE_NAME
    in_flight = IN_FLIGHT_PER_WORKER * ws.config.runner.workers
    dedupe_index = ws.corpus_dir / "cache" / stages.DEDUPE_INDEX_NAME

    with meter.stage("harvest") as stage:
        harvested = harvest(ws, store)
        stage.records = len(harvested.records)
    with meter.stage("ingest+clean") as stage:
        ingested = ingest_and_clean(store, run, ws, harvested)
        flag_truncated_prefixes_in_store(store, run.run_id)
        release_cleaning_caches()
        store.close_connections()
        release_memory()  # the batches' texts, cleaning's tables, the page caches: the flow waits on the dedupe child
        stage.records = ingested.records_new
    logger.info("harvest: %d new record(s); ingest: %s", len(harvested.records), ingested.counts())

    with meter.stage("dedupe") as stage:
        # In a child process that reads the corpus from the store itself: dedupe's peak and the corpus frame
        # (a million records: ~2 GB and ~1 GB) are given back to the OS when it exits. It also writes records.csv
        # and the duplicates sheet (published after the commit) and the study signatures, the corpus frame's other uses.
        records_csv, sheet_csv = stages.records_csv_files(ws), stages.pending_path(ws, "duplicates_sheet.csv")
        passed = run_in_child(
            stages.corpus_pass, ws.store_url, run.run_id, codebook, dedupe_index,
            stages.pending_path(ws, stages.DEDUPE_INDEX_NAME), records_csv, sheet_csv,
        )
        deduped, identified = passed.dedupe, passed.identified
        release_memory()  # the buffers the result came back in
        stage.records = deduped.counts["records"]
    logger.info("dedupe: %s", deduped.counts)
    with meter.stage("studies", records=deduped.counts["records"]):
        # On disk (the next run's studies cache, published after the commit): each later stage reads the columns
        # it needs, so the flow never holds every study's text (~1.2 GB at a million records).
        table = studies_in_batches(
            store, run.run_id, deduped.groups, passed.signatures, codebook,
            ws.config.batch_size, study_cache, stages.pending_path(ws, stages.STUDY_CACHE_NAME), in_flight,
        )
        del passed  # the signatures are in the table now
        release_memory()
    with meter.stage("code", records=len(table)):
        coding = code(table, codebook, store, run.run_id, ws.config.batch_size, in_flight)
        hits_file, n_hits = stages.put_aside(coding.hits, stages.pending_path(ws, "hits.parquet")), len(coding.hits)
        coding.hits = stages.empty_like(coding.hits)  # on disk until assign: the topic model's child needs the room
        release_memory()  # the batches' texts and parses
    with meter.stage("topics", records=len(table)):
        topic_model = topics(table, codebook, ws) if ws.config.topics.enabled else None
        release_memory()
    with meter.stage("assign", records=n_hits):
        ledger = ledger_frame(store)
        machine = assign(pd.read_parquet(hits_file), topic_model.suggestions if topic_model is not None else None)
        hits_file.unlink()
        assignments = stages.final_assignments(machine, ledger, deduped.groups)
        prisma = stages.prisma_stage(identified, table, assignments, coding.set_aside)
    logger.info("code: %d assignments over %d studies; PRISMA included %d", len(assignments), len(table), prisma["included"])

    new_inputs = ingested.new_inputs
    run.inputs = [{"path": e.path, "sha256": e.sha256, "records": e.n_records} for e in new_inputs]
    run.counts = {
        "run": {"runner": describe_runner(ws.config.runner), "batch_size": ws.config.batch_size},
        "harvest": {"records_new": len(harvested.records), "payloads": len(harvested.new_inputs)},
        "ingest": _file_counts(ingested, harvested),
        "clean": {"records_cleaned": ingested.records_new},
        "dedupe": deduped.counts,
        "code": {"studies": len(table), "assignments": len(assignments), "studies_coded": prisma["included"]},
        "topics": _topic_counts(topic_model),
    }
    with meter.stage("commit", records=ingested.records_new):
        # The last run's groups and codes are read only now (nothing is committed before this): an update of a
        # large review does not carry a second copy of them through studies, coding and topics.
        previous = store.derived_tables()  # changes_since compares with them; commit_run writes what differs
        changes = stages.changes_since(previous, deduped.groups, machine, prisma, new_records=ingested.records_new)
        run.counts["changes"] = changes["counts"]
        run.counts["code"]["rules_ran_on"] = coding.coded_now
        store.commit_run(run, groups=deduped.groups, assignments=machine, previous=previous)  # coding cache: staged
        # Caches after the commit: they describe committed data (each also checks itself when loaded).
        table = StudyTable(stages.publish(table.path, study_cache), len(table))
        stages.publish(stages.pending_path(ws, stages.DEDUPE_INDEX_NAME), dedupe_index)

    with meter.stage("export", records=len(table)):
        agreement = stages.agreement_stage(ledger, machine)
        written = [stages.publish(records_csv.pending, records_csv.published)]
        stages.publish(records_csv.pending_layout, records_csv.layout)  # after the file it describes
        written += stages.export_stage(ws, table, assignments, codebook, prisma, sheet_csv, agreement)
        if topic_model is not None:
            written += stages.publish_topic_outputs(ws)
        stages.write_changes_report(ws, changes)
    stages.write_run_summary(ws, run, store, meter.table())
    logger.info("wrote %d output file(s) into %s", len(written) + 2, ws.outputs_dir)
    return run.counts


def _file_counts(ingested: IngestTotals, harvested: stages.IngestResult) -> dict[str, int]:
    """Counts of the files read (harvest payloads are counted under harvest)."""
    counts = ingested.counts()
    counts["files_new"] -= len(harvested.new_inputs)
    counts["records_new"] -= len(harvested.records)
    return counts


def _topic_counts(result: Any) -> dict[str, Any]:
    if result is None:
        return {"status": "disabled in review.yaml"}
    return {
        "status": result.status,
        "topics": len(result.topics),
        "suggestions": len(result.suggestions),
        "emergent_themes": len(result.emergent),
        "outlier_share_after": round(float(result.outlier_share_after), 4),
        "model": dict(result.run),  # fitted or reused, and how many studies were fitted, placed, reused
    }
