"""The matrix as one formatted workbook (openpyxl), with deterministic bytes.

Sheets: About, Summary (one row per code), Matrix (studies x codes), one sheet per category (Reasons, Facilitators,
Barriers, Benefits: one row per study and code), one crosstab sheet per facet (By country, By design, By year,
By lens: distinct studies, with a colour scale), Studies, PRISMA, and, when agreement tables are given, one sheet
per agreement table (Reviewer vs reviewer, All reviewers, Machine vs reviewers, Rule precision, Code precision) or a
single 'Agreement' sheet saying there are no reviewer decisions yet.

Who decided each code shows everywhere a code does: the category sheets carry `method` and `decided_by`, and each
Matrix cell ends with '(reviewer ana, 1.00)' or '(rule, 0.85)'.

Every sheet has a frozen, filterable header row, wrapped text, set column widths and DOI hyperlinks.
Text that a spreadsheet would run as a formula (starting with = + - @, tab or CR) is stored as a string cell
with Excel's quote-prefix flag: it shows as typed and is never evaluated, even after an edit.

Determinism: openpyxl stamps docProps/core.xml with the save time and the zip entries with the current date;
the workbook's created/modified are set to a constant, the workbook is written without `save_workbook` (which
would overwrite `modified`), and the zip is rewritten with fixed entry dates and attributes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from pipeline.codebook import CATEGORIES
from pipeline.io import atomic_write, neutralise_cell
from pipeline.synth import FACETS, Matrix

FIXED_TIME = dt.datetime(2000, 1, 1, 0, 0, 0)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
MAX_CELL = 32_767  # Excel's limit on the characters in one cell
WIDE_TEXT = {"title": 48, "evidence": 70, "abstract": 90, "definition": 60, "authors": 30, "venue": 28,
             "countries": 24, "designs": 30, "lens": 24, "label": 34, "code_label": 34}
HEADER_FILL = "DDE4EE"
DOI_PREFIX = "https://doi.org/"
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses in a cell
CATEGORY_COLUMNS = ["study_id", "year", "title", "authors", "doi", "countries", "design", "code", "code_label",
                    "origin", "direction", "evidence", "method", "confidence", "decided_by", "assignment_id"]


def write_xlsx(
    matrix: Matrix, prisma: Mapping[str, Any] | None, path: Path, *,
    agreement: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the workbook to `path` atomically; identical inputs give identical bytes."""
    data = workbook_bytes(matrix, prisma, agreement=agreement)
    with atomic_write(path, mode="wb") as handle:
        handle.write(data)
    return path


def workbook_bytes(
    matrix: Matrix, prisma: Mapping[str, Any] | None, *, agreement: Mapping[str, pd.DataFrame] | None = None
) -> bytes:
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    wb.remove(wb.active)
    _about_sheet(wb, matrix, prisma, agreement)
    _table_sheet(wb, "Summary", matrix.summary, heat_columns=["n_studies"])
    _table_sheet(wb, "Matrix", matrix.wide, freeze="C2", code_columns=list(matrix.codes["code"]))
    for category in _categories(matrix):
        rows = matrix.long[matrix.long["category"] == category]
        columns = [c for c in CATEGORY_COLUMNS if c != "direction" or _directional(matrix, category)]
        _table_sheet(wb, category.replace("_", " ").capitalize()[:31], rows[columns])
    for facet, table in matrix.crosstabs.items():
        value_columns = [c for c in table.columns if c not in ("category", "code", "label", "origin")]
        _table_sheet(wb, f"By {FACETS[facet][2].lower()}"[:31], table, heat_columns=value_columns, freeze="E2")
    _table_sheet(wb, "Studies", matrix.studies)
    if prisma is not None:
        _table_sheet(wb, "PRISMA", _prisma_rows(prisma))
    if agreement is not None:
        _agreement_sheets(wb, agreement)
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "living-review"
    wb.properties.title = matrix.title
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    return _fixed_zip(buffer.getvalue())


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite the zip with constant entry dates and attributes, keeping the entry order."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.create_system = 3
            entry.external_attr = 0o644 << 16
            target.writestr(entry, source.read(info.filename))
    return out.getvalue()


# ---------------------------------------------------------------- sheets


def _categories(matrix: Matrix) -> list[str]:
    present = list(dict.fromkeys(matrix.codes["category"]))
    return [c for c in CATEGORIES if c in present] + [c for c in present if c not in CATEGORIES]


def _directional(matrix: Matrix, category: str) -> bool:
    flags = matrix.codes.loc[matrix.codes["category"] == category, "directional"]
    return bool(flags.any())


def _about_sheet(
    wb: Any, matrix: Matrix, prisma: Mapping[str, Any] | None, agreement: Mapping[str, pd.DataFrame] | None
) -> None:
    origins = matrix.codes["origin"].value_counts()
    rows = [
        ("Review codebook", matrix.title),
        ("Codebook version", matrix.version),
        ("Studies", len(matrix.studies)),
        ("Studies with at least one code", int(matrix.long["study_id"].nunique())),
        ("Code assignments", len(matrix.long)),
        ("Codes: deductive / inductive", f"{int(origins.get('deductive', 0))} / {int(origins.get('inductive', 0))}"),
        ("Direction (benefits)", "supporting: found; contrasting: not found, no impact or negative; "
                                 "mixed: conditional or both"),
        ("Method", "rule: the codebook's rules matched the quote; topic: suggested by a topic model; "
                   "reviewer: decided by the named reviewer"),
        ("Decided by", "machine, or the name of the reviewer whose decision is in force for the code"),
        ("Confidence", "0 to 1: how sure the rule or model is; 1 for a reviewer's decision"),
        ("Matrix cells", "[direction] quote (who coded it, confidence); several quotes are separated by ' | '"),
        ("Crosstabs", "distinct studies per code and facet value; a study naming two countries counts in both; "
                      "0 marks an evidence gap"),
    ]
    if prisma is not None:
        rows.append(("PRISMA", "counts of the flow from identification to inclusion (sheet PRISMA)"))
    if agreement is not None:
        rows.extend(_agreement_about(agreement))
    _table_sheet(wb, "About", pd.DataFrame(rows, columns=["item", "value"]), widths={"item": 30, "value": 100})


def _prisma_rows(prisma: Mapping[str, Any]) -> pd.DataFrame:
    from pipeline.export.prisma import check_prisma

    counts = check_prisma(prisma)
    rows: list[tuple[str, str, int]] = [("identification", "records identified", counts["identified"])]
    rows += [("identification", f"  from {name}", n) for name, n in counts["identified_by_source"].items()]
    rows.append(("identification", "duplicate records removed", counts["duplicates_removed"]))
    rows += [("identification", f"  removed: {why}", n) for why, n in counts["removed_before_screening"].items()]
    rows.append(("screening", "records screened", counts["screened"]))
    rows += [("screening", f"  excluded: {why}", n) for why, n in counts["excluded"].items()]
    rows.append(("included", "studies included", counts["included"]))
    if "reports_included" in counts:
        rows.append(("included", "reports of included studies", counts["reports_included"]))
    return pd.DataFrame(rows, columns=["stage", "count of", "n"])


def _agreement_about(agreement: Mapping[str, pd.DataFrame]) -> list[tuple[str, str]]:
    from pipeline.export.agreement_view import NO_DECISIONS, UNDEFINED_NOTE, note, shown_tables, title

    tables = shown_tables(agreement)
    if not tables:
        return [("Agreement", NO_DECISIONS + " (sheet Agreement)")]
    rows = [("Agreement", UNDEFINED_NOTE)]
    return rows + [(f"  {title(name)}", note(name) or f"sheet {title(name)}") for name in tables]


def _agreement_sheets(wb: Any, agreement: Mapping[str, pd.DataFrame]) -> None:
    """One sheet per agreement table with decisions in it; otherwise one 'Agreement' sheet saying there are none."""
    from pipeline.export.agreement_view import (
        NO_DECISIONS, PERCENT_COLUMNS, RATIO_COLUMNS, STAT_COLUMNS, UNDEFINED, is_missing, shown_tables, title,
    )

    tables = shown_tables(agreement)
    if not tables:
        _table_sheet(wb, "Agreement", pd.DataFrame({"agreement": [NO_DECISIONS]}), widths={"agreement": 100})
        return
    formats = {c: "0.0%" for c in PERCENT_COLUMNS} | {c: "0.000" for c in RATIO_COLUMNS}
    for name, frame in tables.items():
        shown = frame.astype(object).copy()
        for column in [c for c in shown.columns if c in STAT_COLUMNS]:
            # An undefined statistic reads 'n/a', not an empty cell a reader might take for a missing figure.
            shown[column] = [UNDEFINED if is_missing(v) else v for v in shown[column]]
        _table_sheet(wb, _sheet_title(title(name)), shown, number_formats=formats)


def _sheet_title(text: str) -> str:
    """A title Excel accepts: none of []:*?/\\ and at most 31 characters."""
    return (re.sub(r"[\[\]:*?/\\]", " ", text).strip() or "Agreement")[:31]


def _table_sheet(
    wb: Any,
    title: str,
    frame: pd.DataFrame,
    *,
    freeze: str = "A2",
    heat_columns: list[str] | None = None,
    code_columns: list[str] | None = None,
    widths: dict[str, int] | None = None,
    number_formats: dict[str, str] | None = None,
) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    ws = wb.create_sheet(title)
    columns = list(frame.columns)
    ws.append(columns)
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    styles = _StyleCache(Alignment(wrap_text=True, vertical="top"))
    doi_column = columns.index("doi") + 1 if "doi" in columns else 0
    formats = {i: number_formats[c] for i, c in enumerate(columns, start=1) if c in (number_formats or {})}
    # Rows are counted here: ws.max_row scans every cell, which makes a large sheet quadratic.
    for row_number, values in enumerate(frame.itertuples(index=False, name=None), start=2):
        for column_number, value in enumerate(values, start=1):
            value = _excel_value(value)
            if value is None:
                continue  # an empty cell needs no cell (most of the wide matrix is empty)
            cell = ws.cell(row=row_number, column=column_number, value=value)
            if column_number == doi_column and _doi_url(value):
                styles.apply(cell, "link")
                cell.hyperlink = _doi_url(value)
            elif isinstance(value, str) and neutralise_cell(value) != value:
                # Formula-looking text stays a string cell, flagged as typed text (Excel's leading apostrophe).
                styles.apply(cell, "text")
                cell.data_type = "s"
            elif column_number in formats and isinstance(value, int | float) and not isinstance(value, bool):
                styles.apply(cell, "number:" + formats[column_number])
            else:
                styles.apply(cell, "plain")
    _finish(ws, frame, freeze, heat_columns or [], set(code_columns or []), widths or {})


class _StyleCache:
    """Apply one of a few cell styles fast: the first cell of each kind is styled through openpyxl's API, later
    cells copy its style array (setting a style object per cell costs a registry lookup: minutes on big sheets)."""

    def __init__(self, wrap: Any) -> None:
        self.wrap = wrap
        self.arrays: dict[str, Any] = {}

    def apply(self, cell: Any, kind: str) -> None:
        from copy import copy

        if kind in self.arrays:
            cell._style = copy(self.arrays[kind])
            return
        from openpyxl.styles import Font

        cell.alignment = self.wrap
        if kind == "link":
            cell.font = Font(color="0563C1", underline="single")
        elif kind == "text":
            cell.quotePrefix = True
        elif kind.startswith("number:"):
            cell.number_format = kind.removeprefix("number:")
        self.arrays[kind] = copy(cell._style)


def _finish(
    ws: Any, frame: pd.DataFrame, freeze: str, heat: list[str], codes: set[str], widths: dict[str, int]
) -> None:
    from openpyxl.formatting.rule import ColorScaleRule
    from openpyxl.utils import get_column_letter

    ws.freeze_panes = freeze
    last = get_column_letter(max(1, len(frame.columns)))
    ws.auto_filter.ref = f"A1:{last}{max(1, len(frame) + 1)}"
    for index, column in enumerate(frame.columns, start=1):
        letter = get_column_letter(index)
        ws.column_dimensions[letter].width = widths.get(column) or _width(column, frame[column], column in codes)
        if column in heat and len(frame):
            ws.conditional_formatting.add(
                f"{letter}2:{letter}{len(frame) + 1}",
                ColorScaleRule(start_type="num", start_value=0, start_color="FFFFFF",
                               end_type="max", end_color="2E75B6"),
            )


def _width(column: str, values: pd.Series, is_code: bool) -> float:
    if is_code:
        return 40
    if column in WIDE_TEXT:
        return WIDE_TEXT[column]
    longest = max([len(str(column))] + [len(str(v)) for v in values.head(500) if not _missing(v)])
    return min(max(8, longest + 2), 40)


# ---------------------------------------------------------------- cells


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))


def _excel_value(value: Any) -> Any:
    """NA -> empty; numpy scalars -> Python; text without the control characters XML forbids, cut to Excel's limit."""
    if _missing(value):
        return None
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, bool | int | float):
        return value
    text = _ILLEGAL_XML_RE.sub("", str(value))
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _doi_url(value: Any) -> str:
    """https://doi.org/<doi> for a DOI (bare, doi:, or a doi.org URL); '' for anything else."""
    doi = str(value).strip()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix):]
    return DOI_PREFIX + quote(doi, safe="/:;()._-") if doi.startswith("10.") else ""
