"""Review sheets: assignments out to a spreadsheet (CSV or XLSX), reviewer decisions back in.

Export: one row per (study, code) assignment with its stable `assignment_id`, then the columns a reviewer fills
(`decision`, `new_code`, `new_direction`, `reviewer`, `note`). Given the ledger, rows a reviewer already decided
show that decision (and who made it), and rejected or re-coded codes stay on the sheet so they can be revisited.

Import: reads what spreadsheet programs really write (UTF-8 with or without BOM, UTF-16, cp1252; ',' ';' or tab;
CRLF; quoted newlines; reordered, renamed-by-case and extra columns; blank rows; TRUE/FALSE/1/0), validates every
row before anything is written, and raises one `SheetError` listing every problem by spreadsheet row number
(header = row 1) and column, with a did-you-mean. Then it appends the new decisions to the ledger in one
transaction. A row whose decision equals what its reviewer already decided is 'unchanged', so importing the same
sheet twice, or a sheet re-exported with its decisions, changes nothing.

Public API:
    export_sheet(assignments, studies, path, *, ledger=None, codebook=None) -> Path
    sheet_frame(assignments, studies, ledger=None) -> DataFrame            (the rows export writes)
    review_items(assignments, ledger) -> DataFrame                         (what an import accepts as known rows)
    read_sheet(path, codebook, known_assignments, known_studies) -> DataFrame   (READ_COLUMNS; validated)
    import_sheet(store, path, reviewer, codebook, assignments, studies) -> ImportResult
    ledger_frame(store), apply_ledger(assignments, ledger)                 (re-exported from pipeline.ledger)
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.assign import assignment_id
from pipeline.codebook import DIRECTIONS, Codebook
from pipeline.errors import InputFileError, ReviewError
from pipeline.io import atomic_write, neutralise_cell, write_csv
from pipeline.ledger import (
    DECISIONS,
    MACHINE_METHODS,
    apply_ledger,
    complete_assignments,
    decided_keys,
    decision_id,
    in_force,
    keys_of,
    latest_by_reviewer,
    ledger_frame,
)
from pipeline.store import Store, utc_now

log = logging.getLogger(__name__)

__all__ = [
    "DECISIONS", "ImportResult", "READ_COLUMNS", "SHEET_COLUMNS", "SheetError", "apply_ledger", "export_sheet",
    "import_sheet", "ledger_frame", "read_sheet", "sheet_frame",
]

ITEM_COLUMNS: list[str] = [
    "assignment_id", "study_id", "title", "code", "category", "direction", "evidence", "method", "confidence"
]
DECISION_COLUMNS: list[str] = ["decision", "new_code", "new_direction", "reviewer", "note"]
SHEET_COLUMNS: list[str] = ITEM_COLUMNS + DECISION_COLUMNS
REQUIRED_COLUMNS: tuple[str, ...] = ("assignment_id", "study_id", "code", "decision")
READ_COLUMNS: list[str] = [
    "row", "assignment_id", "study_id", "code", "category", "decision", "new_code", "new_direction", "evidence",
    "reviewer", "note", "machine_method", "machine_rule", "machine_direction", "machine_confidence", "duplicate_of",
]
SHEET_NAME = "Review"
VALIDATION_ROWS = 1000  # the drop-down lists reach this far below the last row, for the rows a reviewer adds
_DELIMITERS = (",", ";", "\t")
_TRUE = {"true", "1", "yes", "y", "x", "ok", "accepted", "wahr", "vrai"}
_FALSE = {"false", "0", "no", "n", "rejected", "falsch", "faux"}
_DECISION_ALIASES = {"changed_code": "change_code", "code_change": "change_code",
                     "changed_direction": "change_direction", "direction_change": "change_direction",
                     "added": "add", "new": "add"}
_SEP_LINE = re.compile(r"^\ufeff?sep=(.)\s*$", re.IGNORECASE)

INSTRUCTIONS: list[tuple[str, str]] = [
    ("What this sheet is", "One row per code the machine (or a reviewer) gave a study, with the quote that justifies "
     "it. Fill the decision columns on the rows you review; leave the others empty."),
    ("assignment_id", "The row's stable id. Do not edit it, nor study_id or code: the import checks them."),
    ("decision: (empty)", "No decision: the code stays as the machine coded it, counted as unreviewed."),
    ("decision: accept", "The code is right. It stays, now marked as decided by you."),
    ("decision: reject", "The code is wrong. It is removed, and re-running the coding never adds it back."),
    ("decision: change_code", "The quote is evidence of another code: write that code's id (category.name, see "
     "sheet Codes) in new_code. For a benefits code also give new_direction."),
    ("decision: change_direction", "Benefits only: the code is right but its direction is not; write supporting, "
     "contrasting or mixed in new_direction."),
    ("decision: add", "A code the machine missed: add a row with study_id, code, evidence (the quote) and decision "
     "add; leave assignment_id empty. For a benefits code also give new_direction."),
    ("new_direction", "supporting: the benefit was found; contrasting: not found, no impact or negative; "
     "mixed: conditional or both."),
    ("reviewer", "Who decided. Leave it empty on your rows: the import records them under --reviewer NAME. "
     "Rows already decided show who decided them."),
    ("note", "Why, in your words (optional); kept in the audit trail."),
    ("TRUE / FALSE", "In decision, TRUE, 1 or yes means accept; FALSE, 0 or no means reject."),
    ("Saving", "Keep this .xlsx, or save as CSV (UTF-8 or your Excel's default; ',' or ';'). Then run: "
     "review sheet import FILE --reviewer NAME. Every row is checked first; if any row has a problem, nothing "
     "is imported and each problem is listed with its row and column."),
    ("Importing again", "Safe: decisions already recorded are recognised and skipped; only changes are added."),
]


class SheetError(ReviewError):
    """A sheet with problems: every problem, located by spreadsheet row (header = row 1) and column."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        listing = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"{self.path} has {len(problems)} problem(s), so nothing was imported; fix them and import again:\n"
            f"{listing}"
        )


@dataclass
class ImportResult:
    """What one import did: new decisions per decision, and the rows it recognised and skipped."""

    sheet_name: str
    sheet_sha256: str
    reviewer: str
    counts: dict[str, int] = field(default_factory=dict)  # decisions recorded, per decision
    n_unchanged: int = 0  # rows whose decision was already the reviewer's latest
    n_duplicates: int = 0  # rows repeating another row of the same sheet
    n_no_decision: int = 0  # rows left empty
    n_rows: int = 0  # non-blank data rows read

    @property
    def n_recorded(self) -> int:
        return sum(self.counts.values())


# ================================================================ export


def sheet_frame(
    assignments: pd.DataFrame, studies: pd.DataFrame | None, ledger: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The rows a review sheet holds (SHEET_COLUMNS), sorted by study, code and assignment_id."""
    items = review_items(assignments, ledger)
    titles = study_titles(studies)
    items["title"] = [titles.get(s, "") for s in items["study_id"]]
    return items[SHEET_COLUMNS]


def export_sheet(
    assignments: pd.DataFrame,
    studies: pd.DataFrame | None,
    path: str | Path,
    *,
    ledger: pd.DataFrame | None = None,
    codebook: Codebook | None = None,
) -> Path:
    """Write the review sheet (.csv: UTF-8 with BOM; .xlsx: with Instructions and drop-down lists) atomically.

    Identical inputs give identical bytes. With `codebook`, the XLSX gets a Codes sheet and a new_code list.
    """
    path = Path(path)
    frame = sheet_frame(assignments, studies, ledger)
    write_sheet(frame, path, codebook)
    log.info("wrote a review sheet of %d row(s) to %s", len(frame), path)
    return path


def write_sheet(frame: pd.DataFrame, path: Path, codebook: Codebook | None) -> None:
    """Write sheet rows (SHEET_COLUMNS first, extra columns after) as .csv or .xlsx, atomically."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        write_csv(frame, path)
    elif suffix == ".xlsx":
        data = _workbook_bytes(frame, codebook)
        with atomic_write(path, mode="wb") as handle:
            handle.write(data)
    else:
        raise ReviewError(f"cannot write a review sheet as {path.name!r}; name it .csv or .xlsx.")


def study_titles(studies: pd.DataFrame | None) -> dict[str, str]:
    """study_id -> title ('' when unknown); line breaks as LF."""
    if studies is None or studies.empty or "title" not in studies.columns:
        return {}
    ids = studies["study_id"] if "study_id" in studies.columns else studies.get("id", pd.Series(dtype=object))
    return {str(s): ("" if pd.isna(t) else _one_line_break(str(t))) for s, t in zip(ids, studies["title"], strict=True)}


def _one_line_break(text: str) -> str:
    """CR and CRLF as LF: a lone CR in a CSV cell is not quoted by the writer and reads as a row break (and the
    assignment id, which collapses whitespace, does not change)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def review_items(assignments: pd.DataFrame | None, ledger: pd.DataFrame | None) -> pd.DataFrame:
    """Assignments as sheet items (+ `rule`), with the decisions in force filled in.

    Machine rows whose (study, code) a decision covers are shown as that decision's row instead; reviewer rows the
    ledger produced are left out (the decision row explains them)."""
    frame = _assignment_items(assignments)
    if ledger is None or ledger.empty:
        return _sort_items(frame)
    force = in_force(ledger)
    decided = set(keys_of(force))
    produced = decided_keys(ledger)
    keys = keys_of(frame)
    machine = frame["method"] != "reviewer"
    keep = [k not in decided and (m or k not in produced) for m, k in zip(machine, keys, strict=True)]
    current = {(str(r["study_id"]), str(r["code"])): r for r in frame[machine].to_dict("records")}
    rows = [_decision_item(rec, current.get((str(rec["study_id"]), str(rec["code"]))))
            for rec in force.to_dict("records")]
    decided_frame = pd.DataFrame(rows, columns=list(frame.columns))
    return _sort_items(pd.concat([frame[keep], decided_frame], ignore_index=True))


def _assignment_items(assignments: pd.DataFrame | None) -> pd.DataFrame:
    base = complete_assignments(assignments)
    frame = pd.DataFrame({
        "assignment_id": base["assignment_id"].astype(str),
        "study_id": base["study_id"].astype(str),
        "code": base["code"].astype(str),
        "category": [c if isinstance(c, str) and c else str(code).split(".", 1)[0]
                     for c, code in zip(base["category"], base["code"], strict=True)],
        "direction": base["direction"].fillna("").astype(str),
        "evidence": base["evidence"].fillna("").astype(str).map(_one_line_break),
        "method": base["method"].fillna("").astype(str),
        "confidence": pd.to_numeric(base["confidence"], errors="coerce"),
        "rule": base["rule"].fillna("").astype(str),
    })
    for column in DECISION_COLUMNS:
        frame[column] = ""
    return frame


def _decision_item(rec: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The sheet row showing a decision in force: the item as decided, with the decision filled in."""
    study, code, evidence = str(rec["study_id"]), str(rec["code"]), str(rec["evidence"])
    added = rec["decision"] == "add"
    same = current is not None and not added and current["assignment_id"] == rec["assignment_id"]
    # Ledgers with machine_direction / machine_confidence columns remember what the machine said even after the
    # machine's row is gone (e.g. when exporting from the final assignments); older ones show it only while known.
    machine_direction = str(rec.get("machine_direction") or "")
    machine_confidence = pd.to_numeric(rec.get("machine_confidence"), errors="coerce")
    return {
        "assignment_id": str(rec["assignment_id"]) or assignment_id(study, code, evidence),
        "study_id": study,
        "code": code,
        "category": code.split(".", 1)[0],
        "direction": str(rec["new_direction"]) if added else (current["direction"] if same else machine_direction),
        "evidence": evidence,
        "method": "reviewer" if added else (str(rec["machine_method"]) or (current["method"] if same else "")),
        "confidence": current["confidence"] if same else machine_confidence,
        "rule": str(rec["machine_rule"]),
        "decision": str(rec["decision"]),
        "new_code": str(rec["new_code"]),
        "new_direction": str(rec["new_direction"]),
        "reviewer": str(rec["reviewer"]),
        "note": str(rec["note"]),
    }


def _sort_items(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.drop_duplicates("assignment_id", keep="first")
    return frame.sort_values(["study_id", "code", "assignment_id"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- xlsx


def _workbook_bytes(frame: pd.DataFrame, codebook: Codebook | None) -> bytes:
    """The review workbook: Review (the rows; drop-down lists), Instructions, Codes. Deterministic bytes, written
    the way pipeline.export.xlsx_export writes the matrix (its fixed dates and zip rewrite are reused)."""
    import zipfile

    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    from pipeline.export.xlsx_export import FIXED_TIME, _fixed_zip, _table_sheet

    wb = Workbook()
    wb.remove(wb.active)
    _table_sheet(wb, SHEET_NAME, frame, freeze="A2", widths={"note": 40, "reviewer": 14, "new_code": 28})
    _table_sheet(wb, "Instructions", pd.DataFrame(INSTRUCTIONS, columns=["item", "what to do"]),
                 widths={"item": 28, "what to do": 110})
    if codebook is not None:
        _table_sheet(wb, "Codes", _codes_frame(codebook), widths={"code": 36, "label": 34, "definition": 90})
    _add_validation(wb[SHEET_NAME], frame, codebook)
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "living-review"
    wb.properties.title = "Review sheet"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    return _fixed_zip(buffer.getvalue())


def _codes_frame(codebook: Codebook) -> pd.DataFrame:
    rows = [(c.id, c.category, c.label, " ".join(c.definition.split()),
             "yes" if codebook.categories.get(c.category) and codebook.categories[c.category].directional else "")
            for c in codebook.codes]
    return pd.DataFrame(rows, columns=["code", "category", "label", "definition", "needs new_direction"])


def _add_validation(ws: Any, frame: pd.DataFrame, codebook: Codebook | None) -> None:
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    last = len(frame) + 1 + VALIDATION_ROWS
    lists = {
        "decision": '"' + ",".join(DECISIONS) + '"',
        "new_direction": '"' + ",".join(DIRECTIONS) + '"',
    }
    if codebook is not None and codebook.codes:
        lists["new_code"] = f"Codes!$A$2:$A${len(codebook.codes) + 1}"
    for column, formula in lists.items():
        letter = get_column_letter(list(frame.columns).index(column) + 1)
        dv = DataValidation(type="list", formula1=formula, allow_blank=True, showErrorMessage=True,
                            errorTitle=f"Not a {column}", error=f"Pick a {column} from the list (see Instructions).")
        ws.add_data_validation(dv)
        dv.add(f"{letter}2:{letter}{last}")


# ================================================================ reading


def read_sheet(
    path: str | Path,
    codebook: Codebook,
    known_assignments: pd.DataFrame,
    known_studies: Iterable[str],
) -> pd.DataFrame:
    """Read and validate a review sheet; return one row per non-blank data row (READ_COLUMNS).

    `decision` is '' on rows without a decision. Values are normalised: evidence is the assignment's own quote
    (the reviewer's for `add`), `new_direction` is the direction the code ends with. Raises SheetError listing
    every problem; InputFileError when the file cannot be read as a sheet at all.
    """
    path = Path(path)
    return _read(_read_bytes(path), path, codebook, known_assignments, known_studies)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(path, "no such file", "check the path to the review sheet") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a folder, not a sheet", "give the .csv or .xlsx file") from None


def _read(
    data: bytes,
    path: Path,
    codebook: Codebook,
    known_assignments: pd.DataFrame,
    known_studies: Iterable[str],
) -> pd.DataFrame:
    header, rows = _raw_rows(data, path)
    columns = _map_header(header, path)
    validator = _Validator(codebook, known_assignments, known_studies)
    for number, cells in rows:
        record = {name: (cells[i] if i < len(cells) else "") for name, i in columns.items()}
        validator.check(number, record)
    problems = validator.problems()
    if problems:
        raise SheetError(path, problems)
    return pd.DataFrame(validator.rows, columns=READ_COLUMNS)


def _raw_rows(data: bytes, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """(header cells, [(spreadsheet row number, cells)]) of a CSV or XLSX sheet."""
    if data[:4] == b"PK\x03\x04":
        return _xlsx_rows(data, path)
    suffix = path.suffix.lower()
    if suffix in (".xls", ".ods", ".numbers"):
        raise InputFileError(path, f"is a {suffix} file, which the import does not read",
                             "save it as .xlsx or .csv in your spreadsheet program")
    return _csv_rows(_decode(data), path)


def _decode(data: bytes) -> str:
    """Text as spreadsheet programs save it: UTF-16 (Excel 'Unicode text'), UTF-8 with or without BOM, cp1252."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _csv_rows(text: str, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    lines = text.split("\n", 1)
    delimiter = None
    match = _SEP_LINE.match(lines[0].rstrip("\r"))
    if match:  # Excel's "sep=;" hint line: not shown as a row
        delimiter, text = match.group(1), (lines[1] if len(lines) > 1 else "")
    records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or _sniff(text)))
    if not records:
        raise InputFileError(path, "is empty", "export a fresh sheet with `review sheet export`")
    header = [_csv_cell(c) for c in records[0]]
    rows = [(number, [_csv_cell(c) for c in cells]) for number, cells in enumerate(records[1:], start=2)]
    return header, rows


def _sniff(text: str) -> str:
    """The delimiter under which the first record names the most sheet columns (then: the most fields)."""
    line = text.split("\n", 1)[0].rstrip("\r")  # the header holds no quoted newline

    def score(delimiter: str) -> tuple[int, int]:
        cells = next(csv.reader([line], delimiter=delimiter), [])
        return sum(_column_name(c) in SHEET_COLUMNS for c in cells), len(cells)

    return max(_DELIMITERS, key=score)


def _csv_cell(value: str) -> str:
    """Undo the export's formula guard: a leading "'" that pipeline.io.neutralise_cell added is removed."""
    if value.startswith("'") and neutralise_cell(value[1:]) == value:
        return value[1:]
    return value


def _xlsx_rows(data: bytes, path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(data), data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign zip
        raise InputFileError(path, f"cannot be opened as an .xlsx workbook ({exc})",
                             "save it again as .xlsx or .csv in your spreadsheet program") from None
    ws = _review_worksheet(wb)
    if ws is None:
        raise InputFileError(path, "has no sheet with an assignment_id and a decision column",
                             "import the workbook `review sheet export` wrote, with its Review sheet")
    grid = [[_xlsx_cell(v) for v in values] for values in ws.iter_rows(values_only=True)]
    if not grid:
        raise InputFileError(path, "has an empty Review sheet", "export a fresh sheet with `review sheet export`")
    return grid[0], [(number, cells) for number, cells in enumerate(grid[1:], start=2)]


def _review_worksheet(wb: Any) -> Any:
    candidates = ([wb[SHEET_NAME]] if SHEET_NAME in wb.sheetnames else []) + list(wb.worksheets)
    for ws in candidates:
        header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
        names = {_column_name(_xlsx_cell(v)) for v in header}
        if {"assignment_id", "decision"} <= names:
            return ws
    return None


def _xlsx_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _column_name(value: str) -> str:
    return re.sub(r"[\s\-]+", "_", value.replace("\ufeff", "").strip().lower())


def _map_header(header: list[str], path: Path) -> dict[str, int]:
    """Sheet column -> cell index; reordered and extra columns are fine, a missing required one is not."""
    columns: dict[str, int] = {}
    problems = []
    for index, cell in enumerate(header):
        name = _column_name(cell)
        if name not in SHEET_COLUMNS:
            continue
        if name in columns:
            problems.append(f"row 1: column {name!r} appears twice; delete one of them")
        columns[name] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        problems.append(
            f"row 1: the header has no {', '.join(repr(m) for m in missing)} column; the first row must be the "
            f"header `review sheet export` wrote ({', '.join(SHEET_COLUMNS)})"
        )
    if problems:
        raise SheetError(path, problems)
    return columns


# ---------------------------------------------------------------- validation


@dataclass
class _Problem:
    row: int
    column: str
    text: str
    list_codes: bool = False


class _Validator:
    """Checks each row, collects every problem, and keeps the normalised rows."""

    def __init__(self, codebook: Codebook, known: pd.DataFrame, studies: Iterable[str]) -> None:
        self.codebook = codebook
        self.codes = {c.id: c for c in codebook.codes}
        self.items = {str(r["assignment_id"]): r for r in _known_items(known)}
        self.machine_by_key = {(str(r["study_id"]), str(r["code"])): r for r in self.items.values()
                               if r.get("method") in MACHINE_METHODS}
        self.studies = {str(s) for s in studies}
        self.rows: list[dict[str, Any]] = []
        self.by_key: dict[tuple[str, str], dict[str, Any]] = {}
        self._problems: list[_Problem] = []

    # ---- collecting
    def problem(self, row: int, column: str, text: str, list_codes: bool = False) -> None:
        self._problems.append(_Problem(row, column, text, list_codes))

    def problems(self) -> list[str]:
        order = {c: i for i, c in enumerate(SHEET_COLUMNS)}
        ordered = sorted(self._problems, key=lambda p: (p.row, order.get(p.column, 99)))
        out, listed = [], False
        for p in ordered:
            text = f"row {p.row}, {p.column}: {p.text}"
            if p.list_codes and not listed:
                text += (" " if text.endswith("?") else "; ") + "known codes: " + ", ".join(self.codes)
                listed = True
            out.append(text)
        return out

    # ---- one row
    def check(self, number: int, cells: dict[str, str]) -> None:
        cells = {k: v.replace("\r\n", "\n").replace("\r", "\n").strip() for k, v in cells.items()}
        if not any(cells.values()):
            return  # blank rows (trailing or in between) are not rows
        decision = self._decision(number, cells.get("decision", ""))
        if decision is None:
            return
        if decision == "add":
            row = self._added(number, cells)
        else:
            row = self._existing(number, cells, decision)
        if row is not None:
            self._keep(number, row)

    def _decision(self, number: int, raw: str) -> str | None:
        value = _column_name(raw)
        value = _DECISION_ALIASES.get(value, value)
        if value in _TRUE:
            return "accept"
        if value in _FALSE:
            return "reject"
        if value in DECISIONS or value == "":
            return value
        hint = _did_you_mean(value, DECISIONS)
        self.problem(number, "decision", f"unknown decision {raw!r};{hint} use one of {', '.join(DECISIONS)} "
                                         "(or leave it empty)")
        return None

    def _existing(self, number: int, cells: dict[str, str], decision: str) -> dict[str, Any] | None:
        aid = cells.get("assignment_id", "")
        if not aid:
            if decision or any(cells.get(c) for c in ("study_id", "code", "evidence", "new_code", "new_direction",
                                                      "note")):
                self.problem(number, "decision", "a row without an assignment_id is a code you add: write 'add' in "
                                                 "decision (with study_id, code and evidence), or delete the row")
            return None
        item = self.items.get(aid) or self._intact(cells)
        if item is None:
            if decision:
                self.problem(number, "assignment_id",
                             f"unknown assignment {aid!r}; keep the ids `review sheet export` wrote (to add a code "
                             "the machine missed, clear assignment_id and write decision add)")
            return None
        if not self._same_item(number, cells, item):
            return None
        row = self._base(number, item, cells, decision)
        if not decision:
            self._no_decision_extras(number, cells)
            return row
        return self._normalise(number, cells, decision, item, row)

    def _intact(self, cells: dict[str, str]) -> dict[str, Any] | None:
        """A row from an earlier export whose machine code has since changed: its id still proves it is intact."""
        study, code, evidence = cells.get("study_id", ""), cells.get("code", ""), cells.get("evidence", "")
        if study in self.studies and code and assignment_id(study, code, evidence) == cells.get("assignment_id"):
            method = cells.get("method", "")
            return {"assignment_id": cells["assignment_id"], "study_id": study, "code": code, "evidence": evidence,
                    "direction": cells.get("direction", ""), "method": method if method in MACHINE_METHODS else "",
                    "rule": ""}
        return None

    def _same_item(self, number: int, cells: dict[str, str], item: Mapping[str, Any]) -> bool:
        ok = True
        for column in ("study_id", "code"):
            value = cells.get(column, "")
            if value and value != str(item[column]):
                fix = ("use decision change_code and write the new code in new_code" if column == "code"
                       else "restore it, or add the code to the other study with a new 'add' row")
                self.problem(number, column, f"the sheet says {value!r} but assignment {item['assignment_id']!r} "
                                             f"is {str(item[column])!r}; do not edit it: {fix}")
                ok = False
        return ok

    def _base(self, number: int, item: Mapping[str, Any], cells: dict[str, str], decision: str) -> dict[str, Any]:
        method = str(item.get("method", ""))
        return {
            "row": number,
            "assignment_id": str(item["assignment_id"]),
            "study_id": str(item["study_id"]),
            "code": str(item["code"]),
            "category": str(item["code"]).split(".", 1)[0],
            "decision": decision,
            "new_code": "",
            "new_direction": "",
            "evidence": str(item["evidence"]),
            "reviewer": cells.get("reviewer", ""),
            "note": cells.get("note", ""),
            "machine_method": method if method in MACHINE_METHODS else "",
            "machine_rule": str(item.get("rule", "")) if method in MACHINE_METHODS else "",
            "machine_direction": str(item.get("direction", "") or "") if method in MACHINE_METHODS else "",
            "machine_confidence": _number(item.get("confidence")) if method in MACHINE_METHODS else None,
            "duplicate_of": 0,
            "_direction": str(item.get("direction", "") or ""),
        }

    def _no_decision_extras(self, number: int, cells: dict[str, str]) -> None:
        for column in ("new_code", "new_direction"):
            if cells.get(column):
                self.problem(number, "decision", f"{column} is filled but decision is empty; write the decision "
                                                 f"({'change_code' if column == 'new_code' else 'change_direction'}) "
                                                 f"or clear {column}")

    def _normalise(self, number: int, cells: dict[str, str], decision: str, item: Mapping[str, Any],
                   row: dict[str, Any]) -> dict[str, Any] | None:
        code = row["code"]
        new_code = cells.get("new_code", "")
        direction = self._direction(number, cells.get("new_direction", ""))
        if direction is None:
            return None
        if decision != "change_code" and new_code:
            self.problem(number, "new_code", f"{decision!r} takes no new code; clear new_code, or use change_code")
            return None
        if decision == "change_code":
            return self._change_code(number, new_code, direction, row)
        directional = self._directional(code)
        if decision == "reject":
            if direction:
                self.problem(number, "new_direction", "'reject' takes no direction; clear new_direction")
                return None
            return row
        if decision == "change_direction" and not directional:
            self.problem(number, "decision", f"change_direction is for codes with a direction (benefits); {code!r} "
                                             "has none: use accept, reject or change_code")
            return None
        if decision == "change_direction" and not direction:
            self.problem(number, "new_direction", f"change_direction needs new_direction: one of "
                                                  f"{', '.join(DIRECTIONS)}")
            return None
        if direction and not directional:
            self.problem(number, "new_direction", f"{code!r} has no direction (only benefits codes do); "
                                                  "clear new_direction")
            return None
        row["new_direction"] = direction or (row["_direction"] if directional else "")
        return row

    def _change_code(self, number: int, new_code: str, direction: str, row: dict[str, Any]) -> dict[str, Any] | None:
        if not new_code:
            self.problem(number, "new_code", "change_code needs new_code: the id (category.name) of the code the "
                                             "quote is evidence of", list_codes=True)
            return None
        if not self._known_code(number, "new_code", new_code):
            return None
        if new_code == row["code"]:
            self.problem(number, "new_code", f"{new_code!r} is the row's code already; use accept (or "
                                             "change_direction)")
            return None
        if self._directional(new_code):
            direction = direction or (row["_direction"] if self._directional(row["code"]) else "")
            if not direction:
                self.problem(number, "new_direction", f"{new_code!r} is a benefits code: give new_direction "
                                                      f"({', '.join(DIRECTIONS)})")
                return None
        elif direction:
            self.problem(number, "new_direction", f"{new_code!r} has no direction (only benefits codes do); "
                                                  "clear new_direction")
            return None
        row.update(new_code=new_code, new_direction=direction)
        return row

    def _added(self, number: int, cells: dict[str, str]) -> dict[str, Any] | None:
        study, code, evidence = cells.get("study_id", ""), cells.get("code", ""), cells.get("evidence", "")
        ok = True
        if not study:
            self.problem(number, "study_id", "an added code needs the study_id of the study it codes")
            ok = False
        elif study not in self.studies:
            hint = _did_you_mean(study, sorted(self.studies))
            self.problem(number, "study_id", f"unknown study {study!r};{hint} copy the study_id from another row of "
                                             "the same study")
            ok = False
        if not code:
            self.problem(number, "code", "an added code needs its code id (category.name)", list_codes=True)
            ok = False
        elif not self._known_code(number, "code", code):
            ok = False
        if not evidence:
            self.problem(number, "evidence", "an added code needs the quote from the study that justifies it")
            ok = False
        if cells.get("new_code"):
            self.problem(number, "new_code", "'add' takes no new_code; put the code you add in code")
            ok = False
        direction = self._direction(number, cells.get("new_direction", "") or cells.get("direction", ""))
        if not ok or direction is None:
            return None
        if self._directional(code) and not direction:
            self.problem(number, "new_direction", f"{code!r} is a benefits code: give new_direction "
                                                  f"({', '.join(DIRECTIONS)})")
            return None
        if direction and not self._directional(code):
            self.problem(number, "new_direction", f"{code!r} has no direction (only benefits codes do); "
                                                  "clear new_direction")
            return None
        machine = self.machine_by_key.get((study, code), {})
        return {
            "row": number, "assignment_id": assignment_id(study, code, evidence), "study_id": study, "code": code,
            "category": code.split(".", 1)[0], "decision": "add", "new_code": "", "new_direction": direction,
            "evidence": evidence, "reviewer": cells.get("reviewer", ""), "note": cells.get("note", ""),
            "machine_method": str(machine.get("method", "")), "machine_rule": str(machine.get("rule", "")),
            "machine_direction": str(machine.get("direction", "") or ""),
            "machine_confidence": _number(machine.get("confidence")), "duplicate_of": 0, "_direction": direction,
        }

    def _keep(self, number: int, row: dict[str, Any]) -> None:
        row.pop("_direction", None)
        if row["decision"]:
            key = (row["study_id"], row["code"])
            first = self.by_key.get(key)
            if first is not None:
                if _content(first) != _content(row):
                    self.problem(number, "decision", f"row {first['row']} already decides study {key[0]!r}, code "
                                                     f"{key[1]!r} differently; keep one of the two rows")
                    return
                row["duplicate_of"] = first["row"]
            else:
                self.by_key[key] = row
        self.rows.append(row)

    # ---- values
    def _direction(self, number: int, raw: str) -> str | None:
        value = raw.strip().lower()
        if not value or value in DIRECTIONS:
            return value
        hint = _did_you_mean(value, DIRECTIONS)
        self.problem(number, "new_direction", f"unknown direction {raw!r};{hint} use one of {', '.join(DIRECTIONS)}")
        return None

    def _known_code(self, number: int, column: str, value: str) -> bool:
        if value in self.codes:
            return True
        hint = _suggest_code(value, self.codebook)
        self.problem(number, column, f"unknown code {value!r};{hint or ''}".rstrip(";"), list_codes=True)
        return False

    def _directional(self, code: str) -> bool:
        known = self.codes.get(code)
        category = known.category if known else code.split(".", 1)[0]
        entry = self.codebook.categories.get(category)
        return bool(entry and entry.directional)


def _known_items(known: pd.DataFrame | None) -> list[dict[str, Any]]:
    if known is None or known.empty:
        return []
    frame = known.copy()
    for column in ("direction", "method", "rule", "evidence"):
        if column not in frame.columns:
            frame[column] = ""
    frame = frame.fillna({"direction": "", "method": "", "rule": "", "evidence": ""})
    if "assignment_id" not in frame.columns:
        frame["assignment_id"] = [assignment_id(str(s), str(c), str(e))
                                  for s, c, e in zip(frame["study_id"], frame["code"], frame["evidence"], strict=True)]
    return frame.to_dict("records")


def _number(value: Any) -> float | None:
    number = pd.to_numeric(value, errors="coerce")
    return None if pd.isna(number) else float(number)


def _content(row: Mapping[str, Any]) -> tuple[str, ...]:
    """What a decision says (no who/when), for comparing rows and ledger entries."""
    return tuple(str(row.get(k, "")) for k in ("decision", "new_code", "new_direction", "evidence", "note"))


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    from rapidfuzz import fuzz, process, utils

    best = process.extractOne(value, list(choices), scorer=fuzz.WRatio, processor=utils.default_process,
                              score_cutoff=60)
    return f" did you mean {best[0]!r}?" if best else ""


def _suggest_code(value: str, codebook: Codebook) -> str:
    """Did-you-mean for a code id: the category part against categories, the name part against each code's name
    and the words of its label ('barier.cost' -> 'barriers.funding', labelled 'Funding and costs')."""
    from rapidfuzz import fuzz, utils

    head, _, tail = value.rpartition(".")
    category, name = utils.default_process(head), utils.default_process(tail)
    best, best_score = "", 0.0
    for code in codebook.codes:
        words = [code.name.replace("_", " ")] + utils.default_process(code.label).split() + code.name.split("_")
        name_score = max(fuzz.ratio(name, w) for w in words)
        score = (fuzz.ratio(category, code.category) + 2 * name_score) / 3 if category else name_score
        if score > best_score:
            best, best_score = code.id, score
    return f" did you mean {best!r}?" if best_score >= 60 else ""


# ================================================================ import


def import_sheet(
    store: Store,
    path: str | Path,
    reviewer: str,
    codebook: Codebook,
    assignments: pd.DataFrame,
    studies: pd.DataFrame | Iterable[str],
) -> ImportResult:
    """Validate the sheet, then append its new decisions to the ledger in one transaction (all or nothing).

    Decisions are recorded under `reviewer`. A row whose decision equals the latest decision of its reviewer (the
    name in its reviewer cell, else `reviewer`) on that (study, code) is unchanged and skipped.
    """
    path = Path(path)
    reviewer = (reviewer or "").strip()
    if not reviewer:
        raise ReviewError("the import needs the reviewer's name; pass --reviewer NAME.")
    data = _read_bytes(path)
    ledger = ledger_frame(store)
    items = review_items(assignments, ledger)
    frame = _read(data, path, codebook, items, study_ids(studies))
    result = ImportResult(sheet_name=path.name, sheet_sha256=hashlib.sha256(data).hexdigest(), reviewer=reviewer,
                          counts=dict.fromkeys(DECISIONS, 0), n_rows=len(frame))
    rows = _new_decisions(frame, ledger, reviewer, result)
    from pipeline.ledger import append_decisions

    written = append_decisions(store, rows)
    result.n_duplicates += len(rows) - written
    log.info("imported %s: %d new decision(s), %d unchanged, %d duplicate(s), %d without decision",
             path.name, result.n_recorded, result.n_unchanged, result.n_duplicates, result.n_no_decision)
    return result


def study_ids(studies: pd.DataFrame | Iterable[str]) -> set[str]:
    """The known study ids, from a studies frame (study_id or id column) or any iterable of ids."""
    if isinstance(studies, pd.DataFrame):
        column = "study_id" if "study_id" in studies.columns else "id"
        return {str(s) for s in studies[column]}
    return {str(s) for s in studies}


def _new_decisions(frame: pd.DataFrame, ledger: pd.DataFrame, reviewer: str, result: ImportResult) -> list[dict]:
    latest = {(str(r["study_id"]), str(r["code"]), str(r["reviewer"])): r
              for r in latest_by_reviewer(ledger).to_dict("records")}
    now = utc_now()
    rows: list[dict[str, Any]] = []
    for rec in frame.to_dict("records"):
        if not rec["decision"]:
            result.n_no_decision += 1
            continue
        if rec["duplicate_of"]:
            result.n_duplicates += 1
            continue
        key = (rec["study_id"], rec["code"])
        names = dict.fromkeys(n for n in (rec["reviewer"], reviewer) if n)
        if any(key + (n,) in latest and _content(latest[key + (n,)]) == _content(rec) for n in names):
            result.n_unchanged += 1
            continue
        # the ledger marks a code a reviewer added with an empty assignment_id
        added = rec["decision"] == "add"
        fields = {**rec, "reviewer": reviewer, "assignment_id": "" if added else rec["assignment_id"]}
        previous = latest.get(key + (reviewer,))
        fields["decision_id"] = decision_id(fields, str(previous["decision_id"]) if previous is not None else "")
        fields.update(decided_at=now, sheet_name=result.sheet_name, sheet_sha256=result.sheet_sha256)
        latest[key + (reviewer,)] = fields
        rows.append(fields)
        result.counts[rec["decision"]] += 1
    return rows
