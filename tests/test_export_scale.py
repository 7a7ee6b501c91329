"""Exports at scale (issue 9): the matrix is built without copying its inputs and streamed in chunks, the XLSX
continues a sheet past Excel's row limit, the HTML map of a large review embeds a bounded sample with exact counts,
and build_studies takes single-record groups column by column. Each faster path is checked against the plain one
it replaces, on real data; figures for 100k and 1M studies are in benchmarks/export_bench.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline.codebook import load_codebook
from pipeline.export import write_exports
from pipeline.export import xlsx_export as xlsx
from pipeline.export.csv_export import write_csv_chunks
from pipeline.export.html_map import map_data, render_html
from pipeline.io import write_csv
from pipeline.synth import (
    ASSIGNMENT_COLUMNS,
    FACETS,
    LONG_COLUMNS,
    METHODS,
    STUDY_COLUMNS,
    WIDE_STUDY_COLUMNS,
    build_matrix,
    cell_text,
    crosstab_column,
    facet_labels,
    split_list,
    year_band,
)
from tests.test_browser import chromium, page  # noqa: F401  (fixtures: Chromium over DevTools)
from tests.test_export import FORMULA_TITLE, XSS_QUOTE, XSS_TITLE, hostile_frames, sheet_frames
from tests.test_synth import CODEBOOK, reviewer_row

REPO = Path(__file__).resolve().parents[1]
EXPORTS = REPO.parent / "shared" / "data" / "exports"


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(CODEBOOK)


def messy_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hostile seed frames and the review-sheet frames together, made awkward: missing values, text in object
    columns, (study, code) pairs with several quotes (ties on confidence, on quote, on everything), a code the
    codebook lacks, reviewer names on machine codes, a study listing a country twice, shuffled rows."""
    assignments, studies = hostile_frames()
    sheet_assignments, sheet_studies = sheet_frames()
    sheet_studies["study_id"] = "sheet-" + sheet_studies["study_id"]  # the same seeds, as other studies
    sheet_assignments["study_id"] = "sheet-" + sheet_assignments["study_id"]
    sheet_studies["year"] = pd.to_numeric(sheet_studies["year"], errors="coerce").astype("Int64")
    studies = pd.concat([studies, sheet_studies], ignore_index=True).astype(object)
    assignments = pd.concat([assignments, sheet_assignments.drop(columns=["rule"])], ignore_index=True).astype(object)
    studies.loc[studies.index[::4], "title"] = np.nan
    studies.loc[studies.index[1], "countries"] = " ; England;;Wales ; England"
    studies.loc[studies.index[2], "design"] = "  qualitative "
    studies.loc[studies.index[3], "lens"] = "code; total"
    ties = assignments.sample(12, random_state=3).copy()
    ties["assignment_id"] = ties["assignment_id"] + "-again"
    ties.loc[ties.index[::3], "evidence"] = "  "
    extra = pd.DataFrame([
        reviewer_row("seed004", "barriers.ofsted_fear", "fear of inspection"),
        reviewer_row("seed001", "benefits.equity", "=SUM(A1)", direction="mixed", name="ben"),
    ])
    assignments = pd.concat([assignments, ties, ties.head(3), extra], ignore_index=True)
    assignments.loc[assignments.index[::7], "confidence"] = np.nan
    assignments.loc[assignments.index[::9], "decided_by"] = "ben"
    assignments.loc[assignments.index[::11], "direction"] = np.nan
    return assignments.sample(frac=1, random_state=5), studies.sample(frac=1, random_state=6)


# ---------------------------------------------------------------- the matrix against a row-by-row oracle
# The oracle is the matrix as it was computed before issue 9: one Python row at a time over whole frames.


def _oracle_studies(studies: pd.DataFrame) -> pd.DataFrame:
    frame = studies.copy()
    frame["study_id"] = frame["study_id"].astype(str)
    for column in STUDY_COLUMNS[1:]:
        if column not in frame.columns:
            frame[column] = 1 if column == "records" else (pd.NA if column == "year" else "")
    text_columns = [c for c in STUDY_COLUMNS if c not in ("year", "records")]
    frame[text_columns] = frame[text_columns].fillna("").astype(str)
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce").astype("Int64")
    frame["records"] = pd.to_numeric(frame["records"], errors="coerce").fillna(1).astype("int64")
    frame["year_band"] = frame["year"].map(year_band)
    frame["_title"] = frame["title"].str.casefold()
    frame = frame.sort_values(["year", "_title", "study_id"], na_position="last", kind="stable")
    return frame.drop(columns="_title")[STUDY_COLUMNS + ["year_band"]].reset_index(drop=True)


def _oracle_long(assignments: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    frame = assignments.copy()
    for column, default in (("direction", ""), ("decided_by", "machine"), ("assignment_id", ""), ("category", "")):
        if column not in frame.columns:
            frame[column] = default
    text_columns = [c for c in ASSIGNMENT_COLUMNS if c != "confidence"]
    frame[text_columns] = frame[text_columns].fillna("").astype(str)
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce").astype("float64")
    frame["category"] = frame["code"].map(dict(zip(codes["code"], codes["category"], strict=True)))
    meta = studies[["study_id", "title", "authors", "year", "doi", "countries", "design", "lens"]]
    code_meta = codes[["code", "label", "origin"]].rename(columns={"label": "code_label"})
    frame = frame[ASSIGNMENT_COLUMNS].merge(meta, on="study_id", how="left").merge(code_meta, on="code", how="left")
    frame["_s"] = frame["study_id"].map({sid: i for i, sid in enumerate(studies["study_id"])})
    frame["_c"] = frame["code"].map({cid: i for i, cid in enumerate(codes["code"])})
    frame = frame.sort_values(["_s", "_c", "confidence", "evidence", "assignment_id"],
                              ascending=[True, True, False, True, True], kind="stable")
    frame["year"] = frame["year"].astype("Int64")
    return frame[LONG_COLUMNS].reset_index(drop=True)


def _oracle_wide(long: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    frame = studies[[c for c in WIDE_STUDY_COLUMNS if c != "n_codes"]].copy()
    cells: dict[tuple[str, str], list[str]] = {}
    for row in long.to_dict("records"):
        cells.setdefault((row["study_id"], row["code"]), []).append(cell_text(row))
    frame["n_codes"] = frame["study_id"].map(long.groupby("study_id")["code"].nunique()).fillna(0).astype("int64")
    columns = {code: [" | ".join(cells.get((sid, code), [])) for sid in frame["study_id"]] for code in codes["code"]}
    return pd.concat([frame.reset_index(drop=True), pd.DataFrame(columns, dtype=object)], axis=1)


def _oracle_crosstab(long: pd.DataFrame, studies: pd.DataFrame, codes: pd.DataFrame, facet: str) -> pd.DataFrame:
    by_study = {s["study_id"]: facet_labels(s, facet) for s in studies.to_dict("records")}
    counts: dict[tuple[str, str], set[str]] = {}
    for study_id, code in long[["study_id", "code"]].drop_duplicates().itertuples(index=False):
        for value in by_study[study_id]:
            counts.setdefault((code, value), set()).add(study_id)
    values = [v for labels in by_study.values() for v in labels]
    frequency = pd.Series(values, dtype=object).value_counts()
    return pd.DataFrame({
        value: [len(counts.get((code, value), ())) for code in codes["code"]] for value in frequency.index
    })


def test_matrix_matches_the_row_by_row_oracle(codebook):
    assignments, studies = messy_frames()
    matrix = build_matrix(assignments, studies, codebook)
    expected_studies = _oracle_studies(studies)
    long = _oracle_long(assignments, expected_studies, matrix.codes)
    pd.testing.assert_frame_equal(matrix.studies, expected_studies)
    pd.testing.assert_frame_equal(matrix.long, long)
    pd.testing.assert_frame_equal(matrix.wide, _oracle_wide(long, expected_studies, matrix.codes))
    assert matrix.wide.loc[matrix.wide["study_id"] == "seed004", "barriers.ofsted_fear"].item().count(" | ") == 0
    assert (long.groupby(["study_id", "code"]).size() > 1).sum() >= 9  # several quotes share a cell
    for facet in FACETS:
        oracle = _oracle_crosstab(long, expected_studies, matrix.codes, facet)
        table = matrix.crosstabs[facet]
        assert set(oracle.columns) == set(matrix.facet_values[facet])
        for value in oracle.columns:
            assert table[crosstab_column(facet, value)].tolist() == oracle[value].tolist(), (facet, value)
    summary = matrix.summary.set_index("code")
    for code, rows in long.groupby("code"):
        if code not in summary.index:
            continue
        per_study = rows.drop_duplicates("study_id")
        assert summary.loc[code, "n_studies"] == len(per_study)
        for method in METHODS:
            assert summary.loc[code, f"by_{method}"] == rows.loc[rows["method"] == method, "study_id"].nunique()
        countries = pd.Series([c for v in per_study["countries"] for c in split_list(v)], dtype=object)
        if len(countries):
            first = sorted(countries.value_counts().items(), key=lambda item: (-item[1], item[0]))[0][0]
            assert summary.loc[code, "countries"].startswith(f"{first} (")


def test_input_order_and_chunking_do_not_change_the_matrix(codebook):
    assignments, studies = messy_frames()
    matrix = build_matrix(assignments, studies, codebook)
    again = build_matrix(assignments.sample(frac=1, random_state=8), studies.sample(frac=1, random_state=9), codebook)
    pd.testing.assert_frame_equal(again.long, matrix.long)
    pd.testing.assert_frame_equal(again.wide, matrix.wide)
    pd.testing.assert_frame_equal(again.summary, matrix.summary)
    for size in (1, 4, 1000):
        pd.testing.assert_frame_equal(pd.concat(matrix.iter_long(size), ignore_index=True), matrix.long)
        pd.testing.assert_frame_equal(pd.concat(matrix.iter_wide(size), ignore_index=True), matrix.wide)
        pd.testing.assert_frame_equal(pd.concat(matrix.iter_studies(size), ignore_index=True), matrix.studies)
    for category in ("reasons", "benefits"):
        rows = pd.concat(matrix.iter_long(5, category=category), ignore_index=True)
        pd.testing.assert_frame_equal(rows, matrix.long[matrix.long["category"] == category].reset_index(drop=True))
        assert matrix.count_rows(category) == len(rows)
    assert (matrix.n_studies, matrix.n_assignments) == (len(matrix.studies), len(matrix.long))
    assert matrix.n_coded_studies == matrix.long["study_id"].nunique()


def test_streamed_csv_is_the_whole_frame_csv(codebook, tmp_path):
    matrix = build_matrix(*messy_frames(), codebook)
    for name, whole, chunks in (("wide", matrix.wide, matrix.iter_wide(3)), ("long", matrix.long, matrix.iter_long(7)),
                                ("studies", matrix.studies, matrix.iter_studies(2))):
        write_csv(whole, tmp_path / f"{name}_whole.csv")
        write_csv_chunks(chunks, tmp_path / f"{name}_chunks.csv")
        assert (tmp_path / f"{name}_chunks.csv").read_bytes() == (tmp_path / f"{name}_whole.csv").read_bytes()
    long = (tmp_path / "long_chunks.csv").read_text(encoding="utf-8-sig")
    assert "'=SUM(A1)" in long and "'" + FORMULA_TITLE in long.replace('""', '"')


# ---------------------------------------------------------------- XLSX


def _in_memory_workbook(matrix, prisma, agreement) -> bytes:
    """The workbook as the in-memory writer (_table_sheet, which pipeline.sheets uses) makes it."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    wb = Workbook()
    wb.remove(wb.active)
    real = xlsx._stream_sheet

    def in_memory(wb: Any, title: str, table: Any, **options: Any) -> None:
        frame = pd.concat(list(table.chunks), ignore_index=True) if table.n_rows else pd.DataFrame(
            columns=table.columns)
        xlsx._table_sheet(wb, title, frame[table.columns], **options)

    xlsx._stream_sheet = in_memory
    try:
        xlsx._about_sheet(wb, matrix, prisma, agreement)
        in_memory(wb, "Summary", xlsx._Table.of(matrix.summary), heat_columns=["n_studies"])
        in_memory(wb, "Matrix", xlsx._Table.of(matrix.wide), freeze="C2", code_columns=list(matrix.codes["code"]))
        for category in xlsx._categories(matrix):
            columns = [c for c in xlsx.CATEGORY_COLUMNS if c != "direction" or xlsx._directional(matrix, category)]
            rows = matrix.long[matrix.long["category"] == category][columns]
            in_memory(wb, category.capitalize(), xlsx._Table.of(rows))
        for facet, table in matrix.crosstabs.items():
            heat = [c for c in table.columns if c not in ("category", "code", "label", "origin")]
            in_memory(wb, f"By {FACETS[facet][2].lower()}"[:31], xlsx._Table.of(table), heat_columns=heat, freeze="E2")
        in_memory(wb, "Studies", xlsx._Table.of(matrix.studies))
        in_memory(wb, "PRISMA", xlsx._Table.of(xlsx._prisma_rows(prisma)))
        xlsx._agreement_sheets(wb, agreement)
    finally:
        xlsx._stream_sheet = real
    wb.properties.created = wb.properties.modified = xlsx.FIXED_TIME
    wb.properties.creator, wb.properties.title = "living-review", matrix.title
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(wb, archive).save()
    return xlsx._fixed_zip(buffer.getvalue())


def test_streamed_workbook_is_byte_identical_to_the_in_memory_one(codebook):
    from pipeline.agreement import agreement_report
    from pipeline.export import prisma_counts
    from tests.test_export import hand_ledger

    assignments, studies = messy_frames()
    matrix = build_matrix(assignments, studies, codebook)
    prisma = prisma_counts(studies, assignments, identified_by_source={"seeds": 60})
    sheet_assignments, _ = sheet_frames()
    agreement = agreement_report(hand_ledger(sheet_assignments), sheet_assignments)
    assert xlsx.workbook_bytes(matrix, prisma, agreement=agreement) == _in_memory_workbook(matrix, prisma, agreement)


def odd_frame() -> pd.DataFrame:
    """Every kind of value a sheet's column can hold, in columns of every dtype the writer meets. The first row
    uses the plain, link and number styles and a later row the quote-prefixed one, so that a writer registering
    styles column by column would number them differently from openpyxl (row by row)."""
    text = ["plain", "", "  padded ", "=SUM(1)", "+1", "-x", "@a", "\tTab", "\rCR", "a\r\nb & <c> \"d\" 'e'",
            "ctrl\x01\x02\x1fchars\x0b", "x" * 40_000, "naïve café – 東京 🙂", "#N/A", "#DIV/0!", None, np.nan, pd.NA,
            "=", "\x01=SUM(2)", "\u00a0nbsp\u2003", "#NAME", None, None]
    n = len(text)
    doi = ["10.1234/abc", "doi:10.5/x y", "https://doi.org/10.1/é", " 10.9/z ", "not a doi", "", None,
           "=10.1/x", "\t10.1/x", "HTTPS://DX.DOI.ORG/10.7/Q", np.nan, "10.1/\x02ctrl", "#N/A", "10.2/<&>"]
    mixed = [1, 2.5, True, "text", None, np.int64(7), np.float64(1.5), float("inf"), float("-inf"), float("nan"),
             1e20, 10**17, -0.0, "=1+1", False, np.bool_(True), "", pd.NA, "#REF!", " x", 0.1 + 0.2, -(2**63)]
    frame = pd.DataFrame({
        "study_id": pd.array([f"s{i}" for i in range(n - 3)] + [None] * 3, dtype="str"),
        "text": pd.Series(text, dtype=object),
        "doi": pd.Series(doi + [None] * (n - len(doi)), dtype=object),
        "confidence": [0.5, np.nan, 1.0, 1 / 3, float("inf"), 1e-300, 12345678901234567.0] + [np.nan] * (n - 7),
        "mixed": pd.Series(mixed + [None] * (n - len(mixed)), dtype=object),
        "year": pd.array([2020, None, 1999] + [None] * (n - 3), dtype="Int64"),
        "flag": pd.array([True, False] * (n // 2 - 1) + [None, None], dtype="boolean"),
        "share": pd.Series([0.25, 3, None] + [None] * (n - 3), dtype=object),
        "label": pd.array(["a", None, "=b", "é"] + [None] * (n - 4), dtype="string"),
        "empty": pd.Series([None] * n, dtype=object),
    })
    return frame  # its last two rows have no value: they have no row element


def _odd_sheet(frame: pd.DataFrame, chunk_rows: int | None, options: dict[str, Any]) -> bytes:
    """The frame as the only sheet of a workbook: streamed in chunks of `chunk_rows`, or (None) held in memory."""
    from openpyxl import Workbook
    from openpyxl.writer.excel import ExcelWriter

    buffer = io.BytesIO()
    if chunk_rows is None:
        wb = Workbook()
        wb.remove(wb.active)
        xlsx._table_sheet(wb, "Odd", frame, **options)
        wb.properties.created = wb.properties.modified = xlsx.FIXED_TIME
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            ExcelWriter(wb, archive).save()
        return xlsx._fixed_zip(buffer.getvalue())
    wb = Workbook(write_only=True)
    chunks = [frame.iloc[start:start + chunk_rows] for start in range(0, len(frame), chunk_rows)]
    xlsx._stream_sheet(wb, "Odd", xlsx._Table(list(frame.columns), chunks, len(frame),
                                               xlsx._Table.of(frame).last_row), **options)
    wb.properties.created = wb.properties.modified = xlsx.FIXED_TIME
    ExcelWriter(wb, xlsx._FixedZip(buffer, "w", zipfile.ZIP_DEFLATED)).save()
    return buffer.getvalue()


def test_odd_values_stream_as_openpyxl_writes_them_whatever_the_chunks():
    from openpyxl import load_workbook

    frame = odd_frame()
    options = {"widths": {c: 20 for c in frame.columns}, "number_formats": {"confidence": "0.000", "share": "0.0%"}}
    expected = _odd_sheet(frame, None, options)
    for chunk_rows in (1, 2, 5, len(frame)):
        assert _odd_sheet(frame, chunk_rows, options) == expected, chunk_rows
    ws = load_workbook(io.BytesIO(expected))["Odd"]
    assert ws["B5"].value == "=SUM(1)" and ws["B5"].quotePrefix and ws["B5"].data_type == "s"
    assert ws["B12"].value == "ctrlchars" and len(ws["B13"].value) == xlsx.MAX_CELL and ws["B15"].data_type == "e"
    assert ws["C2"].hyperlink.target == "https://doi.org/10.1234/abc" and ws["C6"].hyperlink is None
    assert ws.max_row == len(frame) - 1


def test_chunks_do_not_change_sheets_split_past_the_row_and_link_limits(monkeypatch):
    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 6)  # 5 data rows a sheet
    monkeypatch.setattr(xlsx, "MAX_SHEET_LINKS", 2)
    frame = odd_frame()
    options = {"widths": {c: 20 for c in frame.columns}}
    whole = _odd_sheet(frame, len(frame), options)
    assert len(zipfile.ZipFile(io.BytesIO(whole)).namelist()) > 12  # five sheets
    for chunk_rows in (1, 3, 7):
        assert _odd_sheet(frame, chunk_rows, options) == whole, chunk_rows


def test_a_category_past_the_sheet_limit_continues_in_numbered_sheets(codebook, tmp_path, monkeypatch):
    from openpyxl import load_workbook

    monkeypatch.setattr(xlsx, "MAX_SHEET_ROWS", 6)  # 5 data rows a sheet
    monkeypatch.setattr(xlsx, "MAX_SHEET_LINKS", 2)
    assignments, studies = hostile_frames()
    matrix = build_matrix(assignments, studies, codebook)
    (path,) = write_exports(matrix, None, tmp_path / "a", formats=("xlsx",))
    (again,) = write_exports(matrix, None, tmp_path / "b", formats=("xlsx",))
    assert path.read_bytes() == again.read_bytes()
    wb = load_workbook(path)
    benefits = matrix.long[matrix.long["category"] == "benefits"]
    parts = [name for name in wb.sheetnames if name.startswith("Benefits")]
    assert parts == ["Benefits"] + [f"Benefits ({i})" for i in range(2, len(parts) + 1)]
    assert len(parts) == -(-len(benefits) // 5) and len(parts) >= 3
    assert [n for n in wb.sheetnames if n.startswith("Studies")] == ["Studies", "Studies (2)"]  # 7 studies
    rows = []
    for name in parts:
        sheet = wb[name]
        header = [c.value for c in sheet[1]]
        assert header[:5] == ["study_id", "year", "title", "authors", "doi"] and sheet["A1"].font.b
        assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == f"A1:P{sheet.max_row}"
        assert 2 <= sheet.max_row <= 6
        assert sum(c.hyperlink is not None for c in sheet["E"]) <= 2
        rows += [[c.value for c in row] for row in sheet.iter_rows(min_row=2)]
    assert [r[0] for r in rows] == benefits["study_id"].tolist()
    assert [r[header.index("evidence")] for r in rows] == benefits["evidence"].tolist()
    formula = [c for name in wb.sheetnames for row in wb[name].iter_rows() for c in row if c.value == FORMULA_TITLE]
    assert formula and all(c.data_type == "s" and c.quotePrefix for c in formula)
    dois = list(matrix.studies["doi"])
    for name, part in (("Studies", dois[:5]), ("Studies (2)", dois[5:])):
        links = [c.value for c in wb[name]["E"] if c.hyperlink is not None]
        assert len(links) == min(2, sum(bool(xlsx._doi_url(d)) for d in part))  # at most MAX_SHEET_LINKS a sheet
        assert [c.value for c in wb[name]["E"][1:]] == [d or None for d in part]  # later DOIs stay text


def test_sheet_titles_of_the_parts_stay_within_excel_limits():
    assert xlsx._part_title("By theoretical lens", 1) == "By theoretical lens"
    assert xlsx._part_title("A" * 31, 12) == "A" * 26 + " (12)"


# ---------------------------------------------------------------- the sampled HTML map


def _data_block(html: str) -> str:
    return re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S).group(1)


def _filtered_counts(matrix, facet: str, method: str, direction: str) -> dict[tuple[int, int], int]:
    """What the full map's page counts per cell under a method and direction filter, from the long form."""
    long = matrix.long
    keep = np.ones(len(long), dtype=bool)
    if method:
        keep &= (long["method"] == method).to_numpy()
    if direction:
        keep &= (long["direction"] == direction).to_numpy()
    rows = long[keep]
    code_index = {c: i for i, c in enumerate(matrix.codes["code"])}
    labels = {s["study_id"]: facet_labels(s, facet) for s in matrix.studies.to_dict("records")}
    values = {v: i for i, v in enumerate(matrix.facet_values[facet])}
    cells: dict[tuple[int, int], set[str]] = {}
    for study_id, code in rows[["study_id", "code"]].drop_duplicates().itertuples(index=False):
        for value in labels[study_id]:
            cells.setdefault((code_index[code], values[value]), set()).add(study_id)
    return {key: len(ids) for key, ids in cells.items()}


def test_sampled_map_counts_every_study_and_embeds_the_first_of_each_cell(codebook):
    assignments, studies = messy_frames()
    matrix = build_matrix(assignments, studies, codebook)
    data = map_data(matrix, full_map_max_studies=4, sample_per_cell=1)
    sample = data["sample"]
    assert sample["studies"] == matrix.n_studies > 4 and sample["per_cell"] == 1
    for facet in FACETS:
        for method in ("", *METHODS):
            for direction in ("", "supporting", "contrasting", "mixed"):
                got = {(c, v): n for c, v, n in sample["counts"][facet][f"{method}|{direction}"]}
                assert got == _filtered_counts(matrix, facet, method, direction), (facet, method, direction)
        crosstab = matrix.crosstabs[facet]
        for c, v, n in sample["counts"][facet]["|"]:
            assert crosstab.iloc[c][crosstab_column(facet, matrix.facet_values[facet][v])] == n
    assert {c: n for c, n in sample["all"]["|"]} == {
        i: n for i, n in enumerate(matrix.crosstabs["country"]["total"]) if n}
    assert sample["totals"]["||"] == [len(matrix.long), matrix.long["study_id"].nunique()]
    benefits = matrix.long[(matrix.long["category"] == "benefits") & (matrix.long["method"] == "reviewer")]
    assert sample["totals"]["benefits|reviewer|"] == [len(benefits), benefits["study_id"].nunique()]
    # Each code's 'All' cell shows its first study (matrix order) with every quote of that study for the code.
    shown = {(e["c"], data["studies"][e["s"]]["id"]) for e in data["evidence"]}
    first = matrix.long.drop_duplicates("code")[["code", "study_id"]]
    code_index = {c: i for i, c in enumerate(matrix.codes["code"])}
    assert {(code_index[c], s) for c, s in first.itertuples(index=False)} <= shown
    held = matrix.long[[(code_index[c], s) in shown for c, s in zip(matrix.long["code"], matrix.long["study_id"],
                                                                       strict=True)]]
    assert len(data["evidence"]) == len(held) < len(matrix.long)
    order = {sid: i for i, sid in enumerate(matrix.studies["study_id"])}
    assert [order[s["id"]] for s in data["studies"]] == sorted(order[s["id"]] for s in data["studies"])
    assert all(s["abstract"] == "" for s in data["studies"])
    assert f"{matrix.n_studies:,} studies are too many for one page" in sample["note"]
    assert "evidence_matrix_long.csv" in sample["note"]


def test_sampled_page_keeps_the_escaping_and_the_csp(codebook):
    assignments, studies = hostile_frames()
    matrix = build_matrix(assignments, studies, codebook)
    html = render_html(matrix, None, full_map_max_studies=3, sample_per_cell=1)
    assert html == render_html(matrix, None, full_map_max_studies=3, sample_per_cell=1)
    assert render_html(matrix) == render_html(matrix, full_map_max_studies=10**9)  # small reviews: the full map
    assert "<script>alert(1)</script>" not in html and "<img src=x" not in html
    assert html.count("<script") == 2 and "innerHTML" not in html and "function tallyAll" in html
    assert not re.search(r"[<>&]", _data_block(html))
    (block,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html
    assert block.index("function tallyAll") < block.index("  setUp();\n}());")
    data = json.loads(_data_block(html))
    titles = {s["title"] for s in data["studies"]}
    quotes = {e["quote"] for e in data["evidence"]}
    assert XSS_TITLE in titles or XSS_QUOTE not in quotes  # whatever is held stays intact once parsed


# ---------------------------------------------------------------- build_studies


GOLD = REPO.parent / "shared" / "data" / "dedup-benchmarks" / "bib-dedupe" / "digital_work"


@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    """bib-dedupe's digital_work set: its gold clusters (216 groups of two to four real duplicate records) and 300
    records without a duplicate, read by our CSV reader, as the records and groups tables dedupe gives."""
    from pipeline import stages
    from pipeline.records import records_to_frame

    clusters = [line.strip().strip('"').split(";") for line in
                (GOLD / "merged_record_ids.csv").read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    table = pd.read_csv(GOLD / "records_pre_merged.csv", dtype=str, keep_default_na=False)
    clustered = {own for cluster in clusters for own in cluster}
    clusters += [[own] for own in table["ID"] if own not in clustered][:300]
    subset = tmp_path_factory.mktemp("gold") / "digital_work.csv"
    table[table["ID"].isin({own for cluster in clusters for own in cluster})].to_csv(subset, index=False)
    by_own_id = {r.id: r for r in stages.ingest_stage([subset], set()).records}
    chosen, rows = [], []
    for cluster in clusters:
        members = [by_own_id[own] for own in cluster if own in by_own_id]
        for position, record in enumerate(members):
            chosen.append(record)
            rows.append({"record_id": record.record_id, "id": record.id, "keep": position == 0,
                         "duplicate_group": members[0].record_id, "match_reason": ""})
    return records_to_frame(chosen), pd.DataFrame(rows)


def test_build_studies_matches_merging_every_group(real_corpus, codebook, monkeypatch):
    import pipeline.studies as studies_module
    from pipeline.dedupe import merge_group_fields

    records, groups = real_corpus
    # The facet regexes are the same code on both sides and cost ~10 ms a study: a cheap stand-in keeps this fast.
    monkeypatch.setattr(studies_module, "study_facets", lambda title, abstract, lenses=None: {
        "countries": ["England"] if "school" in abstract.lower() else [], "design": "other",
        "lenses": ["x"] if len(title) % 2 else []})
    built = studies_module.build_studies(records, groups, lenses=codebook.lenses)
    merged = records.merge(groups[["record_id", "duplicate_group", "keep"]], on="record_id", how="inner")
    rows = []
    for group_id, group in merged.groupby("duplicate_group", sort=True):
        fields = studies_module._study_fields(str(group_id), merge_group_fields(group), group)
        facets = studies_module.study_facets(fields["title"], fields["abstract"])
        rows.append(fields | {"countries": "; ".join(facets["countries"]), "design": facets["design"],
                              "lens": "; ".join(facets["lenses"])})
    expected = pd.DataFrame(rows, columns=studies_module.STUDY_COLUMNS)
    expected["year"] = pd.to_numeric(expected["year"], errors="coerce").astype("Int64")
    expected = expected.sort_values("study_id", kind="stable").reset_index(drop=True)
    assert (expected["records"] > 1).sum() >= 100 and (expected["records"] == 1).sum() >= 100
    pd.testing.assert_frame_equal(built, expected)


def test_sampled_map_in_a_real_browser(page, tmp_path, codebook):  # noqa: F811 (the fixture imported above)
    from pipeline.export.html_map import write_html_map

    assignments, studies = hostile_frames()
    matrix = build_matrix(assignments, studies, codebook)
    path = write_html_map(matrix, None, tmp_path / "evidence_map.html", full_map_max_studies=3, sample_per_cell=1)
    page.call("Page.enable")
    page.call("Runtime.enable")
    page.call("Page.navigate", {"url": path.resolve().as_uri()})
    page.wait_for("Page.loadEventFired")

    def text(selector: str) -> str:
        return page.js(f"document.querySelector({json.dumps(selector)}).textContent")

    policy = '#heatmap td.cell[data-code="reasons.policy_mandate"][data-value="England"]'
    assert text(policy) == "2"  # counted over every study, though the page holds one of the two
    assert text("#totals") == "7 studies \u00b7 6 with evidence shown \u00b7 30 code assignments"
    assert text("#sample-note").startswith("7 studies are too many for one page")
    page.click(policy)
    assert page.js("document.querySelectorAll('#detail article.study').length") == 1
    assert text("#detail .sample-note") == ("Showing the first 1 of 2 studies (oldest first); 1 more are in "
                                           "evidence_matrix_long.csv (and evidence_matrix.xlsx).")
    page.js("var m = document.getElementById('method'); m.value = 'reviewer'; m.dispatchEvent(new Event('change'))")
    assert text('#heatmap td.cell[data-code="facilitators.trust_relationships"][data-value="*"]') == "1"
    assert text('#heatmap td.cell[data-code="reasons.policy_mandate"][data-value="*"]') == ""
    assert text("#totals") == "7 studies \u00b7 2 with evidence shown \u00b7 2 code assignments (filtered)"
    page.click("#reset")
    page.js("var s = document.getElementById('search'); s.value = 'trusted'; s.dispatchEvent(new Event('input'))")
    assert text("#totals").endswith("(filtered), among the quotes this page holds")
    page.click('#heatmap td.cell[data-code="facilitators.trust_relationships"][data-value="*"]')
    assert text("#detail .sample-note").startswith("Search looks only at the quotes this page holds")
    assert page.js("document.querySelectorAll('img, iframe').length") == 0
    assert page.js("document.querySelectorAll('script').length") == 2
    assert page.dialogs == []


def test_take_rows_gathers_from_every_chunk_of_a_text_column():
    from pipeline.synth import take_rows

    assignments, _ = hostile_frames()
    evidence = assignments["evidence"].astype(str)
    chunked = pd.concat([evidence, evidence.iloc[::-1], evidence.head(3)], ignore_index=True)
    assert chunked.array.__arrow_array__().num_chunks >= 3  # a concat keeps its parts' chunks
    positions = np.array([len(chunked) - 1, 0, len(evidence) + 2, 5, 5, len(evidence) * 2 + 1])
    taken = take_rows(chunked, positions)
    pd.testing.assert_series_equal(taken, chunked.take(positions).reset_index(drop=True))
    pd.testing.assert_series_equal(take_rows(chunked, np.array([], dtype=int)), chunked.head(0))
