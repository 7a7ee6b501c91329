"""The review store: one embedded database per workspace (SQLite by default, any SQLAlchemy URL).

Holds the records, the index of raw inputs (file hash, source, time) and the runs (provenance).

A run's lifecycle (the streaming path, bounded memory):

    store.begin_run(run)                            runs row, status 'running'
    store.stage_records(run_id, records, ...)       one transaction per batch: *staged* rows
    store.stage_inputs(run_id, entries)             one transaction per batch
    store.stage_flag_updates(run_id, flags)         flag changes (truncated prefixes), committed rows too
    store.commit_run(run, groups=..., ...)          ONE transaction: the run's status becomes 'committed'

A record or input row belongs to the run that wrote it (`run_id`) and is visible to readers only once
that run is committed, so a run that dies half-way (even SIGKILLed) leaves the store, as far as any
reader can tell, exactly as it was; `begin_run` then deletes the dead run's staged rows. Flag changes
to records that are already committed wait in `record_updates` and are applied inside the commit.
Readers see committed rows only, unless given `run_id=` of the running run: then they also see that
run's staged rows and pending flag changes.

`commit_run` still accepts inputs and records itself (the in-memory path: no `begin_run`, everything
in the commit's one transaction).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.clean import flag_truncated_prefixes, prefix_head
from pipeline.errors import ReviewError
from pipeline.records import LIST_COLUMNS, LIST_SEPARATOR, RECORD_COLUMNS, Record, record_from_dict

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
RUNNING, COMMITTED = "running", "committed"
_CHUNK = 1000  # rows per executemany and per IN (...) list: well under SQLite's 32,766 variables
_PROJECTION_CHUNK = 20_000  # rows fetched at a time when building a projection

metadata = sa.MetaData()

meta_table = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

inputs_table = sa.Table(
    "inputs",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("source_format", sa.String(32), nullable=False),
    sa.Column("encoding", sa.String(32), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("n_records", sa.Integer, nullable=False),
    sa.Column("added_at", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
)

# Record fields kept as real columns (schema 2) besides the whole record as JSON in `data`: what
# projections read (dedup features, PRISMA by source) without decoding JSON. Lists are joined with
# '; ' exactly as `records_to_frame` joins them. `data` comes last: SQLite then never reads a row's
# overflow pages (the long abstract) for a query that does not ask for it.
_COLUMN_FIELDS = ("authors", "venue", "volume", "issue", "pages", "doc_type", "database", "language", "flags")

records_table = sa.Table(
    "records",
    metadata,
    sa.Column("record_id", sa.String(40), primary_key=True),
    sa.Column("input_sha256", sa.String(64), nullable=False),
    sa.Column("own_id", sa.Text, nullable=False),
    sa.Column("source_format", sa.String(32), nullable=False),
    sa.Column("source_file", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("year", sa.Integer),
    sa.Column("doi", sa.Text, nullable=False),
    *(sa.Column(name, sa.Text) for name in _COLUMN_FIELDS),
    sa.Column("has_abstract", sa.Boolean),
    sa.Column("prefix_head", sa.String(64)),  # clean.prefix_head of the abstract: truncated-copy candidates
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the whole cleaned Record as JSON
    sa.Index("ix_records_order", "input_sha256", "position", "record_id"),
    sa.Index("ix_records_prefix_head", "prefix_head"),
    sa.Index("ix_records_run", "run_id", "prefix_head"),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32), nullable=False),
    sa.Column("package_version", sa.String(32), nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),  # JSON list of {path, sha256, status}
    sa.Column("counts", sa.Text, nullable=False),  # JSON {stage: {count name: n}}
    sa.Column("status", sa.String(16), nullable=False, server_default=COMMITTED),  # running | committed
)

# Flag changes a running run makes to records that are already committed (a new record shows that a
# stored abstract is a truncated copy); applied to `records` inside the run's commit transaction.
record_updates_table = sa.Table(
    "record_updates",
    metadata,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("record_id", sa.String(40), primary_key=True),
    sa.Column("flags", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)


# Derived state, replaced by every run inside the run's transaction: the dedup groups and the
# final code assignments (kept so the next run can report what changed).
groups_table = sa.Table(
    "dedup_groups",
    metadata,
    sa.Column("record_id", sa.String(40), primary_key=True),
    sa.Column("duplicate_group", sa.String(40), nullable=False, index=True),
    sa.Column("keep", sa.Boolean, nullable=False),
    sa.Column("match_reason", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
)

assignments_table = sa.Table(
    "assignments",
    metadata,
    sa.Column("assignment_id", sa.String(40), primary_key=True),
    sa.Column("study_id", sa.Text, nullable=False, index=True),
    sa.Column("code", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("direction", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("rule", sa.Text, nullable=False),
    sa.Column("decided_by", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
)

# Rule hits per study text and codebook: a living-review run codes only studies it has not seen.
coding_cache_table = sa.Table(
    "coding_cache",
    metadata,
    sa.Column("cache_key", sa.String(64), primary_key=True),  # sha256 of codebook, version, title, abstract, flags
    sa.Column("hits", sa.Text, nullable=False),  # JSON list of hit rows (study id left out)
    sa.Column("run_id", sa.String(40), nullable=False),
)

# Reviewer decisions: an append-only ledger (who, when, what, why, from which sheet). Rows are
# never updated or deleted; the latest decision per (study, code) is the one in force.
decisions_table = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(40), primary_key=True),  # hash of the decision's content
    sa.Column("sequence", sa.Integer, nullable=False, index=True),  # order of arrival
    sa.Column("study_id", sa.Text, nullable=False, index=True),
    sa.Column("assignment_id", sa.Text, nullable=False),  # '' for a code the reviewer added
    sa.Column("code", sa.Text, nullable=False),  # the code the decision is about
    sa.Column("decision", sa.String(20), nullable=False),  # accept|reject|change_code|change_direction|add
    sa.Column("new_code", sa.Text, nullable=False),
    sa.Column("new_direction", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("decided_at", sa.String(32), nullable=False),
    sa.Column("sheet_name", sa.Text, nullable=False),
    sa.Column("sheet_sha256", sa.String(64), nullable=False),
    sa.Column("machine_method", sa.Text, nullable=False),  # what the machine had said (rule/topic/'')
    sa.Column("machine_rule", sa.Text, nullable=False),  # which rule fired, for per-rule precision
    sa.Column("machine_direction", sa.Text, nullable=False, server_default=""),
    sa.Column("machine_confidence", sa.Float, nullable=True),
)

# Reviewer decisions about duplicates (split / join), applied on every dedup run.
dedupe_decisions_table = sa.Table(
    "dedupe_decisions",
    metadata,
    sa.Column("decision_id", sa.String(40), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("record_id_a", sa.Text, nullable=False),
    sa.Column("record_id_b", sa.Text, nullable=False),
    sa.Column("decision", sa.String(20), nullable=False),  # same | different
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("decided_at", sa.String(32), nullable=False),
    sa.Column("sheet_sha256", sa.String(64), nullable=False),
)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class InputEntry:
    """One raw input file as the store indexes it."""

    sha256: str
    path: str
    source_format: str
    encoding: str
    size_bytes: int
    n_records: int


@dataclass
class RunRecord:
    """Provenance of one run: when, which inputs, which package version, counts per stage."""

    run_id: str
    started_at: str
    package_version: str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    finished_at: str = ""


# Projection columns: every Record field but `extra` (as `records_to_frame` gives them), plus
# `has_abstract` and `input_sha256`. Fields without a column of their own are decoded from `data`.
PROJECTION_COLUMNS: tuple[str, ...] = (
    *(name for name in RECORD_COLUMNS if name != "extra"),
    "has_abstract",
    "input_sha256",
)
_ROW_COLUMNS = {"id": "own_id", "record_id": "record_id", "input_sha256": "input_sha256", "has_abstract": "has_abstract"}
_ROW_COLUMNS.update({name: name for name in ("source_format", "source_file", "position", "title", "year", "doi")})
_ROW_COLUMNS.update({name: name for name in _COLUMN_FIELDS})
_DATA_LABEL = "record_json"


@dataclass
class DerivedTables:
    """The dedup groups and machine codes as committed runs left them, and how many runs had committed when
    they were read: given back to commit_run, it writes only the rows that differ, unless a run committed since."""

    groups: pd.DataFrame
    assignments: pd.DataFrame
    committed_runs: int


class Store:
    """Thin wrapper over a SQLAlchemy engine; create with `open_store(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._begun: set[str] = set()  # runs this object began: committing one must find its rows

    # --- reading (committed rows; `run_id=` adds that running run's staged rows) -----------------
    def known_input_hashes(self, *, run_id: str | None = None) -> set[str]:
        query = sa.select(inputs_table.c.sha256).where(_visible(inputs_table, run_id))
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def count_records(self, *, run_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(records_table).where(_visible(records_table, run_id))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def iter_records(self, *, run_id: str | None = None) -> Iterator[Record]:
        """All records in a stable order (input file, then position, then record_id)."""
        for batch in self.iter_record_batches(_CHUNK, run_id=run_id):
            yield from batch

    def iter_record_batches(self, batch_size: int, *, run_id: str | None = None) -> Iterator[list[Record]]:
        """The records in batches of at most `batch_size`, in the order of `iter_records`.

        Each batch is its own short query (keyset pagination on the order index), so no connection or
        read transaction stays open while the caller works on a batch, and memory holds one batch.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        source, data, _ = _record_source(run_id)
        r = records_table.c
        order = (r.input_sha256, r.position, r.record_id)
        after: tuple[str, int, str] | None = None
        while True:
            query = sa.select(*order, data).select_from(source).where(_visible(records_table, run_id))
            if after is not None:
                query = query.where(sa.tuple_(*order) > sa.tuple_(*(sa.literal(v) for v in after)))
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(*order).limit(batch_size)).all()
            if not rows:
                return
            yield [_record_from_json(row[3]) for row in rows]
            after = (rows[-1][0], rows[-1][1], rows[-1][2])

    def record_projection(
        self, columns: Sequence[str], *, run_id: str | None = None, chunk_size: int = _PROJECTION_CHUNK
    ) -> pd.DataFrame:
        """A frame of chosen record fields, one row per record, in the order of `iter_records`.

        Values are those of `records_to_frame` (lists joined with '; ', `year` as Int64), plus
        `has_abstract` (bool) and `input_sha256`. Fields stored as columns (everything but keywords,
        abstract, publisher, url, issn) are read without decoding the record's JSON; rows are fetched
        `chunk_size` at a time and each chunk becomes a small frame at once, so no Record objects
        and no full rows are held for the whole corpus.
        """
        frames = list(self.iter_record_projection(columns, run_id=run_id, chunk_size=chunk_size))
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def iter_record_projection(
        self, columns: Sequence[str], *, run_id: str | None = None, chunk_size: int = _PROJECTION_CHUNK
    ) -> Iterator[pd.DataFrame]:
        """`record_projection` as frames of at most `chunk_size` rows, in its order (one empty frame when the
        store has no records), for a pass that needs one chunk at a time (e.g. every abstract, once)."""
        query, from_json = self._projection_query(_known_projection(columns), run_id)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=chunk_size).execute(query)
            empty = True
            for rows in result.partitions():
                empty = False
                yield _projection_frame(rows, list(columns), from_json)
        if empty:
            yield _projection_frame([], list(columns), from_json)

    def record_projection_of(
        self, record_ids: Sequence[str], columns: Sequence[str], *, run_id: str | None = None
    ) -> pd.DataFrame:
        """`record_projection` of just these records (those visible; unknown ids are left out), in the order of
        `iter_records`: one batch of a stage can read its records without the whole corpus in memory."""
        query, from_json = self._projection_query(_known_projection(columns), run_id)
        order = (records_table.c.input_sha256, records_table.c.position, records_table.c.record_id)
        query = query.add_columns(*(c.label(f"_order_{i}") for i, c in enumerate(order)))
        rows: list[Any] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(set(record_ids)), _CHUNK):
                rows.extend(conn.execute(query.where(records_table.c.record_id.in_(chunk))).all())
        rows.sort(key=lambda row: tuple(row[-len(order) :]))  # the chunks' rows in the store's order
        return _projection_frame([tuple(row[: -len(order)]) for row in rows], list(columns), from_json)

    def _projection_query(self, columns: list[str], run_id: str | None) -> tuple[sa.Select, list[str]]:
        source, data, flags = _record_source(run_id)
        from_json = [c for c in columns if c not in _ROW_COLUMNS]
        selected = []
        for name in columns:
            if name == "flags":
                selected.append(flags.label("flags"))
            elif name in _ROW_COLUMNS:
                selected.append(records_table.c[_ROW_COLUMNS[name]].label(name))
        if from_json:
            selected.append(data.label(_DATA_LABEL))
        r = records_table.c
        query = (
            sa.select(*selected)
            .select_from(source)
            .where(_visible(records_table, run_id))
            .order_by(r.input_sha256, r.position, r.record_id)
        )
        return query, from_json

    def own_ids(self, *, source_format: str, source_file: str, run_id: str | None = None) -> set[str]:
        """The sources' own ids of the stored records from one source (e.g. OpenAlex W-ids)."""
        query = sa.select(records_table.c.own_id).where(
            records_table.c.source_format == source_format,
            records_table.c.source_file == source_file,
            _visible(records_table, run_id),
        )
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def inputs(self, *, run_id: str | None = None) -> list[InputEntry]:
        query = (
            sa.select(inputs_table)
            .where(_visible(inputs_table, run_id))
            .order_by(inputs_table.c.added_at, inputs_table.c.path)
        )
        with self.engine.connect() as conn:
            return [
                InputEntry(
                    sha256=r.sha256,
                    path=r.path,
                    source_format=r.source_format,
                    encoding=r.encoding,
                    size_bytes=r.size_bytes,
                    n_records=r.n_records,
                )
                for r in conn.execute(query)
            ]

    def runs(self) -> list[RunRecord]:
        """The committed runs, oldest first."""
        query = (
            sa.select(runs_table)
            .where(runs_table.c.status == COMMITTED)
            .order_by(runs_table.c.started_at, runs_table.c.run_id)
        )
        with self.engine.connect() as conn:
            return [
                RunRecord(
                    run_id=r.run_id,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    package_version=r.package_version,
                    inputs=json.loads(r.inputs),
                    counts=json.loads(r.counts),
                )
                for r in conn.execute(query)
            ]

    def run_status(self, run_id: str) -> str | None:
        """'running', 'committed', or None for a run the store does not know (or discarded)."""
        with self.engine.connect() as conn:
            return _run_status(conn, run_id)

    def close_connections(self) -> None:
        """Close the pooled connections (and with them SQLite's page caches, 32 MB each); the next query reopens one."""
        self.engine.dispose()

    def table_frame(self, table: sa.Table, *, rows_per_read: int = _PROJECTION_CHUNK) -> pd.DataFrame:
        """A whole derived table as a frame, in primary-key order, read `rows_per_read` rows at a time: a million
        groups or codes never exist as Python rows all at once (~1.5 GB), only as the frame's columns."""
        columns = [c.name for c in table.columns]
        query = sa.select(table).order_by(*table.primary_key.columns)
        parts = []
        with self.engine.connect() as conn:
            for rows in conn.execution_options(yield_per=rows_per_read).execute(query).partitions():
                parts.append(pd.DataFrame.from_records([tuple(row) for row in rows], columns=columns))
        if not parts:
            return pd.DataFrame(columns=columns)
        # A part whose column is all empty has it as objects: typed again over the whole column, as read at once.
        return pd.concat(parts, ignore_index=True).infer_objects() if len(parts) > 1 else parts[0]

    def committed_runs(self) -> int:
        """How many runs have committed (it changes exactly when a run commits)."""
        with self.engine.connect() as conn:
            return _committed_runs(conn)

    def record_ids_changed_by(self, run_id: str) -> list[str]:
        """The records a running run adds or changes (its staged records and its pending flag changes), sorted."""
        r, u = records_table.c, record_updates_table.c
        with self.engine.connect() as conn:
            staged = {row[0] for row in conn.execute(sa.select(r.record_id).where(r.run_id == run_id))}
            updated = {row[0] for row in conn.execute(sa.select(u.record_id).where(u.run_id == run_id))}
        return sorted(staged | updated)

    def derived_tables(self) -> DerivedTables:
        """The derived tables as committed now (the count is read first: a commit in between makes it stale,
        never the tables older than it says)."""
        with self.engine.connect() as conn:
            committed = _committed_runs(conn)
        return DerivedTables(self.table_frame(groups_table), self.table_frame(assignments_table), committed)

    def cached_hits(self, keys: set[str]) -> dict[str, str]:
        """Cached rule hits (JSON) for the given cache keys that committed runs stored (a running run's staged
        entries are left out, so what a run reuses never depends on how far its own batches have got)."""
        found: dict[str, str] = {}
        ordered = sorted(keys)
        with self.engine.connect() as conn:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                query = sa.select(coding_cache_table.c.cache_key, coding_cache_table.c.hits).where(
                    coding_cache_table.c.cache_key.in_(chunk), _visible(coding_cache_table, None)
                )
                found.update({key: hits for key, hits in conn.execute(query)})
        return found

    def stage_coding_cache(self, run_id: str, entries: Mapping[str, str]) -> int:
        """Write one batch of a running run's new coding-cache entries (cache key -> hits JSON) in one transaction;
        they count as cached once the run commits. Keys must be new to the store and to the run."""
        rows = _coding_cache_rows(run_id, entries)
        if rows:
            with self.engine.begin() as conn:
                conn.execute(coding_cache_table.insert(), rows)
        return len(rows)

    # --- truncated-prefix candidates (see pipeline.batches.flag_truncated_prefixes_in_store) ------
    def iter_staged_prefix_heads(self, run_id: str, chunk_size: int = _CHUNK) -> Iterator[list[str]]:
        """The distinct `prefix_head` keys of a run's staged records, sorted, `chunk_size` at a time."""
        r = records_table.c
        after: str | None = None
        while True:
            query = sa.select(r.prefix_head).where(r.run_id == run_id, r.prefix_head.is_not(None)).distinct()
            if after is not None:
                query = query.where(r.prefix_head > after)
            with self.engine.connect() as conn:
                heads = [row[0] for row in conn.execute(query.order_by(r.prefix_head).limit(chunk_size))]
            if not heads:
                return
            yield heads
            after = heads[-1]

    def shared_prefix_heads(self, heads: Sequence[str], *, run_id: str | None = None) -> dict[str, int]:
        """Of `heads`, those that two or more visible records share (only those can hold a prefix), in order,
        with how many records share each."""
        r = records_table.c
        found: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(heads), _CHUNK):
                query = (
                    sa.select(r.prefix_head, sa.func.count())
                    .where(r.prefix_head.in_(chunk), _visible(records_table, run_id))
                    .group_by(r.prefix_head)
                    .having(sa.func.count() > 1)
                )
                found.update((head, int(count)) for head, count in conn.execute(query))
        return dict(sorted(found.items()))

    def records_with_prefix_heads(self, heads: Sequence[str], *, run_id: str | None = None) -> list[Record]:
        """Every visible record whose abstract has one of these heads, in the order of `iter_records`."""
        source, data, _ = _record_source(run_id)
        r = records_table.c
        keyed: list[tuple[tuple[str, int, str], Record]] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(sorted(heads), _CHUNK):
                query = (
                    sa.select(r.input_sha256, r.position, r.record_id, data)
                    .select_from(source)
                    .where(r.prefix_head.in_(chunk), _visible(records_table, run_id))
                )
                keyed.extend(((a, b, c), _record_from_json(d)) for a, b, c, d in conn.execute(query))
        keyed.sort(key=lambda pair: pair[0])
        return [record for _, record in keyed]

    # --- reviewer decisions about duplicates ----------------------------------------------------
    def append_dedupe_decisions(self, decisions: pd.DataFrame, reviewer: str, sheet_sha256: str) -> int:
        """Append split/join decisions to their ledger; a decision already recorded is not written twice."""
        import hashlib

        with self.engine.begin() as conn:
            known = {row[0] for row in conn.execute(sa.select(dedupe_decisions_table.c.decision_id))}
            sequence = conn.execute(sa.select(sa.func.count()).select_from(dedupe_decisions_table)).scalar_one()
            latest = self._latest_dedupe(conn)
            rows = []
            for a, b, decision in zip(decisions["record_id_a"], decisions["record_id_b"], decisions["decision"]):
                if latest.get((a, b)) == decision:
                    continue  # unchanged: importing the same sheet twice adds nothing
                content = "\x1f".join((a, b, decision, reviewer, sheet_sha256))
                decision_id = "d" + hashlib.sha256(content.encode("utf-8")).hexdigest()[:15]
                if decision_id in known:
                    continue
                sequence += 1
                rows.append({"decision_id": decision_id, "sequence": sequence, "record_id_a": a, "record_id_b": b,
                             "decision": decision, "reviewer": reviewer, "decided_at": utc_now(),
                             "sheet_sha256": sheet_sha256})
            if rows:
                conn.execute(dedupe_decisions_table.insert(), rows)
        return len(rows)

    @staticmethod
    def _latest_dedupe(conn: Connection) -> dict[tuple[str, str], str]:
        query = sa.select(
            dedupe_decisions_table.c.record_id_a, dedupe_decisions_table.c.record_id_b, dedupe_decisions_table.c.decision
        ).order_by(dedupe_decisions_table.c.sequence)
        return {(a, b): d for a, b, d in conn.execute(query)}

    def dedupe_decisions(self) -> pd.DataFrame:
        """The reviewer's split/join decisions in force: the latest one per pair of records."""
        ledger = self.table_frame(dedupe_decisions_table).sort_values("sequence", kind="stable")
        latest = ledger.drop_duplicates(["record_id_a", "record_id_b"], keep="last")
        return latest[["record_id_a", "record_id_b", "decision", "reviewer"]].reset_index(drop=True)

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return _schema_version(conn)

    # --- a run's lifecycle: begin, stage per batch, commit ----------------------------------------
    def begin_run(self, run: RunRecord) -> None:
        """Register a running run (its rows stay invisible until `commit_run`); first discard the staged
        rows of any run that never committed (one run at a time per store: a new run means it died)."""
        self.discard_unfinished_runs()
        self._begun.add(run.run_id)
        with self.engine.begin() as conn:
            conn.execute(
                runs_table.insert().values(
                    run_id=run.run_id,
                    started_at=run.started_at,
                    finished_at="",
                    package_version=run.package_version,
                    inputs="[]",
                    counts="{}",
                    status=RUNNING,
                )
            )

    def discard_unfinished_runs(self) -> list[str]:
        """Delete every staged row of runs that began but never committed; returns their run ids."""
        with self.engine.begin() as conn:
            dead = sorted(row[0] for row in conn.execute(sa.select(runs_table.c.run_id).where(runs_table.c.status == RUNNING)))
            if dead:
                for table in (records_table, inputs_table, record_updates_table, coding_cache_table, runs_table):
                    conn.execute(table.delete().where(table.c.run_id.in_(dead)))
        if dead:
            log.info("discarded the staged rows of %d run(s) that never committed: %s", len(dead), ", ".join(dead))
        return dead

    def stage_records(self, run_id: str, records: Iterable[Record], record_input: Mapping[str, str]) -> int:
        """Write one batch of a running run's records (invisible until the run commits), in one
        transaction. A record whose record_id the store already has is skipped, as at commit.
        Returns how many rows were written."""
        with self.engine.begin() as conn:
            _require_running(conn, run_id)
            return _insert_new_records(conn, run_id, records, record_input)

    def stage_inputs(self, run_id: str, entries: Iterable[InputEntry]) -> int:
        """Index one batch of a running run's finished input files (invisible until it commits)."""
        with self.engine.begin() as conn:
            _require_running(conn, run_id)
            return _insert_new_inputs(conn, run_id, entries)

    def stage_flag_updates(self, run_id: str, flags: Mapping[str, Sequence[str]]) -> tuple[int, int]:
        """New flag lists for records (record_id -> all its flags). The run's own staged rows are
        rewritten at once; committed records' changes wait in `record_updates` until the commit.
        Returns (staged rows rewritten, committed records with a pending change)."""
        staged = committed = 0
        with self.engine.begin() as conn:
            _require_running(conn, run_id)
            for chunk in _chunks(sorted(flags), _CHUNK):
                own, others = _current_data(conn, run_id, chunk)
                for record_id, (data, _) in own.items():
                    new_data, new_flags = _with_flags(data, flags[record_id])
                    conn.execute(
                        records_table.update()
                        .where(records_table.c.record_id == record_id, records_table.c.run_id == run_id)
                        .values(data=new_data, flags=new_flags)
                    )
                updates = [(rid, *_with_flags(data, flags[rid])) for rid, (data, _) in others.items()]
                _upsert_updates(conn, run_id, updates)
                staged, committed = staged + len(own), committed + len(updates)
        return staged, committed

    def commit_run(
        self,
        run: RunRecord,
        *,
        new_inputs: Iterable[InputEntry] = (),
        new_records: Iterable[Record] = (),
        record_input: Mapping[str, str] | None = None,
        groups: pd.DataFrame | None = None,
        assignments: pd.DataFrame | None = None,
        coding_cache: dict[str, str] | None = None,
        batch_size: int = _CHUNK,
        previous: DerivedTables | None = None,
    ) -> None:
        """Make a run's results visible atomically: all of it or none of it.

        In ONE transaction: the given inputs and records (those not staged already), the run's pending
        flag changes to committed records, the derived tables, the coding cache, and the run's row
        (status 'committed'; it is inserted when the run was never begun). A begun run's staged rows
        become visible through that status, without being copied.

        `previous` (derived_tables, read during the run): when no run has committed since, only the groups and
        codes that differ from it are deleted and inserted (an update changes a few percent of them); a derived
        row's run_id is then the run that last changed it.
        """
        run.finished_at = run.finished_at or utc_now()
        with self.engine.begin() as conn:
            begun = _run_status(conn, run.run_id)
            if begun == COMMITTED:
                raise ReviewError(f"run {run.run_id} is already committed; start a new run to change the store.")
            if begun is None and run.run_id in self._begun:
                raise ReviewError(
                    f"run {run.run_id} was discarded while it ran (another run began on this store); "
                    "run the review again, one run at a time per store."
                )
            _insert_new_inputs(conn, run.run_id, new_inputs)
            _insert_new_records(conn, run.run_id, new_records, record_input or {}, batch_size)
            _apply_updates(conn, run.run_id)
            current = previous if previous is not None and previous.committed_runs == _committed_runs(conn) else None
            if groups is not None:
                _replace(conn, groups_table, groups, run.run_id, current.groups if current else None)
            if assignments is not None:
                _replace(conn, assignments_table, assignments, run.run_id, current.assignments if current else None)
            if coding_cache:
                conn.execute(coding_cache_table.insert(), _coding_cache_rows(run.run_id, coding_cache))
            _write_run_row(conn, run, begun is not None)


def _coding_cache_rows(run_id: str, entries: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"cache_key": key, "hits": hits, "run_id": run_id} for key, hits in sorted(entries.items())]


# --- visibility ------------------------------------------------------------------------------------
def _visible(table: sa.Table, run_id: str | None) -> sa.ColumnElement[bool]:
    """Rows of committed runs (one statement, so a concurrent commit is seen whole or not at all),
    plus the rows of `run_id` when given."""
    unfinished = sa.select(runs_table.c.run_id).where(runs_table.c.status == RUNNING)
    if run_id is None:
        return table.c.run_id.not_in(unfinished)
    return sa.or_(table.c.run_id == run_id, table.c.run_id.not_in(unfinished))


def _record_source(run_id: str | None) -> tuple[Any, sa.ColumnElement[Any], sa.ColumnElement[Any]]:
    """(FROM clause, data column, flags column): with a run id, its pending flag changes overlay the rows."""
    if run_id is None:
        return records_table, records_table.c.data, records_table.c.flags
    u = record_updates_table
    joined = records_table.outerjoin(u, sa.and_(u.c.record_id == records_table.c.record_id, u.c.run_id == run_id))
    return (
        joined,
        sa.func.coalesce(u.c.data, records_table.c.data),
        sa.func.coalesce(u.c.flags, records_table.c.flags),
    )


def _committed_runs(conn: Connection) -> int:
    """Committed runs are never deleted, so their count changes exactly when a run commits."""
    return int(conn.execute(sa.select(sa.func.count()).where(runs_table.c.status == COMMITTED)).scalar() or 0)


def _run_status(conn: Connection, run_id: str) -> str | None:
    return conn.execute(sa.select(runs_table.c.status).where(runs_table.c.run_id == run_id)).scalar()


def _require_running(conn: Connection, run_id: str) -> None:
    status = _run_status(conn, run_id)
    if status != RUNNING:
        state = "was never begun (or was discarded)" if status is None else "is already committed"
        raise ReviewError(f"run {run_id} {state}; call store.begin_run(run) before staging its rows.")


# --- writing helpers -------------------------------------------------------------------------------
def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_ids(conn: Connection, column: sa.Column[Any], ids: Sequence[str]) -> set[str]:
    return {row[0] for row in conn.execute(sa.select(column).where(column.in_(ids)))}


def _insert_new_records(
    conn: Connection,
    run_id: str,
    records: Iterable[Record],
    record_input: Mapping[str, str],
    chunk_size: int = _CHUNK,
) -> int:
    """Insert the records whose record_id the table lacks (any run's), `chunk_size` rows at a time."""
    written = 0
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= chunk_size:
            written += _insert_chunk(conn, run_id, chunk, record_input)
            chunk = []
    if chunk:
        written += _insert_chunk(conn, run_id, chunk, record_input)
    return written


def _insert_chunk(conn: Connection, run_id: str, chunk: list[Record], record_input: Mapping[str, str]) -> int:
    known = _existing_ids(conn, records_table.c.record_id, [r.record_id for r in chunk])
    rows = []
    for record in chunk:
        if record.record_id in known:
            continue
        known.add(record.record_id)  # the same record twice in one call is written once
        rows.append(_record_row(record, record_input[record.record_id], run_id))
    if rows:
        _insert_rows(conn, records_table, rows)
    return len(rows)


def _insert_rows(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """executemany of one INSERT. On SQLite straight through the driver: SQLAlchemy's per-row parameter
    processing costs more than the insert itself at a million rows (the values are plain str, int,
    bool and None, which sqlite3 takes as they are)."""
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), rows)
        return
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES ({', '.join('?' * len(names))})"
    conn.exec_driver_sql(sql, [tuple(row[name] for name in names) for row in rows])


def _insert_new_inputs(conn: Connection, run_id: str, entries: Iterable[InputEntry]) -> int:
    entries = list(entries)
    known: set[str] = set()
    for chunk in _chunks([e.sha256 for e in entries], _CHUNK):
        known |= _existing_ids(conn, inputs_table.c.sha256, chunk)
    rows = []
    for entry in entries:
        if entry.sha256 not in known:
            known.add(entry.sha256)
            rows.append({**asdict(entry), "added_at": utc_now(), "run_id": run_id})
    if rows:
        conn.execute(inputs_table.insert(), rows)
    return len(rows)


def _current_data(
    conn: Connection, run_id: str, record_ids: Sequence[str]
) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """({record_id: (data, owner run)} of the run's staged rows, the same for committed rows), as the
    run sees them (pending flag changes applied)."""
    source, data, _ = _record_source(run_id)
    r = records_table.c
    query = sa.select(r.record_id, data, r.run_id).select_from(source).where(
        r.record_id.in_(record_ids), _visible(records_table, run_id)
    )
    own: dict[str, tuple[str, str]] = {}
    others: dict[str, tuple[str, str]] = {}
    for record_id, current, owner in conn.execute(query):
        (own if owner == run_id else others)[record_id] = (current, owner)
    return own, others


def _with_flags(data: str, flags: Sequence[str]) -> tuple[str, str]:
    """(the record JSON with its flags replaced, the flags column)."""
    fields = _loads(data)
    fields["flags"] = list(flags)
    return _record_json(fields), LIST_SEPARATOR.join(flags)


def _upsert_updates(conn: Connection, run_id: str, updates: list[tuple[str, str, str]]) -> None:
    if not updates:
        return
    u = record_updates_table
    conn.execute(u.delete().where(u.c.run_id == run_id, u.c.record_id.in_([rid for rid, _, _ in updates])))
    conn.execute(
        u.insert(), [{"run_id": run_id, "record_id": rid, "data": data, "flags": flags} for rid, data, flags in updates]
    )


def _apply_updates(conn: Connection, run_id: str) -> None:
    """Apply a run's pending flag changes to the committed records they concern, then forget them."""
    u = record_updates_table
    pending = sa.select(u.c.record_id).where(u.c.run_id == run_id)

    def value(column: sa.Column[Any]) -> Any:
        return (
            sa.select(column)
            .where(u.c.run_id == run_id, u.c.record_id == records_table.c.record_id)
            .scalar_subquery()
        )

    conn.execute(
        records_table.update()
        .where(records_table.c.record_id.in_(pending))
        .values(data=value(u.c.data), flags=value(u.c.flags))
    )
    conn.execute(u.delete().where(u.c.run_id == run_id))


def _write_run_row(conn: Connection, run: RunRecord, begun: bool) -> None:
    values = {
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "package_version": run.package_version,
        "inputs": json.dumps(run.inputs, sort_keys=True),
        "counts": json.dumps(run.counts, sort_keys=True),
        "status": COMMITTED,
    }
    if begun:
        conn.execute(runs_table.update().where(runs_table.c.run_id == run.run_id).values(**values))
    else:
        conn.execute(runs_table.insert().values(run_id=run.run_id, **values))


def _replace(
    conn: Connection, table: sa.Table, frame: pd.DataFrame, run_id: str, current: pd.DataFrame | None = None
) -> None:
    """The table's rows become the frame's: all of them anew, or, given the table's `current` rows, only those
    that differ. Inserted a slice at a time: a million rows as Python dicts at once would take ~1.5 GB."""
    columns = [c.name for c in table.columns if c.name != "run_id"]
    if current is None:
        conn.execute(table.delete())
        rows = frame
    else:
        (key,) = (c.name for c in table.primary_key.columns)
        gone, rows = _differing_rows(current, frame, key, columns)
        for chunk in _chunks(gone, _CHUNK):
            conn.execute(table.delete().where(table.c[key].in_(chunk)))
    for start in range(0, len(rows), _PROJECTION_CHUNK):
        part = rows.iloc[start : start + _PROJECTION_CHUNK][columns]
        conn.execute(table.insert(), [{**row, "run_id": run_id} for row in part.to_dict("records")])


def _differing_rows(
    current: pd.DataFrame, frame: pd.DataFrame, key: str, columns: list[str]
) -> tuple[list[str], pd.DataFrame]:
    """(keys of the current rows to delete, rows of `frame` to insert) that make `current` equal `frame`: rows
    whose key is new, gone, or whose values changed (compared as Python values, so a stored 1 equals True).
    Compared a column at a time by position: a million codes are never copied whole (the update's commit)."""
    at = pd.Index(current[key]).get_indexer(frame[key])  # each new row's place in `current`, -1 when new
    both = np.flatnonzero(at >= 0)
    changed = np.zeros(len(both), dtype=bool)
    for column in columns:
        if column != key:
            old = current[column].to_numpy(dtype=object)[at[both]]
            changed |= old != frame[column].to_numpy(dtype=object)[both]
    insert = np.zeros(len(frame), dtype=bool)
    insert[at < 0] = True
    insert[both[changed]] = True
    kept = np.zeros(len(current), dtype=bool)
    kept[at[both[~changed]]] = True
    return current[key].to_numpy(dtype=object)[~kept].tolist(), frame[insert]


def _record_json(fields: Mapping[str, Any]) -> str:
    """A record's fields as JSON, keys sorted. orjson is about ten times faster than the json module
    (this runs once per stored record); a text holding a lone surrogate, which orjson refuses, is
    written by json with the surrogate escaped."""
    try:
        return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except TypeError:
        return json.dumps(fields, sort_keys=True)


def _loads(data: str) -> dict[str, Any]:
    try:
        return orjson.loads(data)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        return json.loads(data)  # type: ignore[no-any-return]  # an escaped lone surrogate


def _record_from_json(data: str) -> Record:
    fields = _loads(data)
    try:
        return Record(**fields)  # what the store wrote: every field, with its type
    except TypeError:
        return record_from_dict(fields)  # a row written by another version: let it adapt the fields


def _record_row(record: Record, input_sha256: str, run_id: str) -> dict[str, Any]:
    # A shallow dict serialises exactly as asdict() would (fields are str, int, lists and a dict of
    # str) at less than half the cost: this runs once per record of a million-record review.
    fields = {name: getattr(record, name) for name in RECORD_COLUMNS}
    return {
        "record_id": record.record_id,
        "input_sha256": input_sha256,
        "own_id": record.id,
        "source_format": record.source_format,
        "source_file": record.source_file,
        "position": record.position,
        "title": record.title,
        "year": record.year,
        "doi": record.doi,
        **_column_values(fields),
        "run_id": run_id,
        "data": _record_json(fields),
    }


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The schema-2 columns of a record given as a field dict (a Record's or its decoded JSON)."""
    values = {name: _flat(fields.get(name, "")) for name in _COLUMN_FIELDS}
    abstract = fields.get("abstract") or ""
    values["has_abstract"] = bool(abstract.strip())
    values["prefix_head"] = prefix_head(abstract)
    return values


def _flat(value: Any) -> str:
    if isinstance(value, list):
        return LIST_SEPARATOR.join(value)
    return "" if value is None else str(value)


# --- projections -----------------------------------------------------------------------------------
def _known_projection(columns: Sequence[str]) -> list[str]:
    unknown = [c for c in columns if c not in PROJECTION_COLUMNS]
    if unknown:
        raise ValueError(f"unknown projection column(s) {unknown}; choose from {list(PROJECTION_COLUMNS)}")
    return list(columns)


def _projection_frame(rows: Sequence[Any], columns: list[str], from_json: list[str]) -> pd.DataFrame:
    """One chunk of rows as a frame (pandas keeps the text in Arrow buffers, not as Python strings)."""
    data: dict[str, list[Any]] = {}
    by_position = list(zip(*rows)) if rows else [() for _ in range(len(columns) + 1)]
    names = [name for name in columns if name not in from_json]
    decoded = [_loads(data) for data in by_position[len(names)]] if from_json else []
    for name in columns:
        if name in from_json:
            data[name] = [_flat(fields.get(name, "")) if name in LIST_COLUMNS else fields.get(name, "") for fields in decoded]
        else:
            data[name] = list(by_position[names.index(name)])
    frame = pd.DataFrame(data, columns=columns)
    if "year" in frame:
        frame["year"] = frame["year"].astype("Int64")
    if "position" in frame:
        frame["position"] = frame["position"].astype("int64")
    if "has_abstract" in frame:
        frame["has_abstract"] = frame["has_abstract"].astype(bool)
    return frame


# --- opening, schema versions and migration --------------------------------------------------------
def open_store(url: str) -> Store:
    """Open (and create or migrate) the store at a SQLAlchemy URL."""
    try:
        engine = sa.create_engine(url, future=True)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        metadata.create_all(engine)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise ReviewError(
            f"store URL {url!r} is not a database URL SQLAlchemy understands ({exc}); "
            "use sqlite:///corpus/review.db or postgresql+psycopg://user:pass@host/db in review.yaml."
        ) from exc
    except sa.exc.OperationalError as exc:
        raise ReviewError(
            f"cannot open the store at {url!r} ({exc.orig}); check the path or that the database server is running."
        ) from exc
    store = Store(engine)
    _ensure_schema_version(store)
    return store


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers never block the writer (a reader may iterate while a run stages batches) and a
    # commit is one append to the log; synchronous=NORMAL is crash-safe in WAL mode (a power cut can
    # lose the last commits, never corrupt the file or half-apply one). 32 MB page cache: the indexes
    # of a million records stay in memory while they are written.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA cache_size=-32768")
    finally:
        cursor.close()


def _schema_version(conn: Connection) -> int:
    value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
    return int(value) if value is not None else 0


def _ensure_schema_version(store: Store) -> None:
    found = store.schema_version()
    if found == 0:
        with store.engine.begin() as conn:
            conn.execute(meta_table.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
    elif found > SCHEMA_VERSION:
        raise ReviewError(
            f"the store has schema version {found} but this version of the tool knows only {SCHEMA_VERSION}; "
            "upgrade the tool (pip install -U) before running it on this workspace."
        )
    elif found == 1:
        _migrate_1_to_2(store.engine)


def _migrate_1_to_2(engine: Engine) -> None:
    """Schema 1 -> 2: record fields as columns, run status, truncated-prefix flags persisted.

    Columns are added first (idempotent: a migration killed half-way is simply done again, since the
    version is bumped last, with the data, in one transaction). Schema 1 re-flagged stored abstracts
    that later records extend in memory on every run and never stored those flags; schema 2 stores
    them, so the migration flags the whole stored corpus once.
    """
    log.info("migrating the store from schema 1 to 2 (record columns, run status, prefix flags)")
    _add_missing_columns(engine)
    with engine.begin() as conn:
        _backfill_columns(conn)
        for index in records_table.indexes:
            index.create(conn, checkfirst=True)
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_records_input_sha256"))  # now the order index's prefix
        _flag_stored_prefixes(conn)
        conn.execute(meta_table.update().where(meta_table.c.key == "schema_version").values(value="2"))


def _add_missing_columns(engine: Engine) -> None:
    present = {c["name"] for c in sa.inspect(engine).get_columns("records")}
    runs_present = {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    preparer = engine.dialect.identifier_preparer
    with engine.begin() as conn:
        for column in records_table.columns:
            if column.name not in present:
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(sa.text(f"ALTER TABLE records ADD COLUMN {preparer.quote(column.name)} {kind}"))
        if "status" not in runs_present:
            conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN status VARCHAR(16) NOT NULL DEFAULT '{COMMITTED}'"))


def _backfill_columns(conn: Connection) -> None:
    r = records_table.c
    after = ""
    while True:
        rows = conn.execute(
            sa.select(r.record_id, r.data).where(r.record_id > after).order_by(r.record_id).limit(_CHUNK)
        ).all()
        if not rows:
            return
        updates = [{"rid": rid, **_column_values(_loads(data))} for rid, data in rows]
        names = [*_COLUMN_FIELDS, "has_abstract", "prefix_head"]
        conn.execute(
            records_table.update()
            .where(r.record_id == sa.bindparam("rid"))
            .values({name: sa.bindparam(name) for name in names}),
            updates,
        )
        after = rows[-1][0]


def _flag_stored_prefixes(conn: Connection) -> None:
    """Flag every stored truncated copy, one chunk of shared heads at a time (bounded memory)."""
    r = records_table.c
    shared = (
        sa.select(r.prefix_head)
        .where(r.prefix_head.is_not(None))
        .group_by(r.prefix_head)
        .having(sa.func.count() > 1)
        .order_by(r.prefix_head)
    )
    heads = [row[0] for row in conn.execute(shared)]  # heads only: 40 characters per shared abstract
    for chunk in _chunks(heads, _CHUNK):
        query = sa.select(r.record_id, r.data).where(r.prefix_head.in_(chunk)).order_by(
            r.input_sha256, r.position, r.record_id
        )
        records = [_record_from_json(data) for _, data in conn.execute(query)]
        before = {record.record_id: list(record.flags) for record in records}
        flag_truncated_prefixes(records)
        for record in records:
            if record.flags != before[record.record_id]:
                data = _record_json({name: getattr(record, name) for name in RECORD_COLUMNS})
                flags = LIST_SEPARATOR.join(record.flags)
                conn.execute(records_table.update().where(r.record_id == record.record_id).values(data=data, flags=flags))
