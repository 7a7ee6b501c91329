"""The reviewer decisions ledger: append-only rows in the store's `decisions` table, and what they mean.

A decision is about one (study_id, code): the code a machine (or a reviewer) gave a study. Rows are never
updated or deleted; the decision in force for a (study, code) is the latest one (highest `sequence`), whoever
made it. Each reviewer's own latest decision per (study, code) is what the agreement statistics compare.

Meaning of each decision (`new_direction` always holds the benefit direction the code ends with, '' for
categories without directions):

    accept            the code stays, now decided by the reviewer
    reject            the code goes, and the machine never re-adds it
    change_code       the code goes; `new_code` takes its place with the same quote
    change_direction  the code stays with `new_direction` (benefits only)
    add               a code the machine missed, with the reviewer's quote (`evidence`)

`decision_id` is a hash of the decision's content (no time) chained to the same reviewer's previous decision
on the same (study, code): importing the same decisions twice adds nothing, while a reviewer who goes
accept -> reject -> accept still gets three distinct rows.

Decisions are keyed by study_id, the canonical record_id of a dedup group. When dedup regroups records,
`remap_decisions` moves each decision to the group its record now belongs to (the ledger itself is untouched).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipeline.assign import ASSIGNMENT_COLUMNS, METHOD_PRECEDENCE, assignment_id
from pipeline.store import Store, decisions_table

log = logging.getLogger(__name__)

LEDGER_COLUMNS: list[str] = [column.name for column in decisions_table.columns]
DECISIONS: tuple[str, ...] = ("accept", "reject", "change_code", "change_direction", "add")
KEEPS: frozenset[str] = frozenset({"accept", "change_direction", "add"})  # the decided code stays
REMOVES: frozenset[str] = frozenset({"reject", "change_code"})  # the decided code goes
MACHINE_METHODS: frozenset[str] = frozenset({"rule", "topic"})
KEY: list[str] = ["study_id", "code"]
# What a decision says, without who/when/where: the fields its id is made from.
CONTENT_FIELDS: tuple[str, ...] = (
    "study_id", "code", "assignment_id", "decision", "new_code", "new_direction", "evidence", "reviewer", "note"
)


# ---------------------------------------------------------------- reading and writing


def keys_of(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The (study_id, code) pair of each row."""
    return list(zip(frame["study_id"].astype(str), frame["code"].astype(str), strict=True))



def empty_ledger() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c == "sequence" else "object") for c in LEDGER_COLUMNS})


def ledger_frame(store: Store) -> pd.DataFrame:
    """Every decision in the store, in order of arrival (LEDGER_COLUMNS)."""
    query = sa.select(decisions_table).order_by(decisions_table.c.sequence)
    with store.engine.connect() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    if not rows:
        return empty_ledger()
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


def decision_id(fields: Mapping[str, Any], previous: str = "") -> str:
    """Hash of the decision's content (CONTENT_FIELDS) and the id of the decision it follows; no time in it."""
    payload = json.dumps([previous] + [str(fields.get(name, "")) for name in CONTENT_FIELDS], ensure_ascii=False)
    return "d" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:31]


def append_decisions(store: Store, rows: Iterable[Mapping[str, Any]]) -> int:
    """Append decisions in ONE transaction (all or none); rows whose decision_id is already stored are skipped.

    `sequence` is assigned here, continuing the ledger. Returns how many rows were written.
    """
    rows = [dict(row) for row in rows]
    if not rows:
        return 0
    with store.engine.begin() as conn:
        known = {r[0] for r in conn.execute(sa.select(decisions_table.c.decision_id))}
        last = conn.execute(sa.select(sa.func.max(decisions_table.c.sequence))).scalar()
        sequence = int(last or 0)
        fresh = []
        for row in rows:
            if row["decision_id"] in known:
                continue
            known.add(row["decision_id"])
            sequence += 1
            fresh.append({column: row.get(column, "") for column in LEDGER_COLUMNS} | {"sequence": sequence})
        if fresh:
            conn.execute(decisions_table.insert(), fresh)
    log.info("recorded %d decision(s) in the ledger", len(fresh))
    return len(fresh)


# ---------------------------------------------------------------- the decisions in force


def in_force(ledger: pd.DataFrame) -> pd.DataFrame:
    """The latest decision per (study_id, code), whoever made it; sorted by sequence."""
    return _latest(ledger, KEY)


def latest_by_reviewer(ledger: pd.DataFrame) -> pd.DataFrame:
    """Each reviewer's latest decision per (study_id, code); sorted by sequence."""
    return _latest(ledger, KEY + ["reviewer"])


def _latest(ledger: pd.DataFrame | None, keys: list[str]) -> pd.DataFrame:
    if ledger is None or ledger.empty:
        return empty_ledger()
    ordered = ledger.sort_values("sequence", kind="stable")
    return ordered.drop_duplicates(keys, keep="last").reset_index(drop=True)


def _outcomes(ledger: pd.DataFrame | None) -> dict[tuple[str, str], dict[str, Any] | None]:
    """(study, code) -> the reviewer's assignment row, or None where the code was removed; later decisions win.

    A change_code both removes its own code and sets the new one, so the decision in force for the new code is
    whichever of the two came later.
    """
    state: dict[tuple[str, str], dict[str, Any] | None] = {}
    for rec in in_force(ledger).to_dict("records"):
        key = (str(rec["study_id"]), str(rec["code"]))
        decision = rec["decision"]
        if decision in REMOVES:
            state[key] = None
        if decision == "change_code":
            state[(key[0], str(rec["new_code"]))] = _reviewer_row(rec, str(rec["new_code"]))
        elif decision in KEEPS:
            state[key] = _reviewer_row(rec, key[1])
    return state


def _reviewer_row(rec: Mapping[str, Any], code: str) -> dict[str, Any]:
    evidence = str(rec["evidence"])
    return {
        "assignment_id": assignment_id(str(rec["study_id"]), code, evidence),
        "study_id": str(rec["study_id"]),
        "code": code,
        "category": code.split(".", 1)[0],
        "direction": str(rec["new_direction"]),
        "evidence": evidence,
        "method": "reviewer",
        "confidence": 1.0,
        "rule": str(rec["machine_rule"]) if rec["decision"] in ("accept", "change_direction") else "",
        "decided_by": str(rec["reviewer"]),
    }


def ledger_assign_inputs(ledger: pd.DataFrame | None) -> tuple[pd.DataFrame, set[tuple[str, str]]]:
    """The decisions in force as `assign()` takes them: (reviewer_rows, rejected (study, code) pairs)."""
    state = _outcomes(ledger)
    rows = [row for row in state.values() if row is not None]
    rejected = {key for key, row in state.items() if row is None}
    frame = pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS) if rows else _empty_assignments()
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True), rejected


def decided_keys(ledger: pd.DataFrame | None) -> set[tuple[str, str]]:
    """Every (study, code) a decision in force is about, or produces (the new code of a change_code)."""
    return set(_outcomes(ledger))


def apply_ledger(assignments: pd.DataFrame, ledger: pd.DataFrame | None) -> pd.DataFrame:
    """The final assignments: the ledger decides every (study, code) it touches, the machine the rest.

    Accepted, changed and added codes become method 'reviewer' with decided_by = the reviewer; rejected codes
    (and the old code of a change_code) are removed. Re-running the machine never overrides a decision: pass the
    new machine assignments and the same ledger, and the same decisions apply.
    """
    base = complete_assignments(assignments)
    state = _outcomes(ledger)
    if not state:
        return _sorted(base)
    keep = [key not in state for key in keys_of(base)]
    rows = [row for row in state.values() if row is not None]
    parts = [base[keep]] + ([pd.DataFrame(rows, columns=ASSIGNMENT_COLUMNS)] if rows else [])
    return _sorted(pd.concat(parts, ignore_index=True))


def _empty_assignments() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64" if c == "confidence" else "object") for c in ASSIGNMENT_COLUMNS})


def complete_assignments(assignments: pd.DataFrame | None) -> pd.DataFrame:
    """A copy with every ASSIGNMENT_COLUMN (the matrix's assignments have no `rule`; older frames may lack more)."""
    if assignments is None or assignments.empty:
        return _empty_assignments()
    frame = assignments.copy()
    defaults = {"rule": "", "decided_by": "machine", "direction": "", "category": ""}
    for column in ASSIGNMENT_COLUMNS:
        if column not in frame.columns:
            frame[column] = defaults.get(column, "")
    frame["direction"] = frame["direction"].fillna("").astype(str)
    frame["rule"] = frame["rule"].fillna("").astype(str)
    missing_id = frame["assignment_id"].isna() | (frame["assignment_id"].astype(str) == "")
    if missing_id.any():
        frame.loc[missing_id, "assignment_id"] = [
            assignment_id(str(s), str(c), str(e))
            for s, c, e in zip(frame.loc[missing_id, "study_id"], frame.loc[missing_id, "code"],
                               frame.loc[missing_id, "evidence"], strict=True)
        ]
    return frame[ASSIGNMENT_COLUMNS]


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    ranked = frame.assign(_rank=frame["method"].map(METHOD_PRECEDENCE).fillna(9))
    ranked = ranked.sort_values(["study_id", "code", "_rank", "assignment_id"], kind="stable")
    return ranked.drop(columns="_rank").reset_index(drop=True)[ASSIGNMENT_COLUMNS]


# ---------------------------------------------------------------- dedup changes and status


def remap_decisions(ledger: pd.DataFrame, record_to_group: Mapping[str, str]) -> pd.DataFrame:
    """Move each decision to the study (dedup group) its record belongs to now.

    `record_to_group` maps every record_id to its group's canonical record_id (the study_id). A decision made
    on a study id that is no longer canonical (its group merged into another, or was split) follows the record;
    a study id the mapping does not know is kept as it is. The returned copy keeps the old id in
    `original_study_id`; when two old studies land in one group, the later decision per code is in force.
    """
    out = ledger.copy()
    out["original_study_id"] = out["study_id"]
    out["study_id"] = [str(record_to_group.get(str(s), s)) for s in out["study_id"]]
    unknown = sorted({str(s) for s in out["original_study_id"] if str(s) not in record_to_group})
    if unknown:
        log.warning("%d decision study id(s) are not in the dedup mapping and were kept: %s",
                    len(unknown), ", ".join(unknown[:5]))
    return out


def review_status(ledger: pd.DataFrame | None, assignments: pd.DataFrame | None) -> dict[str, Any]:
    """Counts for `review status`: decisions recorded and in force, per decision, reviewers, and how many machine
    codes (method rule/topic) no decision covers yet."""
    ledger = ledger if ledger is not None else empty_ledger()
    force = in_force(ledger)
    decided = decided_keys(ledger)
    frame = complete_assignments(assignments)
    machine = frame[frame["method"].isin(MACHINE_METHODS)]
    unreviewed = sum(key not in decided for key in keys_of(machine))
    return {
        "decisions": len(ledger),
        "in_force": len(force),
        "by_decision": {d: int((force["decision"] == d).sum()) for d in DECISIONS},
        "reviewers": sorted({str(r) for r in ledger["reviewer"]}),
        "sheets": int(ledger["sheet_sha256"].nunique()),
        "machine_codes": len(machine),
        "machine_unreviewed": int(unreviewed),
    }
