"""The matrix as one formatted workbook (openpyxl), with deterministic bytes, in bounded memory.

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

Large reviews: a sheet holds at most 1,048,576 rows (Excel's limit, header included). A table with more rows goes on
in numbered sheets with the same header, frozen pane and filter: 'Benefits', 'Benefits (2)', 'Benefits (3)', ...
in row order ('Matrix (2)' and 'Studies (2)' likewise past 1,048,575 studies). Excel accepts at most 65,530
hyperlinks a sheet: past that, a sheet's DOIs stay plain text (the first 65,530 are links). The workbook is written
with openpyxl's write-only mode, a chunk of rows at a time (Matrix.iter_*): each sheet goes to a temporary file as
it is made, and the zip entries are copied from those files, so memory does not grow with the review. Data rows are
serialised by _SheetWriter (the same bytes openpyxl writes, about ten times faster: see its docstring); the header,
styles, views, filters, links and everything else are openpyxl's. The review sheet (pipeline.sheets) is made in
memory with _table_sheet, the writer these sheets were made with before, whose output they reproduce byte for byte.

Determinism: openpyxl stamps docProps/core.xml with the save time and the zip entries with the current date;
the workbook's created/modified are set to a constant, the workbook is written without `save_workbook` (which
would overwrite `modified`), and every zip entry is written with a fixed date and fixed attributes (_FixedZip).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import re
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import pandas as pd

from pipeline.codebook import CATEGORIES
from pipeline.io import _FORMULA_PREFIXES, atomic_write, neutralise_cell
from pipeline.synth import FACETS, STUDY_COLUMNS, WIDE_STUDY_COLUMNS, Matrix

FIXED_TIME = dt.datetime(2000, 1, 1, 0, 0, 0)
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
MAX_CELL = 32_767  # Excel's limit on the characters in one cell
WIDE_TEXT = {"title": 48, "evidence": 70, "abstract": 90, "definition": 60, "authors": 30, "venue": 28,
             "countries": 24, "designs": 30, "lens": 24, "label": 34, "code_label": 34}
HEADER_FILL = "DDE4EE"
DOI_PREFIX = "https://doi.org/"
_ILLEGAL_XML_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses in a cell
LARGE_ENTRY_BYTES = 32 << 20  # zip entries larger than this are deflated faster (_fast_deflate)
CHUNK_ROWS = 10_000  # rows taken from the matrix at a time: their Python values are what a sheet holds in memory
MAX_SHEET_ROWS = 1_048_576  # Excel's limit on the rows of one sheet (header included)
MAX_SHEET_LINKS = 65_530  # Excel's limit on the hyperlinks of one sheet
STUDIES_SHEET_COLUMNS = STUDY_COLUMNS + ["year_band"]
ERROR_CODES = ("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A")  # openpyxl stores these as errors
CATEGORY_COLUMNS = ["study_id", "year", "title", "authors", "doi", "countries", "design", "code", "code_label",
                    "origin", "direction", "evidence", "method", "confidence", "decided_by", "assignment_id"]


def write_xlsx(
    matrix: Matrix, prisma: Mapping[str, Any] | None, path: Path, *,
    agreement: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the workbook to `path` atomically, streaming its sheets; identical inputs give identical bytes."""
    with atomic_write(path, mode="wb") as handle:
        write_workbook(handle, matrix, prisma, agreement=agreement)
    return path


def workbook_bytes(
    matrix: Matrix, prisma: Mapping[str, Any] | None, *, agreement: Mapping[str, pd.DataFrame] | None = None
) -> bytes:
    """The workbook write_xlsx writes, in memory (for small matrices and tests)."""
    buffer = io.BytesIO()
    write_workbook(buffer, matrix, prisma, agreement=agreement)
    return buffer.getvalue()


def write_workbook(
    handle: IO[bytes], matrix: Matrix, prisma: Mapping[str, Any] | None, *,
    agreement: Mapping[str, pd.DataFrame] | None = None,
) -> None:
    """Write the workbook into a seekable binary file. openpyxl's write-only mode streams every sheet to a
    temporary file as it is made, and the zip entries are copied from those files: memory stays bounded by one chunk
    of rows (CHUNK_ROWS) and Excel's per-sheet link limit, whatever the number of studies."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook(write_only=True)
    _about_sheet(wb, matrix, prisma, agreement)
    _stream_sheet(wb, "Summary", _Table.of(matrix.summary), heat_columns=["n_studies"])
    wide_columns = WIDE_STUDY_COLUMNS + list(matrix.codes["code"])
    _stream_sheet(wb, "Matrix", _Table(wide_columns, matrix.iter_wide(CHUNK_ROWS), matrix.n_studies), freeze="C2",
                  code_columns=list(matrix.codes["code"]))
    for category in _categories(matrix):
        columns = [c for c in CATEGORY_COLUMNS if c != "direction" or _directional(matrix, category)]
        rows = (chunk[columns] for chunk in matrix.iter_long(CHUNK_ROWS, category=category))
        _stream_sheet(wb, category.replace("_", " ").capitalize()[:31],
                      _Table(columns, rows, matrix.count_rows(category)))
    for facet, table in matrix.crosstabs.items():
        value_columns = [c for c in table.columns if c not in ("category", "code", "label", "origin")]
        _stream_sheet(wb, f"By {FACETS[facet][2].lower()}"[:31], _Table.of(table), heat_columns=value_columns,
                      freeze="E2")
    _stream_sheet(wb, "Studies", _Table(STUDIES_SHEET_COLUMNS, matrix.iter_studies(CHUNK_ROWS), matrix.n_studies))
    if prisma is not None:
        _stream_sheet(wb, "PRISMA", _Table.of(_prisma_rows(prisma)))
    if agreement is not None:
        _agreement_sheets(wb, agreement)
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "living-review"
    wb.properties.title = matrix.title
    try:
        ExcelWriter(wb, _FixedZip(handle, "w", zipfile.ZIP_DEFLATED)).save()  # save() closes the archive
    finally:
        _drop_row_files(wb)


def _drop_row_files(wb: Any) -> None:
    """Remove the data-row files of this workbook's sheets that were not spliced (an error stopped the save)."""
    for ws in wb.worksheets:
        writer = getattr(ws, "_writer", None)
        rows = _SPLICES.pop(str(writer.out), None) if writer is not None else None
        if rows is not None and os.path.exists(rows):
            os.unlink(rows)


class _FixedZip(zipfile.ZipFile):
    """A zip whose entries all carry one fixed date and the same attributes (openpyxl stamps them with the current
    time): entries given as data or copied from a file, in the order they are written."""

    def writestr(self, zinfo_or_arcname: Any, data: Any, compress_type: Any = None, compresslevel: Any = None) -> None:
        name = zinfo_or_arcname.filename if isinstance(zinfo_or_arcname, zipfile.ZipInfo) else zinfo_or_arcname
        super().writestr(_entry(name), data)

    def write(self, filename: Any, arcname: Any = None, compress_type: Any = None, compresslevel: Any = None) -> None:
        """Copy a file into the zip; a sheet whose data rows were written apart (_SheetWriter) gets them spliced in
        before its </sheetData>."""
        entry = _entry(arcname or Path(filename).name)
        rows = _SPLICES.pop(str(filename), None)
        if rows is None:
            entry.file_size = os.path.getsize(filename)  # decides on zip64 up front, as writestr does
            _fast_deflate(entry)
            with open(filename, "rb") as source, self.open(entry, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
            return
        sheet = Path(filename).read_bytes()  # small: the header row and the tail
        cut = sheet.index(b"</sheetData>")
        entry.file_size = len(sheet) + os.path.getsize(rows)
        _fast_deflate(entry)
        with open(rows, "rb") as source, self.open(entry, "w") as target:
            target.write(sheet[:cut])
            shutil.copyfileobj(source, target, 1 << 20)
            target.write(sheet[cut:])
        os.unlink(rows)


def _fast_deflate(entry: zipfile.ZipInfo) -> None:
    """A sheet of more than LARGE_ENTRY_BYTES is deflated at level 1: three times faster than the default level 6 on
    sheet XML, for a file about a fifth larger (a million studies: ~1 minute instead of ~3). Smaller entries keep
    the default, so a small workbook's bytes do not change."""
    if entry.file_size > LARGE_ENTRY_BYTES:
        entry._compresslevel = 1  # type: ignore[attr-defined]  # what ZipFile.write(compresslevel=) sets


def _entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.create_system = 3
    entry.external_attr = 0o644 << 16
    return entry


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip with constant entry dates and attributes, keeping the entry order (the review sheet's
    workbook, pipeline.sheets, is made in memory and fixed this way)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with _FixedZip(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
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
        ("Studies", matrix.n_studies),
        ("Studies with at least one code", matrix.n_coded_studies),
        ("Code assignments", matrix.n_assignments),
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
    _stream_sheet(wb, "About", _Table.of(pd.DataFrame(rows, columns=["item", "value"])),
                  widths={"item": 30, "value": 100})


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
        NO_DECISIONS,
        PERCENT_COLUMNS,
        RATIO_COLUMNS,
        STAT_COLUMNS,
        UNDEFINED,
        is_missing,
        shown_tables,
        title,
    )

    tables = shown_tables(agreement)
    if not tables:
        _stream_sheet(wb, "Agreement", _Table.of(pd.DataFrame({"agreement": [NO_DECISIONS]})),
                      widths={"agreement": 100})
        return
    formats = {c: "0.0%" for c in PERCENT_COLUMNS} | {c: "0.000" for c in RATIO_COLUMNS}
    for name, frame in tables.items():
        shown = frame.astype(object).copy()
        for column in [c for c in shown.columns if c in STAT_COLUMNS]:
            # An undefined statistic reads 'n/a', not an empty cell a reader might take for a missing figure.
            shown[column] = [UNDEFINED if is_missing(v) else v for v in shown[column]]
        _stream_sheet(wb, _sheet_title(title(name)), _Table.of(shown), number_formats=formats)


def _sheet_title(text: str) -> str:
    """A title Excel accepts: none of []:*?/\\ and at most 31 characters."""
    return (re.sub(r"[\[\]:*?/\\]", " ", text).strip() or "Agreement")[:31]


@dataclass
class _Table:
    """A table to write as a sheet: its columns, its rows as consecutive chunks, and how many rows there are."""

    columns: list[str]
    chunks: Iterable[pd.DataFrame]
    n_rows: int
    last_row: int | None = None  # rows up to the last one with a value (known for a table in memory)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> _Table:
        has_value = frame.notna().any(axis=1).to_numpy() if len(frame.columns) else []
        last = int(max((i + 1 for i, v in enumerate(has_value) if v), default=0))
        return cls(list(frame.columns), [frame], len(frame), last)


def _stream_sheet(
    wb: Any,
    title: str,
    table: _Table,
    *,
    freeze: str = "A2",
    heat_columns: list[str] | None = None,
    code_columns: list[str] | None = None,
    widths: dict[str, int] | None = None,
    number_formats: dict[str, str] | None = None,
) -> None:
    """Write a table as one sheet of a write-only workbook, or as several when it has more rows than a sheet holds:
    'Benefits', 'Benefits (2)', ... each with the header row, frozen and filterable like the first."""
    chunks = (chunk for chunk in table.chunks if len(chunk))
    first = next(chunks, None)
    head = first if first is not None else pd.DataFrame(columns=table.columns)
    codes = set(code_columns or [])
    column_widths = {c: (widths or {}).get(c) or _width(c, head[c] if c in head else pd.Series(dtype=object),
                                                        c in codes) for c in table.columns}
    sizes = [min(MAX_SHEET_ROWS - 1, table.n_rows - start) for start in range(0, table.n_rows, MAX_SHEET_ROWS - 1)]
    carry = [first] if first is not None else []
    for part, size in enumerate(sizes or [0], start=1):
        ws = wb.create_sheet(_part_title(title, part))
        last_row = table.last_row if len(sizes) <= 1 and table.last_row is not None else size
        _prepare(ws, table.columns, freeze, column_widths, last_row)
        writer = _SheetWriter(wb, ws, table.columns, number_formats or {})
        writer.header()
        for chunk in _take(chunks, carry, size):
            writer.rows(chunk)
        writer.close()
        if writer.row_number - 1 < size:
            raise RuntimeError(f"the {title!r} table has fewer rows than it said ({table.n_rows})")
        _finish_part(ws, table.columns, heat_columns or [], size)
        ws.close()  # writes the sheet's tail now, not at save: its hyperlinks need not wait in memory
        ws._hyperlinks.clear()  # written (their relationships are kept for the save)
    if carry or next(chunks, None) is not None:
        raise RuntimeError(f"the {title!r} table has more rows than it said ({table.n_rows})")


def _take(chunks: Iterator[pd.DataFrame], carry: list[pd.DataFrame], n: int) -> Iterator[pd.DataFrame]:
    """The next n rows of the chunks, the rows left in `carry` first, a chunk (or part of one) at a time. A chunk
    cut at the n-th row leaves its rest in `carry`: it goes on in the next sheet. Fewer rows when the chunks end."""
    while n > 0:
        chunk = carry.pop() if carry else next(chunks, None)
        if chunk is None:
            return
        if len(chunk) > n:
            carry.append(chunk.iloc[n:])
            chunk = chunk.iloc[:n]
        n -= len(chunk)
        yield chunk


def _part_title(title: str, part: int) -> str:
    if part == 1:
        return title
    suffix = f" ({part})"
    return title[: 31 - len(suffix)] + suffix


def _prepare(ws: Any, columns: list[str], freeze: str, widths: dict[str, float], last_row: int) -> None:
    """What a write-only sheet writes before its first row: the frozen pane, the column widths and the dimension
    (the range the sheet's cells cover, as openpyxl computes it for a sheet held in memory)."""
    from openpyxl.utils import get_column_letter

    ws.freeze_panes = freeze
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = widths[column]
    ref = f"A1:{get_column_letter(len(columns))}{last_row + 1}" if columns else "A1:A1"
    ws.calculate_dimension = lambda: ref  # read by openpyxl's sheet writer, which a write-only sheet lacks


def _finish_part(ws: Any, columns: list[str], heat: list[str], size: int) -> None:
    from openpyxl.formatting.rule import ColorScaleRule
    from openpyxl.utils import get_column_letter

    last = get_column_letter(max(1, len(columns)))
    ws.auto_filter.ref = f"A1:{last}{max(1, size + 1)}"
    for index, column in enumerate(columns, start=1):
        if column in heat and size:
            letter = get_column_letter(index)
            ws.conditional_formatting.add(
                f"{letter}2:{letter}{size + 1}",
                ColorScaleRule(start_type="num", start_value=0, start_color="FFFFFF",
                               end_type="max", end_color="2E75B6"),
            )


@dataclass
class _Column:
    """One column of a chunk of rows, its cells decided but not yet written: the style kind of each row's cell
    (None: no cell) and the function that writes the cells ('' for none) once the kinds have style ids."""

    kinds: list[str | None]
    render: Callable[[dict[str, int]], list[str]]


class _SheetWriter:
    """The rows of one write-only sheet, styled as _table_sheet styles them: a bold, filled header; wrapped text;
    DOI links (at most MAX_SHEET_LINKS, Excel's limit; later DOIs stay plain text); formula-looking text as
    quote-prefixed text; number formats by column.

    openpyxl writes the sheet and its header row. The data rows are serialised here, into a file of their own that
    _FixedZip splices into the sheet's XML: openpyxl spends ~20 us a cell (a Cell object, type checks, lxml calls),
    which is tens of minutes for a million studies. The XML is byte for byte what openpyxl writes for the same
    cells (tests/test_export_scale.py compares the two): inline strings, text escaped as its lxml writer escapes it
    (& < > and CR, non-ASCII as character references), numbers as '%.16g', the style ids and hyperlinks registered
    with the workbook in the order openpyxl would register them.

    A chunk of rows is serialised a column at a time (rows): a column's values mostly share one type, so the type
    is checked, the text cleaned and escaped and the style looked up once per column, not once per cell. A column's
    cells are made with _ROW for their row number, put in once per row. Styles are registered in the order a
    row-by-row writer would first use them (_register); hyperlinks are made in row order (only the DOI column has
    any)."""

    def __init__(self, wb: Any, ws: Any, columns: list[str], number_formats: dict[str, str]) -> None:
        from openpyxl.styles import Alignment
        from openpyxl.utils import get_column_letter

        self.wb = wb
        self.ws = ws
        self.columns = columns
        self.letters = [get_column_letter(i) for i in range(1, len(columns) + 1)]
        self.doi = columns.index("doi") if "doi" in columns else -1
        self.formats = {i: number_formats[c] for i, c in enumerate(columns) if c in number_formats}
        self.styles = _StyleCache(Alignment(wrap_text=True, vertical="top"))
        self.style_ids: dict[str, int] = {}
        self.links = 0
        self.row_number = 1
        self.out: Any = None

    def header(self) -> None:
        import tempfile

        from openpyxl.cell import Cell
        from openpyxl.styles import Alignment, Font, PatternFill

        cells = []
        for index, name in enumerate(self.columns, start=1):
            cell = Cell(self.ws, row=1, column=index, value=name)
            cell.font = Font(bold=True)
            cell.fill = PatternFill("solid", fgColor=HEADER_FILL)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            cells.append(cell)
        self.ws.append(cells)  # also makes the sheet's writer (and its temporary file)
        self.out = tempfile.NamedTemporaryFile("w", encoding="ascii", prefix="xlsx_rows.", suffix=".xml",
                                               delete=False)
        _SPLICES[self.ws._writer.out] = self.out.name

    def rows(self, chunk: pd.DataFrame) -> None:
        """Write the rows of a chunk (the next rows of the sheet). A row without a value has no row element, as a
        sheet held in memory writes it (nor has any row of a table without columns)."""
        start = self.row_number + 1
        self.row_number += len(chunk)
        if not chunk.shape[1]:
            return
        numbers = [str(n) for n in range(start, self.row_number + 1)]
        columns = [self._column(j, chunk.iloc[:, j].tolist(), numbers) for j in range(chunk.shape[1])]
        self._register([column.kinds for column in columns])
        cells = [column.render(self.style_ids) for column in columns]
        rows = map("".join, zip(*cells, strict=True))
        self.out.writelines([f'<row r="{number}">{row.replace(_ROW, number)}</row>'
                             for number, row in zip(numbers, rows, strict=True) if row])

    def close(self) -> None:
        if self.out is not None:
            self.out.close()

    def _column(self, index: int, values: list[Any], numbers: list[str]) -> _Column:
        """The cells of one column, by what its values are: text (the most cells), numbers, or anything else."""
        types = set(map(type, values))
        missing = types - {str}
        if str in types and missing <= _MISSING_TYPES and not _has_number(values, missing):
            return self._text_column(index, values, numbers, has_missing=bool(missing))
        if types <= _NUMBER_TYPES and index != self.doi:
            return self._number_column(index, values)
        return self._mixed_column(index, values, numbers)

    def _text_column(self, index: int, values: list[Any], numbers: list[str], *, has_missing: bool) -> _Column:
        """Text and missing values: what _mixed_column makes of them, faster. The column is cleaned and escaped as
        a whole (_clean_texts, _xml_texts); the few cells that are not plain inline strings (formula-looking text,
        error codes) are found by their first character."""
        texts, joined = _clean_texts([v if v.__class__ is str else "" for v in values] if has_missing else values)
        firsts = {text[:1] for text in texts}
        kinds: list[str | None] = ["plain"] * len(texts)
        if not firsts.isdisjoint(_FORMULA_FIRSTS):
            # Formula-looking text stays a string cell, flagged as typed text (Excel's leading apostrophe).
            kinds = ["text" if text.startswith(_FORMULA_PREFIXES) else "plain" for text in texts]
        errors: list[int] = []  # rows holding an error code ('#N/A'...), which openpyxl writes as an error
        if not firsts.isdisjoint(_ERROR_FIRSTS):
            errors = [row for row, text in enumerate(texts) if text in ERROR_CODES]
        if index == self.doi:
            for row, (text, number) in enumerate(zip(texts, numbers, strict=True)):
                if self.links >= MAX_SHEET_LINKS:
                    break
                if self._link(index, text, number):
                    kinds[row] = "link"
        if has_missing:
            kinds = [kind if value.__class__ is str else None for kind, value in zip(kinds, values, strict=True)]
        spaces = [_PRESERVE if text != text.strip() else "" for text in texts]
        escaped = _xml_texts(texts, joined)
        ref = self.letters[index] + _ROW
        return _Column(kinds, lambda ids: _text_cells(ref, kinds, escaped, spaces, errors, ids))

    def _number_column(self, index: int, values: list[Any]) -> _Column:
        """Numbers (not booleans) and missing values: one style kind for the column."""
        kind = "number:" + self.formats[index] if index in self.formats else "plain"
        texts = [None if value is None or value is pd.NA or value != value else _xml_value(value) for value in values]
        kinds: list[str | None] = [None if text is None else kind for text in texts]
        ref = self.letters[index] + _ROW
        return _Column(kinds, lambda ids: _number_cells(ref, texts, ids[kind]))

    def _mixed_column(self, index: int, values: list[Any], numbers: list[str]) -> _Column:
        """Any other column (types mixed, booleans, numpy scalars, a DOI column that is not text): cell by cell."""
        cells = [self._decide(index, value, number) for value, number in zip(values, numbers, strict=True)]
        kinds = [cell[0] if cell is not None else None for cell in cells]
        ref = self.letters[index] + _ROW
        return _Column(kinds, lambda ids: [_cell_xml(ref, ids[cell[0]], cell[1], cell[2]) if cell is not None else ""
                                           for cell in cells])

    def _decide(self, index: int, value: Any, number: str) -> tuple[str, str, Any] | None:
        """(style kind, data type, clean value) of one cell as _table_sheet decides them; None for no cell."""
        value = _excel_value(value)
        if value is None:
            return None  # an empty cell needs no cell
        kind_type = _data_type(value)
        if index == self.doi and self._link(index, value, number):
            return "link", kind_type, value
        if isinstance(value, str) and neutralise_cell(value) != value:
            # Formula-looking text stays a string cell, flagged as typed text (Excel's leading apostrophe).
            return "text", "s", value
        if index in self.formats and isinstance(value, int | float) and not isinstance(value, bool):
            return "number:" + self.formats[index], kind_type, value
        return "plain", kind_type, value

    def _link(self, index: int, value: Any, number: str) -> bool:
        """Make a cell of the DOI column a link to its DOI, if it is one and the sheet has links left."""
        if self.links >= MAX_SHEET_LINKS or not (url := _doi_url(value)):
            return False
        self.links += 1
        self.ws._hyperlinks.append(_hyperlink(f"{self.letters[index]}{number}", url))
        return True

    def _register(self, kinds: list[list[str | None]]) -> None:
        """Give the style kinds first used in this chunk their ids, in the order a row-by-row writer would first use
        them (by row, then by column): the workbook numbers styles, fonts and number formats as they come."""
        first: dict[str, tuple[int, int]] = {}
        for column, column_kinds in enumerate(kinds):
            for kind in set(column_kinds):
                if kind is not None and kind not in self.style_ids:
                    place = (column_kinds.index(kind), column)
                    first[kind] = min(first.get(kind, place), place)
        for kind in sorted(first, key=first.__getitem__):
            self._style_id(kind)

    def _style_id(self, kind: str) -> int:
        found = self.style_ids.get(kind)
        if found is None:
            from openpyxl.cell import Cell

            cell = Cell(self.ws)
            self.styles.apply(cell, kind)  # registers its font, alignment, number format with the workbook
            found = self.style_ids[kind] = self.wb._cell_styles.add(cell._style)
        return found


_SPLICES: dict[str, str] = {}  # openpyxl's temporary sheet file -> the file of its data rows (see _FixedZip)
_ROW = "\x01"  # a cell's row number until its row is written (_SheetWriter.rows); no clean text holds it
_PRESERVE = ' xml:space="preserve"'  # on text with leading or trailing whitespace, as openpyxl writes it
_MISSING_TYPES = {type(None), type(pd.NA), float}  # float: NaN (_has_number tells NaN from numbers)
_NUMBER_TYPES = {int, float, type(None), type(pd.NA)}
_FORMULA_FIRSTS = frozenset(prefix[:1] for prefix in _FORMULA_PREFIXES)
_ERROR_FIRSTS = frozenset(code[:1] for code in ERROR_CODES)
_ILLEGAL_BYTES = bytes(b for b in range(128) if _ILLEGAL_XML_RE.match(chr(b)))
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;"))  # in this order: & first


def _has_number(values: list[Any], types: set[type]) -> bool:
    """Whether any value is a float other than NaN (the other types in `types` are missing values)."""
    return float in types and any(v == v for v in values if v.__class__ is float)


def _clean_texts(texts: list[str]) -> tuple[list[str], str]:
    """_excel_value of each text (no control character XML forbids, at most MAX_CELL characters), and the texts
    joined by newlines. The whole column is checked at once (hardly any needs cleaning): its ASCII characters, as
    bytes, lose none to translate(delete=_ILLEGAL_BYTES), which is several times faster than _ILLEGAL_XML_RE."""
    joined = "\n".join(texts)
    ascii_bytes = joined.encode("ascii", "ignore")  # the characters XML forbids are all ASCII
    legal = len(ascii_bytes.translate(None, _ILLEGAL_BYTES)) == len(ascii_bytes)
    if legal and max(map(len, texts), default=0) <= MAX_CELL:
        return texts, joined
    texts = [_excel_value(text) for text in texts]
    return texts, "\n".join(texts)


def _xml_texts(texts: list[str], joined: str) -> list[str]:
    """_xml_text of each text (`joined`: the texts joined by newlines). The column is searched once for each
    character to escape: a cell pays only for the characters its column holds (most columns have no & < > or CR,
    and are ASCII)."""
    for char, entity in _ESCAPES:
        if char in joined:
            texts = [text.replace(char, entity) for text in texts]
    if joined.isascii():
        return texts
    return [text if text.isascii() else text.encode("ascii", "xmlcharrefreplace").decode("ascii") for text in texts]


def _text_cells(
    ref: str, kinds: list[str | None], texts: list[str], spaces: list[str], errors: list[int], ids: dict[str, int]
) -> list[str]:
    """The cells of a text column (_SheetWriter._text_column), from its escaped texts: inline strings, error codes
    as errors, missing values as no cell."""
    heads = {kind: f'<c r="{ref}" s="{style_id}" t="inlineStr">' for kind, style_id in ids.items()}
    empty = {kind: head + "</c>" for kind, head in heads.items()}  # one string for all the empty cells of a kind
    cells = [
        "" if kind is None else f"{heads[kind]}<is><t{space}>{text}</t></is></c>" if text else empty[kind]
        for kind, text, space in zip(kinds, texts, spaces, strict=True)
    ]
    for row in errors:
        cells[row] = f'<c r="{ref}" s="{ids["plain"]}" t="e"><v>{texts[row]}</v></c>'
    return cells


def _number_cells(ref: str, texts: list[str | None], style_id: int) -> list[str]:
    """The cells of a number column (_SheetWriter._number_column), from its numbers as text (None: no cell)."""
    head = f'<c r="{ref}" s="{style_id}" t="n"><v>'
    return [f"{head}{text}</v></c>" if text is not None else "" for text in texts]


def _hyperlink(ref: str, target: str) -> Any:
    """openpyxl's Hyperlink(ref=ref, target=target), four times faster: a copy of one made by its constructor, with
    the two strings changed (the constructor checks six attributes through descriptors: ~2 us a link, a second for
    the 460,000 links of a 100,000-study workbook)."""
    template = _link_template()
    link = object.__new__(template.__class__)
    link.__dict__.update(template.__dict__, ref=ref, target=target)
    return link


@functools.cache
def _link_template() -> Any:
    from openpyxl.worksheet.hyperlink import Hyperlink

    return Hyperlink(ref="A1", target="")


def _cell_xml(ref: str, style_id: int, kind_type: str, value: Any) -> str:
    """One cell as openpyxl writes it, from its clean value and data type (_data_type; 's' for neutralised text)."""
    head = f'<c r="{ref}" s="{style_id}" t="'
    if kind_type == "s":
        if value == "":
            return head + 'inlineStr"></c>'
        space = _PRESERVE if value != value.strip() else ""
        return f'{head}inlineStr"><is><t{space}>{_xml_text(value)}</t></is></c>'
    return f'{head}{kind_type}"><v>{_xml_value(value)}</v></c>'


def _xml_text(value: str) -> str:
    """Text as openpyxl's lxml writer puts it in a sheet: & < > and CR escaped, ASCII output with any other
    character as a decimal character reference."""
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    return text if text.isascii() else text.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _xml_value(value: Any) -> str:
    """A number, boolean or error code as openpyxl writes it (compat.safe_string)."""
    if isinstance(value, str):
        return _xml_text(value)
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return ""
    return format(value, ".16g")  # openpyxl: "%.16g" % value


def _data_type(value: Any) -> str:
    """The type openpyxl gives a clean value (Cell._bind_value): b, n, f (text starting with '=', made 's' by the
    caller), e (an error code) or s."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, int | float):
        return "n"
    if len(value) > 1 and value.startswith("="):
        return "f"
    return "e" if value in ERROR_CODES else "s"


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
    """A frame as a sheet of a workbook held in memory (pipeline.sheets' review sheet, which adds data validation).
    _stream_sheet writes the same bytes for the matrix workbook without holding the sheet."""
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
    number_formats = number_formats or {}
    formats = {i: number_formats[c] for i, c in enumerate(columns, start=1) if c in number_formats}
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
