"""Two reviewers' sheets -> the items they decided differently -> a reconciliation sheet.

Both sheets are read and validated exactly as an import would (`pipeline.sheets.read_sheet`). An item is a
(study, code): a machine code both reviewers saw, or a code one of them added. Two decisions agree when they say
the same thing (decision, new code, new direction); notes may differ. By default only items BOTH reviewers
decided, differently, are conflicts; with `one_sided=True` items only one of them decided are listed too.

The reconciliation sheet has the review sheet's columns, with the decision columns empty for the person who
reconciles, followed by each reviewer's decision (extra columns, which the import ignores). So it imports like
any other sheet: `review sheet import reconciliation.csv --reviewer NAME`, and the reconciled decisions, being
the latest, are the ones in force.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.codebook import Codebook
from pipeline.sheets import ITEM_COLUMNS, SHEET_COLUMNS, read_sheet, review_items, study_ids, study_titles, write_sheet

log = logging.getLogger(__name__)

SIDE_FIELDS = ["reviewer", "decision", "new_code", "new_direction", "note"]
CONFLICT_COLUMNS: list[str] = (
    ITEM_COLUMNS + ["kind"] + [f"{f}_a" for f in SIDE_FIELDS] + [f"{f}_b" for f in SIDE_FIELDS]
)


def reconcile(
    sheet_a: str | Path,
    sheet_b: str | Path,
    *,
    codebook: Codebook,
    assignments: pd.DataFrame,
    studies: pd.DataFrame,
    ledger: pd.DataFrame | None = None,
    reviewer_a: str | None = None,
    reviewer_b: str | None = None,
    one_sided: bool = False,
) -> pd.DataFrame:
    """The conflicts between two sheets (CONFLICT_COLUMNS), one row per item, sorted by study and code.

    `kind` is 'differ' (both decided, differently), or with `one_sided`, 'only_a' / 'only_b'. Reviewer names
    default to the name in each sheet's reviewer cells, else the file name without its suffix.
    """
    items = review_items(assignments, ledger)
    known = study_ids(studies)
    frames = [read_sheet(Path(p), codebook, items, known) for p in (sheet_a, sheet_b)]
    names = [name or _sheet_reviewer(frame, Path(p))
             for name, frame, p in zip((reviewer_a, reviewer_b), frames, (sheet_a, sheet_b), strict=True)]
    decided = [_decided(frame) for frame in frames]
    titles = study_titles(studies)
    rows = []
    for key in sorted(set(decided[0]) | set(decided[1])):
        a, b = decided[0].get(key), decided[1].get(key)
        kind = _kind(a, b)
        if kind == "agree" or (kind.startswith("only") and not one_sided):
            continue
        rows.append(_conflict_row(a or b, a, b, names, kind, items, titles))
    conflicts = pd.DataFrame(rows, columns=CONFLICT_COLUMNS)
    log.info("%s vs %s: %d conflict(s)", names[0], names[1], len(conflicts))
    return conflicts


def write_reconciliation_sheet(
    conflicts: pd.DataFrame, path: str | Path, *, codebook: Codebook | None = None
) -> Path:
    """Write the conflicts as a sheet that imports like any other (.csv or .xlsx, atomic, deterministic)."""
    path = Path(path)
    frame = conflicts.copy()
    for column in SHEET_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    extra = [c for c in CONFLICT_COLUMNS if c not in SHEET_COLUMNS]
    write_sheet(frame[SHEET_COLUMNS + extra], path, codebook)
    return path


def _decided(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    rows = frame[(frame["decision"] != "") & (frame["duplicate_of"] == 0)]
    return {(str(r["study_id"]), str(r["code"])): r for r in rows.to_dict("records")}


def _says(row: dict[str, Any]) -> tuple[str, str, str]:
    return str(row["decision"]), str(row["new_code"]), str(row["new_direction"])


def _kind(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    if a is None:
        return "only_b"
    if b is None:
        return "only_a"
    return "agree" if _says(a) == _says(b) else "differ"


def _sheet_reviewer(frame: pd.DataFrame, path: Path) -> str:
    names = Counter(str(r) for r in frame.loc[frame["decision"] != "", "reviewer"] if str(r))
    return names.most_common(1)[0][0] if names else path.stem


def _conflict_row(
    row: dict[str, Any],
    a: dict[str, Any] | None,
    b: dict[str, Any] | None,
    names: list[str],
    kind: str,
    items: pd.DataFrame,
    titles: dict[str, str],
) -> dict[str, Any]:
    known = items[items["assignment_id"] == row["assignment_id"]]
    item = known.iloc[0].to_dict() if len(known) else {}
    out: dict[str, Any] = {
        "assignment_id": row["assignment_id"],
        "study_id": row["study_id"],
        "title": titles.get(str(row["study_id"]), ""),
        "code": row["code"],
        "category": row["category"],
        "direction": item.get("direction", "") if item else str(row["new_direction"]),
        "evidence": row["evidence"],
        "method": item.get("method", "reviewer") if item else "reviewer",
        "confidence": item.get("confidence", float("nan")) if item else float("nan"),
        "kind": kind,
    }
    for side, name, decided in (("a", names[0], a), ("b", names[1], b)):
        for field in SIDE_FIELDS:
            value = name if field == "reviewer" else (str(decided[field]) if decided else "")
            out[f"{field}_{side}"] = value
    return out
