"""Exports: CSV (BOM, neutralised cells), XLSX (formatting, text never a formula, fixed bytes), the HTML evidence
map (self-contained, escaped, deterministic) and the PRISMA flow diagram (SVG, PNG, JSON)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest

from pipeline.codebook import load_codebook
from pipeline.errors import ReviewError
from pipeline.export import prisma_counts, write_exports, write_prisma
from pipeline.export.html_map import embed_json, render_html
from pipeline.export.prisma import check_prisma, prisma_svg
from pipeline.export.xlsx_export import workbook_bytes
from pipeline.synth import build_matrix
from tests.test_synth import CODEBOOK, load_seed_frames, reviewer_row

XSS_TITLE = '<script>alert(1)</script> "><img src=x onerror=alert(1)> Collaboration & trust'
XSS_QUOTE = "Schools </script><script>alert(2)</script> trusted each other & shared staff"
FORMULA_TITLE = '=HYPERLINK("http://evil.example","click")'


def hostile_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed frames plus a study whose title, authors, quote and abstract try to inject markup or formulas."""
    assignments, studies = load_seed_frames()
    hostile = {
        "study_id": "xss01", "title": XSS_TITLE, "authors": "O'Brien, <b>Pat</b>; @Lee, Kim", "year": 2021,
        "doi": "10.1234/a<b>\"c", "venue": "+Journal", "abstract": "An abstract with <iframe src=//x> in it.",
        "countries": "Wales", "design": "qualitative", "lens": "", "records": 2,
    }
    formula = dict(hostile, study_id="formula01", title=FORMULA_TITLE, authors="-Smith, J", doi="", year=2019,
                   abstract="@SUM(A1:A9)")
    studies = pd.concat([studies, pd.DataFrame([hostile, formula])], ignore_index=True)
    studies["year"] = studies["year"].astype("Int64")
    extra = pd.DataFrame([
        reviewer_row("xss01", "facilitators.trust_relationships", XSS_QUOTE, name="<img src=x onerror=alert(3)>"),
        reviewer_row("formula01", "benefits.student_outcomes", "=1+1 pupils improved", direction="supporting"),
    ])
    return pd.concat([assignments, extra], ignore_index=True), studies


@pytest.fixture(scope="module")
def codebook():
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="module")
def matrix(codebook):
    assignments, studies = hostile_frames()
    return build_matrix(assignments, studies, codebook)


@pytest.fixture(scope="module")
def prisma():
    assignments, studies = hostile_frames()
    return prisma_counts(studies, assignments, identified_by_source={"seeds": 40, "hostile <script>.ris": 3},
                         removed_before_screening={})


# ---------------------------------------------------------------- CSV


def test_csv_files_have_a_bom_neutralised_cells_and_identical_bytes_twice(matrix, prisma, tmp_path):
    first = write_exports(matrix, prisma, tmp_path / "a", formats=("csv",))
    second = write_exports(matrix, prisma, tmp_path / "b", formats=("csv",))
    assert [p.name for p in first] == [
        "evidence_matrix_wide.csv", "evidence_matrix_long.csv", "code_summary.csv",
        "crosstab_country.csv", "crosstab_design.csv", "crosstab_year_band.csv", "crosstab_lens.csv",
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        assert a.read_bytes().startswith(b"\xef\xbb\xbf")
    long = pd.read_csv(first[1], encoding="utf-8-sig", keep_default_na=False)
    titles = set(long["title"])
    assert "'" + FORMULA_TITLE in titles and FORMULA_TITLE not in titles
    # A real quote from seed 004 starts with '- ' (a bullet): neutralised too, and kept otherwise intact.
    assert any(e.startswith("'- Teachers, school leaders") for e in long["evidence"])
    assert "'=1+1 pupils improved" in set(long["evidence"])
    assert "'-Smith, J" in set(long["authors"])


def test_csv_rows_follow_the_matrix_order_whatever_the_input_order(codebook, tmp_path):
    assignments, studies = hostile_frames()
    shuffled = build_matrix(assignments.sample(frac=1, random_state=1), studies.sample(frac=1, random_state=2),
                            codebook)
    ordered = build_matrix(assignments, studies, codebook)
    a = write_exports(ordered, None, tmp_path / "a", formats=["csv"])
    b = write_exports(shuffled, None, tmp_path / "b", formats=["csv"])
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


# ---------------------------------------------------------------- XLSX


def test_xlsx_sheets_headers_filters_widths_and_doi_links(matrix, prisma, tmp_path):
    from openpyxl import load_workbook

    (path,) = write_exports(matrix, prisma, tmp_path, formats=("xlsx",))
    wb = load_workbook(path)
    assert wb.sheetnames == ["About", "Summary", "Matrix", "Reasons", "Facilitators", "Barriers", "Benefits",
                             "By country", "By design", "By year", "By theoretical lens", "Studies", "PRISMA"]
    benefits = wb["Benefits"]
    header = [c.value for c in benefits[1]]
    assert header[:5] == ["study_id", "year", "title", "authors", "doi"] and "direction" in header
    assert "direction" not in [c.value for c in wb["Reasons"][1]]
    assert benefits.freeze_panes == "A2" and wb["Matrix"].freeze_panes == "C2"
    assert benefits.auto_filter.ref == f"A1:P{benefits.max_row}"
    assert benefits["A1"].font.b and benefits["L2"].alignment.wrap_text
    assert benefits.column_dimensions["L"].width == 70  # evidence
    doi_cells = [c for c in wb["Studies"]["E"] if c.hyperlink is not None]
    targets = {c.value: c.hyperlink.target for c in doi_cells}
    assert targets["10.1002/rev3.3248"] == "https://doi.org/10.1002/rev3.3248"
    assert targets['10.1234/a<b>"c'] == "https://doi.org/10.1234/a%3Cb%3E%22c"
    country = wb["By country"]
    assert [c.value for c in country[1]][:5] == ["category", "code", "label", "origin", "England"]
    assert country.conditional_formatting  # the heat colour scale
    prisma_rows = [[c.value for c in row] for row in wb["PRISMA"].iter_rows(min_row=2)]
    assert ["identification", "records identified", 43] in prisma_rows
    assert ["included", "studies included", 6] in prisma_rows


def test_xlsx_formula_looking_text_is_stored_as_text_never_as_a_formula(matrix, prisma, tmp_path):
    from openpyxl import load_workbook

    (path,) = write_exports(matrix, prisma, tmp_path, formats=("xlsx",))
    wb = load_workbook(path)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row if c.value == FORMULA_TITLE]
    assert len(cells) >= 3  # Matrix, Benefits and Studies sheets
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    with zipfile.ZipFile(path) as archive:
        sheets = [archive.read(n).decode() for n in archive.namelist() if n.startswith("xl/worksheets/sheet")]
    assert not any("<f>" in xml or "<f " in xml for xml in sheets)


def test_xlsx_bytes_are_identical_and_carry_no_timestamp(matrix, prisma, tmp_path):
    first = workbook_bytes(matrix, prisma)
    assert first == workbook_bytes(matrix, prisma)
    (path,) = write_exports(matrix, prisma, tmp_path, formats=("xlsx",))
    assert path.read_bytes() == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = archive.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(created|modified)[^>]*>([^<]*)<", core)
    assert stamps == [("created", "2000-01-01T00:00:00Z"), ("modified", "2000-01-01T00:00:00Z")]


# ---------------------------------------------------------------- HTML


def _data_block(html: str) -> str:
    match = re.search(r'<script type="application/json" id="map-data">(.*?)</script>', html, re.S)
    assert match, "the data element is missing"
    return match.group(1)


def test_html_never_contains_untrusted_markup_raw(matrix, prisma):
    html = render_html(matrix, prisma)
    for raw in ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "<img src=x onerror=alert(3)>",
                "</script><script>alert(2)", "<iframe", "<b>Pat</b>", "hostile <script>.ris"):
        assert raw not in html
    assert html.count("<script") == 2 and html.count("</script>") == 2  # the data element and the page script
    data = json.loads(_data_block(html))
    assert not re.search(r"[<>&]", _data_block(html))
    by_id = {s["id"]: s for s in data["studies"]}
    assert by_id["xss01"]["title"] == XSS_TITLE  # intact once parsed: shown as text
    quotes = {e["quote"] for e in data["evidence"]}
    assert XSS_QUOTE in quotes


def test_html_is_self_contained_and_inserts_data_as_text_only(matrix, prisma):
    html = render_html(matrix, prisma)
    assert "innerHTML" not in html and "outerHTML" not in html and "insertAdjacentHTML" not in html
    assert "document.write" not in html and "eval(" not in html
    assert not re.search(r"<(link|img|iframe|object|embed)\b", html)
    assert not re.search(r"\bsrc\s*=", html.split('id="map-data"')[0])
    assert "fetch(" not in html and "XMLHttpRequest" not in html and "import(" not in html
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert csp.startswith("default-src 'none';") and "connect-src 'none'" in csp
    for tag in ("script", "style"):
        (block,) = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(block.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_html_data_carry_codes_facets_evidence_and_prisma(matrix, prisma, codebook):
    data = json.loads(_data_block(render_html(matrix, prisma)))
    assert [c["id"] for c in data["categories"]] == ["reasons", "facilitators", "barriers", "benefits"]
    assert [c["id"] for c in data["codes"]] == list(matrix.codes["code"])
    assert len(data["codes"]) == len(codebook.codes)
    assert {c["origin"] for c in data["codes"]} == {c.origin for c in codebook.codes}
    assert [f["id"] for f in data["facets"]] == ["country", "design", "year_band", "lens"]
    assert data["facets"][0]["values"][:2] == ["England", "Wales"]
    assert len(data["evidence"]) == len(matrix.long)
    reviewer = [e for e in data["evidence"] if e["method"] == "reviewer"]
    assert {(e["by"], e["confidence"]) for e in reviewer} == {("<img src=x onerror=alert(3)>", 1.0), ("Ana", 1.0)}
    assert data["prisma"]["identified"] == 43 and data["prisma"]["included"] == 6


def test_html_bytes_are_identical_twice(matrix, prisma, tmp_path):
    (a,) = write_exports(matrix, prisma, tmp_path / "a", formats=("html",))
    (b,) = write_exports(matrix, prisma, tmp_path / "b", formats=("html",))
    assert a.read_bytes() == b.read_bytes()
    assert a.name == "evidence_map.html"


def test_embed_json_escapes_every_markup_character():
    text = embed_json({"t": "</script><!-- & \u2028"})
    assert text == '{"t":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028"}'
    assert json.loads(text) == {"t": "</script><!-- & \u2028"}


# ---------------------------------------------------------------- PRISMA


def test_prisma_counts_from_the_tables_add_up(prisma):
    assert prisma == {
        "identified": 43, "identified_by_source": {"hostile <script>.ris": 3, "seeds": 40},
        "duplicates_removed": 36, "removed_before_screening": {}, "screened": 7,
        "excluded": {"no code matched": 1}, "included": 6, "reports_included": 8,
    }


def test_prisma_svg_png_and_json_are_escaped_and_deterministic(prisma, tmp_path):
    first = write_prisma(prisma, tmp_path / "a")
    second = write_prisma(prisma, tmp_path / "b")
    assert [p.name for p in first] == ["prisma_counts.json", "prisma_flow.svg", "prisma_flow.png"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    svg = first[1].read_text(encoding="utf-8")
    assert "<script>" not in svg and "hostile &lt;script&gt;.ris" in svg
    root = ElementTree.fromstring(svg.encode())  # well-formed XML
    texts = " ".join("".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for phrase in ("Records identified from:", "Duplicate records removed (n\u00a0=\u00a036)",
                   "Records screened (n\u00a0=\u00a07)", "no code matched (n\u00a0=\u00a01)",
                   "Studies included in the synthesis (n\u00a0=\u00a06)", "Identification", "Screening", "Included"):
        assert phrase in texts
    png = first[2].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image

    with Image.open(first[2]) as image:
        assert image.width == 2 * 860 and image.height > 500
    assert json.loads(first[0].read_text()) == prisma


def test_prisma_svg_lists_many_sources_in_at_most_eleven_lines():
    counts = {"identified": 60, "identified_by_source": {f"file{i:02d}.ris": 5 for i in range(12)},
              "duplicates_removed": 10, "screened": 50, "included": 20, "excluded": {"no code matched": 30}}
    svg = prisma_svg(counts)
    assert "file09.ris" in svg and "file10.ris" not in svg
    assert "2 other sources (n\u00a0=\u00a010)" in svg


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"identified": 5, "duplicates_removed": 0, "screened": 5},
         "the PRISMA counts have no 'included'; give identified, duplicates_removed, screened, included "
         "(see pipeline.export.prisma)."),
        ({"identified": 5, "duplicates_removed": -1, "screened": 5, "included": 1},
         "the PRISMA count 'duplicates_removed' is -1; give a whole number of 0 or more."),
        ({"identified": 5, "duplicates_removed": 0, "screened": 5, "included": 1, "excluded": [4]},
         "the PRISMA count 'excluded' must be a mapping of reason or source to a count."),
    ],
)
def test_bad_prisma_counts_raise_one_sentence(counts, message):
    with pytest.raises(ReviewError) as raised:
        check_prisma(counts)
    assert str(raised.value) == message


def test_inconsistent_prisma_counts_are_drawn_but_logged(caplog):
    counts = {"identified": 10, "duplicates_removed": 2, "screened": 5, "included": 5}
    with caplog.at_level("WARNING", logger="pipeline.export.prisma"):
        svg = prisma_svg(counts)
    assert "Records screened (n\u00a0=\u00a05)" in svg
    assert "PRISMA counts do not add up: identified - removed = 8, screened = 5" in caplog.text


# ---------------------------------------------------------------- write_exports


def test_write_exports_defaults_and_format_errors(matrix, prisma, tmp_path):
    paths = write_exports(matrix, prisma, tmp_path)
    assert [p.name for p in paths][-2:] == ["evidence_matrix.xlsx", "evidence_map.html"]
    assert all(p.exists() for p in paths) and not (tmp_path / "prisma_flow.svg").exists()
    with pytest.raises(ReviewError, match="^unknown export format 'pdf'; use one of csv, xlsx, html, prisma.$"):
        write_exports(matrix, prisma, tmp_path, formats=("csv", "pdf"))
    with pytest.raises(ReviewError, match="needs the PRISMA counts"):
        write_exports(matrix, None, tmp_path, formats=("prisma",))
    assert [p.name for p in write_exports(matrix, prisma, tmp_path, formats="prisma")] == [
        "prisma_counts.json", "prisma_flow.svg", "prisma_flow.png"]


def test_outputs_leave_no_temporary_files(matrix, prisma, tmp_path):
    write_exports(matrix, prisma, tmp_path, formats=("csv", "xlsx", "html", "prisma"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]
    assert len(list(tmp_path.iterdir())) == 12


def test_export_of_the_real_seed_matrix_names_every_study(codebook, tmp_path):
    assignments, studies = load_seed_frames()
    (html_path,) = write_exports(build_matrix(assignments, studies, codebook), None, tmp_path, formats=("html",))
    data = json.loads(_data_block(html_path.read_text(encoding="utf-8")))
    assert {s["id"] for s in data["studies"]} == {"seed000", "seed001", "seed002", "seed003", "seed004"}
    assert data["prisma"] is None
    assert Path(html_path).stat().st_size < 200_000


# ---------------------------------------------------------------- agreement tables and who decided


SHEETS_DATA = Path(__file__).resolve().parent / "data" / "sheets"
HOSTILE_REVIEWER = "=1+1 <img src=x onerror=alert(4)>"
AGREEMENT_SHEETS = ["Reviewer vs reviewer", "All reviewers", "Machine vs reviewers", "Rule precision",
                    "Code precision"]
# Two reviewers decide the first eight machine codes of tests/data/sheets; they differ on three (rows 2, 4, 7).
DECISIONS = {
    HOSTILE_REVIEWER: ["accept", "reject", "reject", "accept", "accept", "accept", "accept", "reject"],
    "ana": ["accept", "reject", "accept", "accept", "reject", "accept", "accept", "accept"],
}


def sheet_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(machine assignments with the rule that fired, studies) from tests/data/sheets."""
    assignments = pd.read_csv(SHEETS_DATA / "assignments.csv", dtype=str, keep_default_na=False)
    studies = pd.read_csv(SHEETS_DATA / "studies.csv", dtype=str, keep_default_na=False)
    return assignments.astype({"confidence": float}), studies


def hand_ledger(assignments: pd.DataFrame) -> pd.DataFrame:
    """A decisions ledger as the store holds it; ana decides last, so her decisions are in force."""
    from pipeline.ledger import LEDGER_COLUMNS

    rows = []
    for reviewer, decisions in DECISIONS.items():
        for rec, decision in zip(assignments.head(len(decisions)).to_dict("records"), decisions, strict=True):
            rows.append(dict.fromkeys(LEDGER_COLUMNS, "") | {
                "decision_id": f"d{len(rows):03d}", "sequence": len(rows) + 1, "study_id": rec["study_id"],
                "assignment_id": rec["assignment_id"], "code": rec["code"], "decision": decision,
                "new_direction": rec["direction"] if decision == "accept" else "", "evidence": rec["evidence"],
                "reviewer": reviewer, "machine_method": rec["method"], "machine_rule": rec["rule"],
                "machine_direction": rec["direction"], "machine_confidence": rec["confidence"],
            })
    return pd.DataFrame(rows, columns=LEDGER_COLUMNS)


@pytest.fixture(scope="module")
def agreement():
    from pipeline.agreement import agreement_report

    assignments, _ = sheet_frames()
    return agreement_report(hand_ledger(assignments), assignments)


@pytest.fixture(scope="module")
def no_decisions():
    from pipeline.agreement import agreement_report
    from pipeline.ledger import empty_ledger

    assignments, _ = sheet_frames()
    return agreement_report(empty_ledger(), assignments)


def test_agreement_none_changes_nothing(matrix, prisma, tmp_path):
    from pipeline.export.html_map import map_data

    assert workbook_bytes(matrix, prisma, agreement=None) == workbook_bytes(matrix, prisma)
    assert render_html(matrix, prisma, agreement=None) == render_html(matrix, prisma)
    assert "agreement" not in map_data(matrix, prisma)
    assert '<section id="agreement-section" hidden>' in render_html(matrix, prisma)
    paths = write_exports(matrix, prisma, tmp_path, formats=("csv", "xlsx"), agreement=None)
    assert not [p for p in paths if p.name.startswith("agreement")]
    from openpyxl import load_workbook

    assert "Agreement" not in " ".join(load_workbook(paths[-1]).sheetnames)


def test_xlsx_agreement_sheets_are_formatted_escaped_and_deterministic(matrix, prisma, agreement, tmp_path):
    from openpyxl import load_workbook

    (a,) = write_exports(matrix, prisma, tmp_path / "a", formats=("xlsx",), agreement=agreement)
    (b,) = write_exports(matrix, prisma, tmp_path / "b", formats=("xlsx",), agreement=agreement)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() == workbook_bytes(matrix, prisma, agreement=agreement)
    wb = load_workbook(a)
    assert wb.sheetnames[-6:] == ["PRISMA"] + AGREEMENT_SHEETS
    pairs = wb["Reviewer vs reviewer"]
    assert [c.value for c in pairs[1]] == list(agreement["reviewer_pairs"].columns)
    assert pairs.freeze_panes == "A2" and pairs.auto_filter.ref == f"A1:H{len(agreement['reviewer_pairs']) + 1}"
    assert pairs["A1"].font.b
    overall = [c for c in pairs[2]]
    assert overall[0].value == HOSTILE_REVIEWER and overall[0].quotePrefix and overall[0].data_type == "s"
    assert [c.value for c in overall[1:6]] == ["ana", "(all codes)", 8, 5, 0.625]
    assert overall[5].number_format == "0.0%" and overall[6].number_format == "0.000"
    assert overall[6].value == pytest.approx(agreement["reviewer_pairs"]["cohen_kappa"].iloc[0])
    assert pairs["G3"].value == "n/a"  # kappa on one item is undefined
    codes = wb["Code precision"]
    assert codes.max_row == len(agreement["code_precision"]) + 1
    about = {row[0].value: row[1].value for row in wb["About"].iter_rows(min_row=2)}
    assert about["Agreement"].startswith("n/a: undefined")
    assert about["  Rule precision"].startswith("Per rule:")
    assert about["Decided by"].startswith("machine, or the name of the reviewer")


def test_csv_agreement_files_hold_every_table_unrounded_and_neutralised(matrix, agreement, tmp_path):
    paths = write_exports(matrix, None, tmp_path / "a", formats=("csv",), agreement=agreement)
    again = write_exports(matrix, None, tmp_path / "b", formats=("csv",), agreement=agreement)
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in again]
    names = [p.name for p in paths if p.name.startswith("agreement_")]
    assert names == ["agreement_reviewer_pairs.csv", "agreement_reviewers_all.csv",
                     "agreement_machine_vs_reviewers.csv", "agreement_rule_precision.csv",
                     "agreement_code_precision.csv"]
    pairs = pd.read_csv(tmp_path / "a" / names[0], encoding="utf-8-sig", keep_default_na=False)
    assert (tmp_path / "a" / names[0]).read_bytes().startswith(b"\xef\xbb\xbf")
    assert pairs.loc[0, "reviewer_a"] == "'" + HOSTILE_REVIEWER
    kappa = agreement["reviewer_pairs"]["cohen_kappa"].iloc[0]
    assert float(pairs.loc[0, "cohen_kappa"]) == pytest.approx(kappa, abs=1e-15)  # full precision
    assert pairs.loc[1, "cohen_kappa"] == ""  # NaN: undefined, left empty
    rules = pd.read_csv(tmp_path / "a" / names[3], encoding="utf-8-sig")
    assert list(rules.columns) == list(agreement["rule_precision"].columns) and len(rules) == 8
    empty = {"reviewer_pairs": agreement["reviewer_pairs"].iloc[0:0], "odd/../name": agreement["rule_precision"]}
    written = write_exports(matrix, None, tmp_path / "c", formats=("csv",), agreement=empty)
    assert [p.name for p in written][-2:] == ["agreement_reviewer_pairs.csv", "agreement_odd_name.csv"]
    assert written[-2].read_text(encoding="utf-8-sig").strip() == ",".join(agreement["reviewer_pairs"].columns)


def _agreement_block(html: str) -> dict:
    return json.loads(_data_block(html))["agreement"]


def test_html_agreement_section_carries_formatted_text_only(matrix, prisma, agreement, tmp_path):
    (a,) = write_exports(matrix, prisma, tmp_path / "a", formats=("html",), agreement=agreement)
    (b,) = write_exports(matrix, prisma, tmp_path / "b", formats=("html",), agreement=agreement)
    assert a.read_bytes() == b.read_bytes()
    html = a.read_text(encoding="utf-8")
    assert HOSTILE_REVIEWER not in html and "onerror=alert(4)" in html  # only inside the escaped JSON
    assert html.count("<script") == 2 and "innerHTML" not in html
    block = _agreement_block(html)
    assert block["empty"] == "" and block["note"].startswith("n/a: undefined")
    assert [t["id"] for t in block["tables"]] == list(agreement)
    pairs = block["tables"][0]
    assert pairs["title"] == "Reviewer vs reviewer" and pairs["note"].startswith("Each pair of reviewers")
    assert [c["label"] for c in pairs["columns"]][:4] == ["reviewer a", "reviewer b", "code", "n items"]
    assert [c["numeric"] for c in pairs["columns"]] == [False, False, False, True, True, True, True, True]
    kappa = agreement["reviewer_pairs"]["cohen_kappa"].iloc[0]
    assert pairs["rows"][0] == {"cells": [HOSTILE_REVIEWER, "ana", "(all codes)", "8", "5", "62.5%",
                                          f"{kappa:.3f}", "0.516"], "overall": True}
    assert pairs["rows"][1]["cells"][-2:] == ["n/a", "n/a"] and not pairs["rows"][1]["overall"]
    rules = block["tables"][3]
    assert {row["cells"][-1] for row in rules["rows"]} == {"0.0%", "100.0%"}


def test_no_reviewer_decisions_yet_is_one_line_in_xlsx_and_html(matrix, no_decisions, tmp_path):
    from openpyxl import load_workbook

    from pipeline.export.agreement_view import NO_DECISIONS

    assert len(no_decisions["code_precision"]) == 17  # machine codes listed, none reviewed
    paths = write_exports(matrix, None, tmp_path, agreement=no_decisions)
    wb = load_workbook(tmp_path / "evidence_matrix.xlsx")
    assert wb.sheetnames[-1] == "Agreement" and not set(AGREEMENT_SHEETS) & set(wb.sheetnames)
    assert [[c.value for c in row] for row in wb["Agreement"].iter_rows()] == [["agreement"], [NO_DECISIONS]]
    block = _agreement_block((tmp_path / "evidence_map.html").read_text(encoding="utf-8"))
    assert block == {"empty": NO_DECISIONS, "note": "", "tables": []}
    assert len([p for p in paths if p.name.startswith("agreement_")]) == 5  # the CSV files are always there
    html = render_html(matrix, None, agreement={})
    assert _agreement_block(html)["empty"] == NO_DECISIONS


def test_an_agreement_value_that_is_not_a_table_fails_before_writing(matrix, tmp_path):
    with pytest.raises(ReviewError, match=r"^the agreement table 'reviewer_pairs' is a list, not a table; pass "):
        write_exports(matrix, None, tmp_path / "out", agreement={"reviewer_pairs": [1, 2]})
    assert not (tmp_path / "out").exists()


def test_reviewer_decisions_are_marked_in_every_export(codebook, tmp_path):
    from openpyxl import load_workbook

    from pipeline.ledger import apply_ledger

    assignments, studies = sheet_frames()
    final = apply_ledger(assignments, hand_ledger(assignments))
    matrix = build_matrix(final, studies, codebook)
    kept = matrix.long[matrix.long["method"] == "reviewer"]
    assert set(kept["decided_by"]) == {"ana"} and len(kept) == 6  # ana's decisions are in force: 6 kept, 2 gone
    rejected = assignments.iloc[[1, 4]]
    assert not set(zip(rejected["study_id"], rejected["code"], strict=True)) & set(
        zip(matrix.long["study_id"], matrix.long["code"], strict=True))
    first = assignments.iloc[0]
    cell = matrix.wide.set_index("study_id").loc[first["study_id"], first["code"]]
    assert cell.endswith("(reviewer ana, 1.00)")
    paths = write_exports(matrix, None, tmp_path, agreement=None)
    long = pd.read_csv(tmp_path / "evidence_matrix_long.csv", encoding="utf-8-sig", keep_default_na=False)
    assert set(long.loc[long["method"] == "reviewer", "decided_by"]) == {"ana"}
    assert set(long.loc[long["method"] == "rule", "decided_by"]) == {"machine"}
    wb = load_workbook(tmp_path / "evidence_matrix.xlsx")
    sheet = wb[first["category"].capitalize()]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(min_row=2)]
    marked = [(r["method"], r["decided_by"]) for r in rows if r["code"] == first["code"]]
    assert ("reviewer", "ana") in marked
    data = json.loads(_data_block((tmp_path / "evidence_map.html").read_text(encoding="utf-8")))
    assert sum(e["by"] == "ana" and e["method"] == "reviewer" for e in data["evidence"]) == 6
    assert len(paths) == 9
