"""Assign: rule hits + topic suggestions + reviewer decisions -> one assignment per (study, code).

Precedence is reviewer > rule > topic: a lower-precedence source never replaces a higher one, and
a code a reviewer rejected is never re-added by the machine.
"""

from __future__ import annotations

import hashlib

import pandas as pd

ASSIGNMENT_COLUMNS = [
    "assignment_id",
    "study_id",
    "code",
    "category",
    "direction",
    "evidence",
    "method",
    "confidence",
    "rule",
    "decided_by",
]
METHOD_PRECEDENCE = {"reviewer": 0, "rule": 1, "topic": 2}


def assignment_id(study_id: str, code: str, evidence: str) -> str:
    """Stable across runs: the same study, code and evidence span give the same id."""
    text = "\x1f".join((study_id, code, " ".join(evidence.split())))
    return "a" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:15]


def empty_assignments() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in ASSIGNMENT_COLUMNS})


def _dtype(column: str) -> str:
    return "float64" if column == "confidence" else "object"


def machine_rows(frame: pd.DataFrame | None, method: str) -> pd.DataFrame:
    """Normalise rule hits or topic suggestions (columns id, code, category, direction, evidence,
    confidence[, rule]) into assignment rows."""
    if frame is None or frame.empty:
        return empty_assignments()
    rows = pd.DataFrame(
        {
            "study_id": frame["id"].astype(str),
            "code": frame["code"].astype(str),
            "category": frame["category"].astype(str),
            "direction": frame.get("direction", pd.Series("", index=frame.index)).fillna("").astype(str),
            "evidence": frame["evidence"].fillna("").astype(str),
            "method": method,
            # Rounded: a confidence is a judgement, and 0.6000000000000001 must not differ from a cached 0.6.
            "confidence": frame["confidence"].astype(float).round(4),
            "rule": frame.get("rule", pd.Series(method, index=frame.index)).fillna("").astype(str),
            "decided_by": "machine",
        }
    )
    rows["assignment_id"] = [assignment_id(s, c, e) for s, c, e in zip(rows.study_id, rows.code, rows.evidence)]
    return rows[ASSIGNMENT_COLUMNS]


def assign(
    rule_hits: pd.DataFrame | None,
    topic_suggestions: pd.DataFrame | None = None,
    *,
    reviewer_rows: pd.DataFrame | None = None,
    rejected: set[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per (study, code), the highest-precedence source winning; sorted deterministically."""
    parts = [machine_rows(rule_hits, "rule"), machine_rows(topic_suggestions, "topic")]
    if reviewer_rows is not None and not reviewer_rows.empty:
        parts.append(reviewer_rows[ASSIGNMENT_COLUMNS])
    combined = pd.concat([p for p in parts if not p.empty], ignore_index=True) if any(not p.empty for p in parts) else empty_assignments()
    if combined.empty:
        return empty_assignments()
    if rejected:
        keep = [
            method == "reviewer" or (study, code) not in rejected
            for study, code, method in zip(combined.study_id, combined.code, combined.method)
        ]
        combined = combined[keep]
    combined = combined.assign(_rank=combined["method"].map(METHOD_PRECEDENCE))
    combined = combined.sort_values(
        ["study_id", "code", "_rank", "confidence", "assignment_id"], ascending=[True, True, True, False, True]
    )
    best = combined.drop_duplicates(["study_id", "code"], keep="first").drop(columns="_rank")
    return best.reset_index(drop=True)[ASSIGNMENT_COLUMNS]
