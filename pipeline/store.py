"""The review store: one embedded database per workspace (SQLite by default, any SQLAlchemy URL).

Holds the records, the index of raw inputs (file hash, source, time) and the runs (provenance).
A run writes everything it changed in ONE transaction (`Store.commit_run`), so a run that dies
half-way leaves the store exactly as it was before it started.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from pipeline.errors import ReviewError
from pipeline.records import Record, record_from_dict

SCHEMA_VERSION = 1

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

records_table = sa.Table(
    "records",
    metadata,
    sa.Column("record_id", sa.String(40), primary_key=True),
    sa.Column("input_sha256", sa.String(64), nullable=False, index=True),
    sa.Column("own_id", sa.Text, nullable=False),
    sa.Column("source_format", sa.String(32), nullable=False),
    sa.Column("source_file", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("year", sa.Integer),
    sa.Column("doi", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the whole cleaned Record as JSON
    sa.Column("run_id", sa.String(40), nullable=False),
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


class Store:
    """Thin wrapper over a SQLAlchemy engine; create with `open_store(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- reading -------------------------------------------------------------------------
    def known_input_hashes(self) -> set[str]:
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(sa.select(inputs_table.c.sha256))}

    def count_records(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(records_table)).scalar_one())

    def iter_records(self) -> Iterator[Record]:
        """All records in a stable order (input file, then position)."""
        query = sa.select(records_table.c.data).order_by(
            records_table.c.input_sha256, records_table.c.position, records_table.c.record_id
        )
        with self.engine.connect() as conn:
            for (data,) in conn.execution_options(stream_results=True).execute(query):
                yield record_from_dict(json.loads(data))

    def own_ids(self, *, source_format: str, source_file: str) -> set[str]:
        """The sources' own ids of the stored records from one source (e.g. OpenAlex W-ids)."""
        query = sa.select(records_table.c.own_id).where(
            records_table.c.source_format == source_format, records_table.c.source_file == source_file
        )
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def inputs(self) -> list[InputEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(inputs_table).order_by(inputs_table.c.added_at, inputs_table.c.path))
            return [
                InputEntry(
                    sha256=r.sha256,
                    path=r.path,
                    source_format=r.source_format,
                    encoding=r.encoding,
                    size_bytes=r.size_bytes,
                    n_records=r.n_records,
                )
                for r in rows
            ]

    def runs(self) -> list[RunRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(runs_table).order_by(runs_table.c.started_at, runs_table.c.run_id))
            return [
                RunRecord(
                    run_id=r.run_id,
                    started_at=r.started_at,
                    finished_at=r.finished_at,
                    package_version=r.package_version,
                    inputs=json.loads(r.inputs),
                    counts=json.loads(r.counts),
                )
                for r in rows
            ]

    def table_frame(self, table: sa.Table) -> pd.DataFrame:
        """A whole (small, derived) table as a frame, in primary-key order."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in table.columns])

    def cached_hits(self, keys: set[str]) -> dict[str, str]:
        """Cached rule hits (JSON) for the given cache keys that the store has."""
        found: dict[str, str] = {}
        ordered = sorted(keys)
        with self.engine.connect() as conn:
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                query = sa.select(coding_cache_table.c.cache_key, coding_cache_table.c.hits).where(
                    coding_cache_table.c.cache_key.in_(chunk)
                )
                found.update({key: hits for key, hits in conn.execute(query)})
        return found

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
            value = conn.execute(sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")).scalar()
        return int(value) if value is not None else 0

    # --- writing (one transaction per run) -------------------------------------------------
    def commit_run(
        self,
        run: RunRecord,
        *,
        new_inputs: Iterable[InputEntry],
        new_records: Iterable[Record],
        record_input: dict[str, str],
        groups: pd.DataFrame | None = None,
        assignments: pd.DataFrame | None = None,
        coding_cache: dict[str, str] | None = None,
        batch_size: int = 2000,
    ) -> None:
        """Write a run's inputs, records, derived tables and provenance atomically: all of it or none of it."""
        run.finished_at = run.finished_at or utc_now()
        with self.engine.begin() as conn:
            self._insert_inputs(conn, run.run_id, new_inputs)
            self._insert_records(conn, run.run_id, new_records, record_input, batch_size)
            if groups is not None:
                _replace(conn, groups_table, groups, run.run_id)
            if assignments is not None:
                _replace(conn, assignments_table, assignments, run.run_id)
            if coding_cache:
                conn.execute(
                    coding_cache_table.insert(),
                    [{"cache_key": k, "hits": v, "run_id": run.run_id} for k, v in sorted(coding_cache.items())],
                )
            conn.execute(
                runs_table.insert().values(
                    run_id=run.run_id,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    package_version=run.package_version,
                    inputs=json.dumps(run.inputs, sort_keys=True),
                    counts=json.dumps(run.counts, sort_keys=True),
                )
            )

    def _insert_inputs(self, conn: Connection, run_id: str, entries: Iterable[InputEntry]) -> None:
        rows = [{**asdict(e), "added_at": utc_now(), "run_id": run_id} for e in entries]
        if rows:
            conn.execute(inputs_table.insert(), rows)

    def _insert_records(
        self,
        conn: Connection,
        run_id: str,
        records: Iterable[Record],
        record_input: dict[str, str],
        batch_size: int,
    ) -> None:
        known = {row[0] for row in conn.execute(sa.select(records_table.c.record_id))}
        batch: list[dict[str, Any]] = []
        for record in records:
            if record.record_id in known:
                continue
            known.add(record.record_id)
            batch.append(_record_row(record, record_input[record.record_id], run_id))
            if len(batch) >= batch_size:
                conn.execute(records_table.insert(), batch)
                batch = []
        if batch:
            conn.execute(records_table.insert(), batch)


def _replace(conn: Connection, table: sa.Table, frame: pd.DataFrame, run_id: str) -> None:
    columns = [c.name for c in table.columns if c.name != "run_id"]
    conn.execute(table.delete())
    rows = [{**row, "run_id": run_id} for row in frame[columns].to_dict("records")]
    if rows:
        conn.execute(table.insert(), rows)


def _record_row(record: Record, input_sha256: str, run_id: str) -> dict[str, Any]:
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
        "data": json.dumps(asdict(record), ensure_ascii=False, sort_keys=True),
        "run_id": run_id,
    }


def open_store(url: str) -> Store:
    """Open (and create or migrate) the store at a SQLAlchemy URL."""
    try:
        engine = sa.create_engine(url, future=True)
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
