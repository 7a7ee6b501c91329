"""Workspace-level stages: what `review run` and the Prefect flow call, one plain function each.

Stages read the store but never write it; `commit` writes a run's results in one transaction,
so a run that dies half-way leaves the store as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from pipeline import __version__, records_csv
from pipeline.codebook import Codebook
from pipeline.errors import ReviewError
from pipeline.frames import member_of
from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.io import atomic_write, write_csv, write_csv_parts, write_json
from pipeline.records import FRAME_COLUMNS, Record, make_record_id, records_to_frame
from pipeline.records_csv import RecordsCsvFiles
from pipeline.store import DerivedTables, InputEntry, RunRecord, Store, utc_now
from pipeline.study_table import SpilledTexts, StudyTable, study_columns, study_slices
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
    coding_cache: dict[str, str] | None = None,
) -> None:
    store.commit_run(
        run,
        new_inputs=ingest.new_inputs,
        new_records=cleaned,
        record_input=ingest.record_input,
        groups=groups,
        assignments=assignments,
        coding_cache=coding_cache,
    )


def sorted_records(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.source_file, r.position, r.record_id))


def write_run_summary(
    workspace: Workspace, run: RunRecord, store: Store, stage_table: list[dict[str, Any]] | None = None
) -> Path:
    """outputs/run_summary.json: provenance, counts per stage and, from the flow, each stage's time and memory."""
    path = workspace.outputs_dir / "run_summary.json"
    summary: dict[str, Any] = {
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "package_version": run.package_version,
        "workspace": workspace.config.name,
        "inputs": run.inputs,
        "counts": run.counts,
        "store": {"records": store.count_records(), "inputs": len(store.inputs()), "runs": len(store.runs())},
    }
    if stage_table is not None:
        summary["stages"] = stage_table
    write_json(summary, path)
    return path


@dataclass
class DedupeOutcome:
    """Dedup groups (one row per record), the reviewer's duplicates sheet, and PRISMA-style counts."""

    groups: pd.DataFrame
    sheet: pd.DataFrame
    counts: dict[str, int]
    records: pd.DataFrame  # the corpus as a frame, built once and reused for the studies


CORPUS_COLUMNS = FRAME_COLUMNS  # the corpus frame: records_to_frame's columns
# What dedupe_stage reads of the corpus (features, sheet fields) besides the abstracts, and the signatures' flags.
DEDUPE_INPUT_COLUMNS = [
    "record_id", "id", "title", "authors", "doi", "year", "venue", "volume", "issue", "pages", "doc_type",
    "source_file", "flags",
]
DEDUPE_FRAME_COLUMNS = [*DEDUPE_INPUT_COLUMNS, "database"]  # and what identified_by_source reads


def corpus_frame(store: Store, run_id: str | None = None, columns: list[str] = CORPUS_COLUMNS) -> pd.DataFrame:
    """The corpus as records_to_frame gives it (sorted as `sorted_records`), or those of its `columns`, read from
    the store's columns without building a Record per row; `run_id` adds that running run's staged records."""
    keys = [c for c in ("source_file", "position", "record_id") if c not in columns]
    frame = store.record_projection([*columns, *keys], run_id=run_id)
    ordered = rows_in_order(frame, corpus_order(frame))
    return ordered[columns] if keys else ordered


def corpus_order(frame: pd.DataFrame) -> np.ndarray:
    """The row positions that put a store projection (a RangeIndex) in corpus order: by file, position, id."""
    keys = ["source_file", "position", "record_id"]
    return frame[keys].sort_values(keys, kind="stable").index.to_numpy()


MAX_ORDER_RUNS = 1000  # beyond this many runs of consecutive rows, reordering copies the rows instead of slicing


def rows_in_order(frame: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """`frame.iloc[order]` with a fresh index. Where `order` is a few runs of consecutive rows (the store lists an
    input file's records in their corpus order: only whole files move), the runs are sliced and concatenated, so
    the Arrow text columns share their buffers instead of being copied (a million records: ~1 GB saved)."""
    if not len(order):
        return frame.iloc[:0].reset_index(drop=True)
    breaks = np.flatnonzero(np.diff(order) != 1) + 1
    if len(breaks) >= MAX_ORDER_RUNS:
        return frame.take(order).reset_index(drop=True)
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(order)]
    pieces = [frame.iloc[order[a] : order[a] + (b - a)] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return pd.concat(pieces, ignore_index=True)


DEDUPE_INDEX_NAME = "dedupe.index"


def dedupe_stage(
    records: list[Record] | pd.DataFrame,
    decisions: pd.DataFrame | None,
    *,
    previous_groups: pd.DataFrame | None = None,
    index: Any = None,
) -> DedupeOutcome:
    """`records`: the corpus frame (corpus_frame) or the records themselves; the frame may carry the abstracts'
    dedupe keys (column pipeline.dedupe.features.ABSTRACT_KEY) instead of the abstracts.

    Incremental when `previous_groups` (the store's dedup groups from the last run) and `index` (a
    DedupeIndex, updated in place) are given: only records new since then are compared, against the corpus.
    """
    frame = records if isinstance(records, pd.DataFrame) else records_to_frame(sorted_records(records))
    return dedupe_outcome(dedupe_groups(frame, decisions, previous_groups=previous_groups, index=index), frame)


def dedupe_groups(
    frame: pd.DataFrame, decisions: pd.DataFrame | None, *, previous_groups: pd.DataFrame | None = None, index: Any = None
) -> pd.DataFrame:
    """dedupe_stage's groups (its pairs in `attrs`, for dedupe_outcome); the index is done with once this returns."""
    from pipeline.dedupe import deduplicate

    decided = decisions if decisions is not None and len(decisions) else None
    existing = _existing_corpus(frame, previous_groups)
    if existing is None:
        return deduplicate(frame, decisions=decided, index=index)
    new = frame[~member_of(frame["record_id"], existing["record_id"])]
    if index is not None:  # in the index's order the saved keys are used as they are, not rebuilt
        existing = index.arrange(existing)
    return deduplicate(new, decisions=decided, existing=existing, index=index)


def dedupe_outcome(groups: pd.DataFrame, frame: pd.DataFrame, *, sheet_path: Path | None = None) -> DedupeOutcome:
    """The duplicates sheet and counts of dedupe_groups' result for the corpus frame `frame`. With `sheet_path`,
    the sheet is written there a chunk at a time (a million records: ~0.8 GB never held) and the outcome's
    sheet is an empty frame."""
    from pipeline.dedupe import SHEET_COLUMNS, duplicates_sheet, iter_duplicates_sheet

    if sheet_path is None:
        sheet = duplicates_sheet(groups, frame)
    else:
        write_csv_parts(iter_duplicates_sheet(groups, frame), sheet_path)
        sheet = pd.DataFrame(columns=SHEET_COLUMNS)
    groups.attrs.clear()  # the pairs are in the sheet now; pandas would copy them along with every derived frame
    n_groups = int(groups["duplicate_group"].nunique()) if len(groups) else 0
    counts = {"records": len(frame), "studies": n_groups, "duplicates_removed": len(frame) - n_groups}
    log.info("dedupe: %d records -> %d studies", len(frame), n_groups)
    return DedupeOutcome(groups=groups.reset_index(drop=True), sheet=sheet, counts=counts, records=frame)


def _existing_corpus(frame: pd.DataFrame, previous_groups: pd.DataFrame | None) -> pd.DataFrame | None:
    """The corpus records the last run grouped, with their groups (None: deduplicate everything afresh)."""
    if previous_groups is None or not len(previous_groups):
        return None
    grouped = previous_groups[["record_id", "duplicate_group", "keep"]]
    existing = frame.merge(grouped, on="record_id", how="inner")
    return existing if len(existing) == len(grouped) else None  # records gone from the store: start afresh


@dataclass
class CorpusPass:
    """What the corpus-wide pass leaves the rest of the run: no record text (records.csv and the sheet are written)."""

    dedupe: DedupeOutcome  # its `records` and `sheet` are empty frames
    identified: dict[str, int]  # identified_by_source of the corpus
    signatures: pd.Series  # study_signatures of the groups


def corpus_pass(
    store_url: str,
    run_id: str | None,
    codebook: Codebook,
    index_path: Path,
    pending_index: Path,
    records: RecordsCsvFiles,
    sheet_csv: Path,
) -> CorpusPass:
    """Everything that needs the whole corpus, read from the store here: dedupe (incremental with the index at
    `index_path`, saved updated to `pending_index`), records.csv (whole, or spliced from the last one when its
    layout can be trusted: pipeline/records_csv.py), the duplicates sheet (written to `sheet_csv`) and the study
    signatures.

    Meant to run in a child process (pipeline.subprocess_stage.run_in_child): the frame and dedupe's peak go
    when it exits, and only the groups and counts come back.
    """
    from pipeline.dedupe.features import ABSTRACT_KEY
    from pipeline.store import groups_table, open_store
    from pipeline.subprocess_stage import release_memory

    store = open_store(store_url)
    try:
        frame = _records_csv_and_dedupe_frame(store, run_id, records)
        identified = identified_by_source(frame)
        frame = frame[DEDUPE_INPUT_COLUMNS]
        release_memory()
        # Dedupe reads the abstracts' keys, built a chunk at a time from the store: the raw abstracts (a million:
        # ~1 GB) and the keys are never held together.
        index = load_dedupe_index(index_path)
        frame[ABSTRACT_KEY] = _abstract_keys(store, run_id, frame["record_id"], index)
        previous = store.table_frame(groups_table)
        groups = dedupe_groups(frame, store.dedupe_decisions(), previous_groups=previous, index=index)
        del previous
        # Done with the index: saved now, its features and the abstract keys (a million records: ~1.3 GB) go
        # before the sheet and the signatures are made.
        index.save(pending_index)
        del index
        frame = frame.drop(columns=[ABSTRACT_KEY])
        release_memory()
        deduped = dedupe_outcome(groups, frame, sheet_path=sheet_csv)
        del groups
        signatures = study_signatures(frame, deduped.groups, codebook)
        deduped.records = empty_like(frame)
    finally:
        store.close_connections()
    return CorpusPass(dedupe=deduped, identified=identified, signatures=signatures)


def _records_csv_and_dedupe_frame(store: Store, run_id: str | None, files: RecordsCsvFiles) -> pd.DataFrame:
    """Write records.csv (with its layout) to the pending places and return the corpus frame's columns that
    dedupe and PRISMA's counts by source need. An update splices the last records.csv and so never reads the
    corpus's texts; a whole write needs the corpus frame anyway, and its columns are taken from it."""
    committed_now = store.committed_runs()
    committed = committed_now + (1 if run_id else 0)  # once this run commits: what the new layout will describe
    last = records_csv.usable_layout(files.layout, files.published, committed_now) if run_id else None
    if last is not None:
        changed = store.record_projection_of(store.record_ids_changed_by(run_id), records_csv.COLUMNS, run_id=run_id)
        layout = records_csv.splice(last, files.published, changed, files.pending, committed)
        del changed
        frame = corpus_frame(store, run_id, DEDUPE_FRAME_COLUMNS)
        if len(layout) == len(frame):
            layout.save(files.pending_layout)
            return frame
        log.warning("records.csv: the spliced file has %d rows for %d records; writing it whole", len(layout), len(frame))
    corpus = corpus_frame(store, run_id)
    records_csv.write_whole(corpus, files.pending, committed).save(files.pending_layout)
    return corpus[DEDUPE_FRAME_COLUMNS]


def empty_like(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame with `frame`'s columns and dtypes and no rows that, unlike `frame.iloc[:0]` (an Arrow slice keeps
    its whole buffers), holds none of its memory."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in frame.dtypes.items()})


def _abstract_keys(store: Store, run_id: str | None, record_ids: pd.Series, index: Any) -> pd.Series:
    """The dedupe key of every record's abstract (features.abstract_keys), aligned with `record_ids`: those the
    dedupe index holds from its last run, the others from the store (every record, the first time; an update's
    new records after that), a chunk at a time."""
    from pipeline.dedupe.features import abstract_keys

    ids = record_ids.tolist()
    found = index.abstract_keys_of(ids)
    missing = [rid for rid in ids if rid not in found]
    shared: dict[Any, Any] = {}
    if len(missing) == len(ids):  # the whole corpus: one streamed pass (no list of ids to send)
        chunks = store.iter_record_projection(["record_id", "abstract"], run_id=run_id)
    else:
        chunks = iter([store.record_projection_of(missing, ["record_id", "abstract"], run_id=run_id)])
    for chunk in chunks:
        found.update(zip(chunk["record_id"].tolist(), abstract_keys(chunk["abstract"].tolist(), shared), strict=True))
    if any(rid not in found for rid in missing):
        raise ReviewError("The store changed while the run read it (a record vanished); run the review again.")
    return pd.Series([found[rid] for rid in ids], index=record_ids.index, dtype=object)


def load_dedupe_index(path: Path) -> Any:
    from pipeline.dedupe import DedupeIndex

    return DedupeIndex.load(path)


SKIP_COLUMN = "skip_reason"  # why the rules and topics pass a study by ('' when they read it): rules.skip_reason


def studies_stage(records: pd.DataFrame, groups: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """`records` is the corpus frame (records_to_frame), e.g. DedupeOutcome.records. Each study's skip reason is
    worked out here, once: an update then reads it for the studies it reuses instead of reading their abstracts
    again in coding and topics."""
    from pipeline.studies import build_studies

    return with_skip_reasons(build_studies(records, groups, lenses=codebook.lenses or None))


def with_skip_reasons(studies: pd.DataFrame) -> pd.DataFrame:
    """The studies with their SKIP_COLUMN worked out from their abstracts and flags (again, if they had one)."""
    return studies.assign(**{SKIP_COLUMN: pd.Series(_skip_reasons(studies), index=studies.index, dtype=str)})


def skip_reasons(studies: pd.DataFrame) -> list[str]:
    """Each study's rules.skip_reason: its SKIP_COLUMN when it has one, else worked out from its abstract."""
    return studies[SKIP_COLUMN].tolist() if SKIP_COLUMN in studies.columns else _skip_reasons(studies)


def _skip_reasons(studies: pd.DataFrame) -> list[str]:
    from pipeline.rules import skip_reason

    return [skip_reason(str(a or ""), f) for a, f in zip(studies["abstract"], studies["flags"], strict=True)]


# What build_studies reads of a record: the study fields, and the dedupe features merge_group_fields ranks by.
STUDY_RECORD_COLUMNS = [
    "record_id", "source_file", "position", "title", "authors", "year", "doi", "venue", "volume", "issue", "pages",
    "abstract", "doc_type", "flags",
]


def study_records(store: Store, record_ids: Iterable[str], run_id: str | None = None) -> pd.DataFrame:
    """The records of one batch of studies, read from the store in the corpus frame's order (corpus_frame)."""
    frame = store.record_projection_of(list(record_ids), STUDY_RECORD_COLUMNS, run_id=run_id)
    return rows_in_order(frame, corpus_order(frame))


def studies_merged_in_order(built: Iterable[pd.DataFrame], reused: pd.DataFrame) -> Iterator[pd.DataFrame]:
    """Built batches of studies (each in study_id order, as build_studies gives them; the batches in group order,
    as runner.group_batches cuts them) merged with the studies reused from the cache (in study_id order, as the
    cache keeps them): consecutive parts in study_id order, each built batch with the reused studies before its
    end, so the parts can be written as they come (StudyTableWriter)."""
    reused_ids = reused["study_id"] if len(reused) else pd.Series([], dtype=str)
    taken = 0
    for batch in built:
        if not len(batch):
            continue
        upto = int(reused_ids.searchsorted(batch["study_id"].iloc[-1], side="right")) if len(reused_ids) else 0
        yield _in_study_order(batch if upto == taken else pd.concat([reused.iloc[taken:upto], batch], ignore_index=True))
        taken = upto
    if taken < len(reused):
        yield _in_study_order(reused.iloc[taken:])


def _in_study_order(studies: pd.DataFrame) -> pd.DataFrame:
    studies = studies.reset_index(drop=True)
    studies["year"] = studies["year"].astype("Int64")
    if not studies["study_id"].is_monotonic_increasing:
        studies = studies.sort_values("study_id", kind="stable").reset_index(drop=True)
    return studies


STUDY_CACHE_NAME = "studies.parquet"


def study_signatures(corpus: pd.DataFrame, groups: pd.DataFrame, codebook: Codebook) -> pd.Series:
    """study_id -> a hash of everything its study row is built from: its members' ids and flags (records never
    change otherwise), the codebook's lenses and this version. Equal signature, equal study row."""
    if not len(groups):
        return pd.Series(dtype=object)
    salt = f"{__version__}\x1f{hashlib.sha256(repr(codebook.lenses).encode('utf-8')).hexdigest()}"
    members = groups[["record_id", "duplicate_group"]].merge(corpus[["record_id", "flags"]], on="record_id", how="left")
    members = members.sort_values(["duplicate_group", "record_id"], kind="stable")
    parts = (members["record_id"].astype(str) + "\x1f" + members["flags"].fillna("").astype(str)).tolist()
    group = members["duplicate_group"].to_numpy(dtype=object)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])  # each group's members are consecutive now
    ends = np.r_[starts[1:], len(group)]
    joined = ("\x1e".join(parts[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True))
    digests = [hashlib.sha256(f"{salt}\x1e{text}".encode("utf-8")).hexdigest() for text in joined]
    return pd.Series(digests, index=pd.Index(group[starts], name="duplicate_group"), name="part")


def load_study_cache(path: Path) -> pd.DataFrame | None:
    """The studies of the last run with their signatures, or None (a missing or unreadable cache is rebuilt)."""
    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        log.warning("studies cache %s unreadable (%s): building every study", path, exc)
        return None


def reusable_studies(cache: pd.DataFrame | None, signatures: pd.Series) -> pd.DataFrame:
    """Cached study rows whose signature is unchanged (without the signature column)."""
    if cache is None or not {"signature", SKIP_COLUMN} <= set(cache.columns) or not len(signatures):
        return pd.DataFrame()  # none, or from a version that did not keep every column a study has now
    wanted = cache["study_id"].map(signatures)
    return cache[wanted.eq(cache["signature"]).fillna(False).astype(bool)].drop(columns="signature")


@dataclass
class CodingOutcome:
    """Rule hits for the studies, why some were set aside, and the cache entries this run adds."""

    hits: pd.DataFrame
    set_aside: dict[str, int]  # reason -> studies (empty abstract, not in English)
    new_cache: dict[str, str] = field(default_factory=dict)  # cache key -> hits JSON
    coded_now: int = 0  # studies the rule engine actually ran on (the others came from the cache)


def code_stage(studies: pd.DataFrame, codebook: Codebook, cached: dict[str, str] | None = None) -> CodingOutcome:
    """Code the studies; a study whose text and codebook are unchanged reuses its cached hits."""
    plan = plan_coding(studies, codebook, cached or {})
    tally = CodingTally()
    new_cache = tally.add(plan, code_batch(plan.todo, codebook))
    return tally.outcome(new_cache)


CODING_COLUMNS = ("study_id", "title", "abstract", "flags", SKIP_COLUMN)  # what the rules read of a study


@dataclass
class CodingPlan:
    """Which studies of a batch the rules must read (the others' hits come from the cache)."""

    studies: pd.DataFrame  # the batch (CODING_COLUMNS at least)
    keys: list[str]  # cache key per study, in the studies' order
    cached: dict[str, str]  # cache key -> hits JSON, for the keys found
    todo: pd.DataFrame  # the studies to code now


def plan_coding(studies: pd.DataFrame, codebook: Codebook, cached: dict[str, str]) -> CodingPlan:
    """`cached` may hold more keys than the batch's: only the batch's are kept."""
    keys = coding_cache_keys(studies, codebook)
    found = {key: cached[key] for key in keys if key in cached}
    todo = studies[np.array([key not in found for key in keys], dtype=bool)]  # a list would pick columns if empty
    return CodingPlan(studies=studies, keys=keys, cached=found, todo=todo)


def code_batch(studies: pd.DataFrame, codebook: Codebook) -> pd.DataFrame:
    """Rule hits for one batch of studies: pure, so any runner (threads, Dask workers) may run it."""
    from pipeline.rules import code_studies

    if not len(studies):
        return _empty_hits()
    with _ENGINE_LOCK:  # one engine per process; threads of the default runner take turns
        return code_studies(studies, codebook, id_column="study_id", engine=_engine_for(codebook))


@dataclass
class CodingTally:
    """The code stage's results, gathered batch by batch (so a batch's texts can go as soon as it is coded): the
    fresh hits, then the cached ones, in batch order; the studies set aside; the cache keys this run has added."""

    fresh: list[pd.DataFrame] = field(default_factory=list)
    reused: list[pd.DataFrame] = field(default_factory=list)
    set_aside: Counter[str] = field(default_factory=Counter)
    studies: int = 0
    coded_now: int = 0
    added_keys: set[str] = field(default_factory=set)

    def add(self, plan: CodingPlan, fresh: pd.DataFrame) -> dict[str, str]:
        """Take one batch (`fresh`: the hits of `plan.todo`); returns its cache entries not added before."""
        entries = {key: hits for key, hits in _cache_entries(plan, fresh).items() if key not in self.added_keys}
        self.added_keys.update(entries)
        self.fresh.append(fresh)
        ids = plan.studies["study_id"]
        self.reused.append(_cached_hits_frame([(plan.cached[k], i) for k, i in zip(plan.keys, ids) if k in plan.cached]))
        self.set_aside.update(code_stage_reasons(plan.studies))
        self.studies += len(plan.studies)
        self.coded_now += len(plan.todo)
        return entries

    def outcome(self, new_cache: dict[str, str] | None = None) -> CodingOutcome:
        """Every batch's hits as one frame (fresh first); `new_cache`: entries the caller still has to store."""
        from pipeline.rules import HIT_COLUMNS

        parts = [part for part in (*self.fresh, *self.reused) if len(part)]
        hits = pd.concat(parts, ignore_index=True) if parts else _empty_hits()
        set_aside = dict(sorted(self.set_aside.items()))
        log.info("code: rules ran on %d of %d studies (%d from cache); %d hits; set aside %s",
                 self.coded_now, self.studies, self.studies - self.coded_now, len(hits), set_aside or "none")
        return CodingOutcome(hits=hits[HIT_COLUMNS], set_aside=set_aside, new_cache=new_cache or {}, coded_now=self.coded_now)


def coding_cache_keys(studies: pd.DataFrame, codebook: Codebook) -> list[str]:
    # The codebook's full repr (every code, rule and cue) is deterministic: any edit changes the key.
    salt = f"{__version__}\x1f{codebook.fingerprint()}"
    return [
        hashlib.sha256("\x1f".join((salt, str(t or ""), str(a or ""), str(f or ""))).encode("utf-8")).hexdigest()
        for t, a, f in zip(studies["title"], studies["abstract"], studies["flags"])
    ]


_ENGINE_LOCK = threading.Lock()
_ENGINES: dict[str, Any] = {}  # codebook fingerprint -> compiled rule engine, one per process (each Dask worker)


def _engine_for(codebook: Codebook) -> Any:
    from pipeline.rules import build_engine

    fingerprint = codebook.fingerprint()
    if fingerprint not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[fingerprint] = build_engine(codebook)
    return _ENGINES[fingerprint]


def _empty_hits() -> pd.DataFrame:
    from pipeline.rules import HIT_COLUMNS

    return _typed_hits(pd.DataFrame(columns=HIT_COLUMNS))


def _typed_hits(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"start": "int64", "end": "int64", "n_sentences": "int64", "confidence": "float64"})


def _cache_entries(plan: CodingPlan, fresh: pd.DataFrame) -> dict[str, str]:
    """Cache key -> the study's hits as JSON (an empty list for a study without hits)."""
    rows_by_study: dict[str, list[dict[str, Any]]] = {}
    for row in fresh.to_dict("records"):
        rows_by_study.setdefault(str(row.pop("id")), []).append(row)
    todo_keys = [key for key in plan.keys if key not in plan.cached]
    return {
        key: json.dumps(rows_by_study.get(str(study_id), []), ensure_ascii=False)
        for key, study_id in zip(todo_keys, plan.todo["study_id"])
    }


def _cached_hits_frame(entries: list[tuple[str, str]]) -> pd.DataFrame:
    """One frame from many cached hits payloads (decoded once each; one frame built, not one per study)."""
    from pipeline.rules import HIT_COLUMNS

    rows = [{"id": study_id, **hit} for payload, study_id in entries for hit in orjson.loads(payload)]
    return _typed_hits(pd.DataFrame(rows, columns=HIT_COLUMNS)) if rows else _empty_hits()


def code_stage_reasons(studies: pd.DataFrame) -> dict[str, int]:
    """Studies the coder sets aside, by PRISMA reason (no abstract, not in English)."""
    return dict(sorted(Counter(_prisma_reason(r) for r in skip_reasons(studies) if r).items()))


def _prisma_reason(reason: str) -> str:
    return "no abstract" if reason == "empty abstract" else "not in English"


PRISMA_STUDY_COLUMNS = ["study_id", "records"]  # what the PRISMA counts read of the studies


def prisma_stage(
    records: list[Record] | pd.DataFrame | dict[str, int],
    studies: StudyTable | pd.DataFrame,
    assignments: pd.DataFrame,
    set_aside: dict[str, int],
) -> dict[str, Any]:
    """`records`: the corpus frame (corpus_frame), the records themselves, or identified_by_source of them."""
    from pipeline.export import prisma_counts

    by_source = records if isinstance(records, dict) else identified_by_source(records)
    return prisma_counts(
        study_columns(studies, PRISMA_STUDY_COLUMNS), assignments,
        identified_by_source=by_source, removed_before_screening=set_aside,
    )


def identified_by_source(records: list[Record] | pd.DataFrame) -> dict[str, int]:
    """Records per database (or per file when the database is unknown): PRISMA's 'identified from'."""
    if isinstance(records, pd.DataFrame):
        database = records["database"].fillna("").astype(str)
        return dict(Counter(database.where(database != "", records["source_file"].fillna("").astype(str))))
    return dict(Counter(record.database or record.source_file for record in records))


PENDING_DIR = "pending"  # under corpus/cache: files written before the store commits, published after it


def put_aside(frame: pd.DataFrame, path: Path) -> Path:
    """Write a frame the run needs again later to a Parquet file (atomically), so it takes no memory meanwhile
    (a million records' rule hits: ~0.4 GB, while the topic model runs); pd.read_parquet gives it back equal."""
    with atomic_write(path, "wb", encoding=None, newline=None) as handle:
        frame.to_parquet(handle, index=False)
    return path


def records_csv_files(workspace: Workspace) -> RecordsCsvFiles:
    cache = workspace.corpus_dir / "cache"
    return RecordsCsvFiles(
        published=workspace.outputs_dir / "records.csv", pending=pending_path(workspace, "records.csv"),
        layout=cache / records_csv.LAYOUT_NAME, pending_layout=pending_path(workspace, records_csv.LAYOUT_NAME),
    )


def pending_path(workspace: Workspace, name: str) -> Path:
    """Where a file the run writes early waits for the commit (so the frames it came from can be freed)."""
    return workspace.corpus_dir / "cache" / PENDING_DIR / name


def publish(pending: Path, target: Path) -> Path:
    """Move a pending file to its place atomically (a copy first when the two are on different filesystems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(pending, target)
    except OSError:
        with pending.open("rb") as source, atomic_write(target, "wb", encoding=None, newline=None) as handle:
            shutil.copyfileobj(source, handle)
        pending.unlink()
    return target


def export_stage(
    workspace: Workspace,
    studies: StudyTable | pd.DataFrame,
    assignments: pd.DataFrame,
    codebook: Codebook,
    prisma: dict[str, Any],
    duplicates_sheet: pd.DataFrame | Path,
    agreement: dict[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """The evidence matrix (CSV, XLSX, HTML), the PRISMA flow and the duplicates sheet (a frame, or the pending
    file corpus_pass wrote), into outputs/."""
    from pipeline.export import write_exports
    from pipeline.synth import STUDY_COLUMNS, build_matrix

    # The matrix's columns only (not the flags, record ids, sources). From a study table the abstracts (most of
    # its text) stay on disk, read back a chunk of the matrix at a time.
    spilled = {"abstract": SpilledTexts.from_table(studies, "abstract")} if isinstance(studies, StudyTable) else {}
    try:
        kept = [c for c in STUDY_COLUMNS if c not in spilled]
        matrix = build_matrix(assignments, study_columns(studies, kept), codebook, spilled=spilled)
        written = write_exports(
            matrix, prisma, workspace.outputs_dir, formats=("csv", "xlsx", "html", "prisma"), agreement=agreement
        )
    finally:
        for texts in spilled.values():
            texts.close()
    sheet_path = workspace.outputs_dir / "duplicates_sheet.csv"
    if isinstance(duplicates_sheet, Path):
        publish(duplicates_sheet, sheet_path)
    else:
        write_csv(duplicates_sheet, sheet_path)
    return [*written, sheet_path]


def harvest_stage(workspace: Workspace, store: Store) -> IngestResult:
    """Ask every enabled source for what is new; a source that cannot be reached is skipped with one line."""
    from pipeline.harvest import default_base_url, harvest, offline_reason

    result = IngestResult()
    reachable, unreachable = {}, []
    for name, query in workspace.config.sources.enabled().items():
        base_url = query.base_url or default_base_url(name)
        reason = offline_reason(base_url)
        if reason:
            unreachable.append(f"{name}: {reason}")
        else:
            reachable[name] = (query, base_url)
    if unreachable:
        log.warning("harvest: skipped %d source(s), running on the local corpus (%s)", len(unreachable), "; ".join(unreachable))
    for name, (query, base_url) in reachable.items():
        harvested = harvest(
            name,
            query.query,
            since=query.since,
            max_records=query.max_records,
            base_url=base_url,
            filters=query.filters,
            raw_dir=workspace.corpus_dir / "raw",
            checkpoint_path=workspace.corpus_dir / "harvest" / f"{name}.checkpoint.json",
            known_ids=store.own_ids(source_format="api", source_file=name),
        )
        _add_harvested(result, name, harvested)
        log.info("harvest: %s gave %d new record(s) in %d page(s)", name, len(harvested.records), harvested.pages)
    return result


def _add_harvested(result: IngestResult, source: str, harvested: Any) -> None:
    per_payload = Counter(record.extra.get("raw_sha256", "") for record in harvested.records)
    for path in harvested.raw_files:
        sha = path.name.split(".")[0]
        result.new_inputs.append(
            InputEntry(
                sha256=sha,
                path=str(path),
                source_format=f"api:{source}",
                encoding="utf-8",
                size_bytes=path.stat().st_size,
                n_records=per_payload.get(sha, 0),
            )
        )
    for record in harvested.records:
        record.record_id = make_record_id(f"api:{source}", record.id)
        result.record_input[record.record_id] = record.extra.get("raw_sha256", "")
        result.records.append(record)


def merge_ingests(first: IngestResult, second: IngestResult) -> IngestResult:
    return IngestResult(
        records=[*first.records, *second.records],
        new_inputs=[*first.new_inputs, *second.new_inputs],
        record_input={**first.record_input, **second.record_input},
        already_ingested=[*first.already_ingested, *second.already_ingested],
    )


def changes_since(
    previous: DerivedTables,
    groups: pd.DataFrame,
    assignments: pd.DataFrame,
    prisma: dict[str, Any],
    *,
    new_records: int,
) -> dict[str, Any]:
    """The what-changed report of a living-review cycle: new studies, new / changed / dropped codes."""
    old_studies = set(previous.groups["duplicate_group"]) if len(previous.groups) else set()
    new_studies = sorted(set(groups["duplicate_group"]) - old_studies) if len(groups) else []
    old = _code_index(previous.assignments)
    now = _code_index(assignments)
    added = sorted(set(now) - set(old))
    dropped = sorted(set(old) - set(now))
    changed = sorted(key for key in set(now) & set(old) if now[key] != old[key])
    counts = {
        "records_new": new_records,
        "studies_new": len(new_studies),
        "codes_new": len(added),
        "codes_changed": len(changed),
        "codes_dropped": len(dropped),
    }
    return {
        "counts": counts,
        "new_studies": new_studies,
        "codes_new": [list(k) for k in added],
        "codes_changed": [list(k) for k in changed],
        "codes_dropped": [list(k) for k in dropped],
        "prisma_cumulative": prisma,
    }


def _code_index(assignments: pd.DataFrame) -> dict[tuple[str, str], tuple[str, str]]:
    if assignments.empty:
        return {}
    return {
        (s, c): (d, m)
        for s, c, d, m in zip(assignments["study_id"], assignments["code"], assignments["direction"], assignments["method"])
    }


def write_changes_report(workspace: Workspace, changes: dict[str, Any]) -> Path:
    """outputs/changes.json: what this cycle added or changed, with the cumulative PRISMA counts."""
    path = workspace.outputs_dir / "changes.json"
    write_json(changes, path)
    return path


def agreement_stage(ledger: pd.DataFrame, machine: pd.DataFrame) -> dict[str, pd.DataFrame]:
    from pipeline.agreement import agreement_report

    return agreement_report(ledger, machine)


def final_assignments(machine: pd.DataFrame, ledger: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Machine codes with the reviewers' decisions applied; a decision follows its study through dedup changes."""
    from pipeline.ledger import apply_ledger, remap_decisions

    if ledger.empty:
        return machine
    record_to_group = dict(zip(groups["record_id"].astype(str), groups["duplicate_group"].astype(str)))
    return apply_ledger(machine, remap_decisions(ledger, record_to_group))


TOPIC_STATE_DIR = "topics"  # under corpus/cache: the fitted model and every study's placement
TOPIC_FRAME_ROWS = 20_000  # studies handed to the topic model at a time


def topics_stage(studies: StudyTable | pd.DataFrame, codebook: Codebook, workspace: Workspace, *, progress: Any = None) -> Any:
    """Topic models over the studies that have an abstract; their mapped codes become suggestions (method 'topic').

    The model is fitted on at most `topics.max_fit_studies` studies and the rest are placed in batches; the model
    and the placements are kept in corpus/cache/topics, so a later run places only the studies it has not seen
    (and refits when more than `topics.refit_share` of them are new). The state is keyed by study text, so a run
    that fails after this stage leaves nothing a later run could misread.
    """
    from pipeline.topics import TopicSettings, model_topics

    settings = workspace.config.topics

    usable: list[np.ndarray] = []  # per slice, the studies with a usable abstract: worked out in the first pass only

    def batches() -> Iterable[pd.DataFrame]:
        # TOPIC_FRAME_ROWS studies at a time, read anew for each pass of the topic model: never every text at once
        for number, part in enumerate(study_slices(studies, _topic_columns(studies), TOPIC_FRAME_ROWS)):
            if number == len(usable):
                usable.append(np.array([not reason for reason in skip_reasons(part)], dtype=bool))
            yield part[usable[number]].rename(columns={"study_id": "id"})[["id", "title", "abstract"]]

    result = model_topics(
        batches,
        codebook,
        TopicSettings(
            backend=settings.embedding,
            seed=settings.seed,
            min_topic_size=settings.min_topic_size,
            max_fit_studies=settings.max_fit_studies,
            refit_share=settings.refit_share,
        ),
        state_dir=workspace.corpus_dir / "cache" / TOPIC_STATE_DIR,
        progress=progress,
    )
    log.info("topics: %s; %d topic(s), %d suggestion(s)", result.status, len(result.topics), len(result.suggestions))
    return result


def _topic_columns(studies: StudyTable | pd.DataFrame) -> list[str]:
    columns = ["study_id", "title", "abstract", "flags"]
    return [*columns, SKIP_COLUMN] if SKIP_COLUMN in studies.columns else columns


def write_topics_stage(workspace: Workspace, result: Any, folder: Path | None = None) -> list[Path]:
    """The topic outputs, into `folder` (default: outputs/)."""
    from pipeline.topics import write_topic_outputs

    figure_cache = workspace.corpus_dir / "cache" / TOPIC_STATE_DIR
    return write_topic_outputs(result, folder or workspace.outputs_dir, figure_cache=figure_cache)


TOPIC_OUTPUTS_DIR = "topic_outputs"  # under corpus/cache/pending: the topic outputs, published after the commit


def topics_pass(workspace: Workspace, studies: StudyTable, codebook: Codebook) -> Any:
    """topics_stage, then its outputs written into the pending folder (publish_topic_outputs moves them into outputs/
    after the commit). Meant for a child process (subprocess_stage.run_in_child): BERTopic's imports (~0.5 GB), the
    model and its texts go when it exits. Returns the result without those and without the per-study table (written
    already): what assign and the run's counts need."""
    from dataclasses import replace

    from pipeline.progress import stage_progress

    with stage_progress("topics", len(studies)) as advance:
        result = topics_stage(studies, codebook, workspace, progress=advance)
    pending = pending_path(workspace, TOPIC_OUTPUTS_DIR)
    shutil.rmtree(pending, ignore_errors=True)  # what a run that failed after its topics left
    write_topics_stage(workspace, result, pending)
    return replace(
        result, model=None, documents=[], reduced_embeddings=None, fitted=None, assignments=None,
        study_topics=empty_like(result.study_topics),
    )


def publish_topic_outputs(workspace: Workspace) -> list[Path]:
    """Move the outputs topics_pass wrote into outputs/ (in name order)."""
    pending = pending_path(workspace, TOPIC_OUTPUTS_DIR)
    return [publish(path, workspace.outputs_dir / path.name) for path in sorted(pending.iterdir())]
