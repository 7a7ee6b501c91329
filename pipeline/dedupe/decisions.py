"""Reviewer decisions on pairs of records: 'same' (always merge) or 'different' (never merge).

A decision names two records by their stable `record_id`s, so it holds across re-runs and later
harvests. The duplicates sheet (see `pipeline.dedupe.report.duplicates_sheet`) is where reviewers
write them; `read_dedupe_decisions` reads that sheet back and checks every row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.errors import InputFileError, ReviewError

DECISION_COLUMNS = ["record_id_a", "record_id_b", "decision"]
SAME, DIFFERENT = "same", "different"
_SYNONYMS = {
    "same": SAME,
    "duplicate": SAME,
    "duplicates": SAME,
    "dup": SAME,
    "yes": SAME,
    "y": SAME,
    "join": SAME,
    "merge": SAME,
    "match": SAME,
    "true": SAME,
    "1": SAME,
    "different": DIFFERENT,
    "not duplicate": DIFFERENT,
    "not duplicates": DIFFERENT,
    "distinct": DIFFERENT,
    "no": DIFFERENT,
    "n": DIFFERENT,
    "split": DIFFERENT,
    "keep both": DIFFERENT,
    "false": DIFFERENT,
    "0": DIFFERENT,
}


def normalise_decision(value: object) -> str | None:
    """'Same', 'duplicate', 'join' -> 'same'; 'different', 'split' -> 'different'; '' -> ''; None if unknown."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())
    if not text:
        return ""
    return _SYNONYMS.get(text)


def read_dedupe_decisions(path: str | Path) -> pd.DataFrame:
    """Read a duplicates sheet (CSV or XLSX) a reviewer filled in; rows with an empty decision are skipped.

    Returns record_id_a, record_id_b, decision ('same'/'different') and, when present, reviewer and note.
    Raises InputFileError naming the row and column of the first problem.
    """
    path = Path(path)
    sheet = _load(path)
    missing = [c for c in DECISION_COLUMNS if c not in sheet.columns]
    if missing:
        raise InputFileError(
            path,
            f"the sheet has no {', '.join(repr(c) for c in missing)} column",
            "export a fresh duplicates sheet with `review dedupe` and fill in its 'decision' column",
            field=missing[0],
        )
    rows: list[dict[str, str]] = []
    problems: list[tuple[int, str, str]] = []
    for index, row in enumerate(sheet.to_dict("records")):
        line = index + 2  # spreadsheet row: the header is row 1
        decision = normalise_decision(row.get("decision"))
        if decision == "":
            continue
        if decision is None:
            problems.append((line, "decision", f"decision {str(row['decision'])!r} is neither 'same' nor 'different'"))
            continue
        a, b = str(row["record_id_a"]).strip(), str(row["record_id_b"]).strip()
        if not a or not b:
            field = "record_id_a" if not a else "record_id_b"
            problems.append((line, field, f"the decision {decision!r} names no record in {field!r}"))
            continue
        if a == b:
            problems.append((line, "record_id_b", "the decision pairs a record with itself"))
            continue
        rows.append({"record_id_a": a, "record_id_b": b, "decision": decision, **_extras(row)})
    if problems:
        line, field, problem = problems[0]
        more = f" (and {len(problems) - 1} more rows)" if len(problems) > 1 else ""
        raise InputFileError(
            path,
            problem + more,
            "write 'same' or 'different' (or leave it empty) and keep both record ids",
            row=line,
            field=field,
        )
    return _latest(pd.DataFrame(rows, columns=[*DECISION_COLUMNS, "reviewer", "note"]))


def _load(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(path, "the file does not exist", "give the path of the duplicates sheet you edited")
    try:
        if path.suffix.lower() in {".xlsx", ".xlsm"}:
            return pd.read_excel(path, dtype=str, keep_default_na=False)
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise InputFileError(path, f"the sheet cannot be read ({error})", "save it as UTF-8 CSV or XLSX") from error


def _extras(row: dict[str, object]) -> dict[str, str]:
    return {key: str(row.get(key) or "").strip() for key in ("reviewer", "note")}


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    """One decision per unordered pair: the last one written wins (the ledger is append-only)."""
    if frame.empty:
        return frame.reset_index(drop=True)
    a, b = frame["record_id_a"], frame["record_id_b"]
    pair = a.where(a < b, b) + "\x1f" + b.where(a < b, a)
    return frame.loc[~pair.duplicated(keep="last")].reset_index(drop=True)


def check_decisions(decisions: pd.DataFrame) -> pd.DataFrame:
    """Validate a decisions frame given to `deduplicate` (in memory, not a file)."""
    missing = [c for c in DECISION_COLUMNS if c not in decisions.columns]
    if missing:
        raise ReviewError(
            f"The dedupe decisions have no {', '.join(missing)} column; pass the frame read_dedupe_decisions returns."
        )
    frame = decisions[DECISION_COLUMNS].astype(str).copy()
    frame["decision"] = [normalise_decision(v) for v in frame["decision"]]
    bad = frame["decision"].isna()
    if bad.any():
        value = decisions.loc[bad.idxmax(), "decision"]
        raise ReviewError(
            f"Dedupe decision {value!r} (row {int(bad.values.argmax()) + 1}) is neither 'same' nor 'different'; "
            "correct it."
        )
    frame = frame[frame["decision"] != ""]
    return _latest(frame.reset_index(drop=True))
