"""Review sheets: export (CSV/XLSX, deterministic), import of what spreadsheet programs write, validation with
every problem located, all-or-nothing imports, round-trip identity, and hypothesis round trips of hostile quotes."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.assign import assignment_id
from pipeline.codebook import load_codebook
from pipeline.errors import InputFileError, ReviewError
from pipeline.ledger import ledger_frame
from pipeline.sheets import (
    SHEET_COLUMNS,
    SheetError,
    _raw_rows,
    export_sheet,
    import_sheet,
    read_sheet,
    sheet_frame,
)
from pipeline.store import open_store

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "sheets"
CODEBOOK = load_codebook(REPO / "codebook" / "school_to_school.yaml")


def load_assignments() -> pd.DataFrame:
    frame = pd.read_csv(DATA / "assignments.csv", dtype=str, keep_default_na=False)
    frame["confidence"] = frame["confidence"].astype(float)
    return frame


def load_studies() -> pd.DataFrame:
    return pd.read_csv(DATA / "studies.csv", dtype=str, keep_default_na=False)


ASSIGNMENTS = load_assignments()
STUDIES = load_studies()


@pytest.fixture
def store(tmp_path: Path):
    return open_store(f"sqlite:///{tmp_path / 'review.db'}")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv_rows(path: Path, rows: list[dict[str, str]], *, encoding: str = "utf-8-sig", delimiter: str = ",",
                   lineterminator: str = "\r\n", columns: list[str] | None = None) -> Path:
    """Write rows as a spreadsheet program would; a legacy encoding turns what it cannot hold into '?', as Excel
    does when it saves 'CSV (comma delimited)'."""
    columns = columns or SHEET_COLUMNS
    with open(path, "w", encoding=encoding, newline="", errors="replace") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=delimiter, lineterminator=lineterminator,
                                extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def find(rows: list[dict[str, str]], study: str, code: str) -> dict[str, str]:
    return next(r for r in rows if r["study_id"] == study and r["code"] == code)


def decide(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """One of each decision on the real fixture, plus an added code."""
    find(rows, "seed001", "barriers.competition")["decision"] = "accept"
    find(rows, "seed001", "reasons.equity")["decision"] = "reject"
    row = find(rows, "seed001", "reasons.policy_mandate")
    row.update(decision="change_code", new_code="facilitators.structures")
    row = find(rows, "seed002", "benefits.wider_opportunities")
    row.update(decision="change_direction", new_direction="mixed", note="only for some schools")
    rows.append({"study_id": "seed003", "code": "facilitators.trust_relationships", "decision": "add",
                 "evidence": "Trust between heads, \"built over years\",\nmade it work."})
    return rows


def ledger_content(store) -> list[tuple]:
    frame = ledger_frame(store)
    return sorted(zip(frame.study_id, frame.code, frame.decision, frame.new_code, frame.new_direction,
                      frame.evidence, frame.reviewer, frame.note, strict=True))


# ---------------------------------------------------------------- export


def test_csv_export_has_one_row_per_assignment_sorted_with_empty_decision_columns(tmp_path: Path) -> None:
    path = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "sheet.csv")
    data = path.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = read_csv_rows(path)
    assert list(rows[0]) == SHEET_COLUMNS
    assert len(rows) == len(ASSIGNMENTS) == 26
    assert {r["assignment_id"] for r in rows} == set(ASSIGNMENTS["assignment_id"])
    keys = [(r["study_id"], r["code"], r["assignment_id"]) for r in rows]
    assert keys == sorted(keys)
    assert all(r[c] == "" for r in rows for c in ("decision", "new_code", "new_direction", "reviewer", "note"))
    assert find(rows, "seed001", "barriers.competition")["title"].startswith("School-to-school collaboration")


def test_exports_are_deterministic_whatever_the_input_order(tmp_path: Path) -> None:
    shuffled = ASSIGNMENTS.sample(frac=1.0, random_state=3)
    for suffix in (".csv", ".xlsx"):
        first = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"a{suffix}", codebook=CODEBOOK).read_bytes()
        second = export_sheet(shuffled, STUDIES, tmp_path / f"b{suffix}", codebook=CODEBOOK).read_bytes()
        assert first == second


def test_xlsx_has_instructions_codes_lists_frozen_header_and_fixed_dates(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    path = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "sheet.xlsx", codebook=CODEBOOK)
    wb = load_workbook(path)
    assert wb.sheetnames == ["Review", "Instructions", "Codes"]
    ws = wb["Review"]
    assert [c.value for c in ws[1]] == SHEET_COLUMNS
    assert ws.freeze_panes == "A2"
    lists = {str(dv.sqref)[0]: dv.formula1 for dv in ws.data_validations.dataValidation}
    assert {str(dv.sqref) for dv in ws.data_validations.dataValidation} == {"J2:J1027", "K2:K1027", "L2:L1027"}
    assert lists["J"] == '"accept,reject,change_code,change_direction,add"'
    assert lists["L"] == '"supporting,contrasting,mixed"'
    assert lists["K"] == f"Codes!$A$2:$A${len(CODEBOOK.codes) + 1}"
    instructions = " ".join(str(c.value) for row in wb["Instructions"].iter_rows() for c in row)
    assert "decision: add" in instructions and "study_id, code, evidence" in instructions
    assert wb.properties.created.year == 2000
    with zipfile.ZipFile(path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_formula_looking_text_is_guarded_in_csv_and_xlsx_and_read_back_unchanged(tmp_path: Path) -> None:
    hostile = ASSIGNMENTS.copy()
    hostile.loc[0, "evidence"] = "=HYPERLINK(\"http://x\",\"y\")"
    hostile.loc[1, "evidence"] = "-5% fewer exclusions, +3 points"
    for suffix in (".csv", ".xlsx"):
        path = export_sheet(hostile, STUDIES, tmp_path / f"sheet{suffix}")
        if suffix == ".csv":
            text = path.read_text(encoding="utf-8-sig")
            assert "'=HYPERLINK" in text and "'-5% fewer" in text
        _header, rows = _raw_rows(path.read_bytes(), path)
        cells = {r[0]: r[6] for _n, r in rows}
        assert cells[hostile.loc[0, "assignment_id"]] == hostile.loc[0, "evidence"]
        assert cells[hostile.loc[1, "assignment_id"]] == hostile.loc[1, "evidence"]


def test_an_apostrophe_the_export_did_not_add_is_kept(tmp_path: Path) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    rows.append({"study_id": "seed003", "code": "barriers.funding", "decision": "add", "evidence": "'costs' mattered"})
    frame = read_sheet(write_csv_rows(tmp_path / "e.csv", rows), CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    assert frame.loc[frame["decision"] == "add", "evidence"].item() == "'costs' mattered"


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_import_unchanged_export_again_is_byte_identical(tmp_path: Path, store, suffix: str) -> None:
    first = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"one{suffix}", codebook=CODEBOOK)
    result = import_sheet(store, first, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert (result.n_recorded, result.n_no_decision, result.n_rows) == (0, 26, 26)
    ledger = ledger_frame(store)
    assert ledger.empty
    second = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"two{suffix}", ledger=ledger, codebook=CODEBOOK)
    assert first.read_bytes() == second.read_bytes()


def test_decisions_import_once_and_a_second_import_changes_nothing(tmp_path: Path, store) -> None:
    sheet = write_csv_rows(tmp_path / "ana.csv", decide(read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES,
                                                                                      tmp_path / "s.csv"))))
    first = import_sheet(store, sheet, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert first.counts == {"accept": 1, "reject": 1, "change_code": 1, "change_direction": 1, "add": 1}
    assert (first.n_unchanged, first.n_duplicates, first.n_no_decision) == (0, 0, 22)
    before = ledger_frame(store)
    second = import_sheet(store, sheet, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert second.n_recorded == 0 and second.n_unchanged == 5
    after = ledger_frame(store)
    pd.testing.assert_frame_equal(before, after)
    rec = after.set_index("code").loc["barriers.competition"]
    assert rec["sheet_name"] == "ana.csv" and len(rec["sheet_sha256"]) == 64 and rec["reviewer"] == "ana"
    assert rec["machine_method"] == "rule" and rec["machine_rule"].startswith("standalone:")
    added = after.set_index("code").loc["facilitators.trust_relationships"]
    assert added["evidence"] == "Trust between heads, \"built over years\",\nmade it work."
    assert added["assignment_id"] == ""  # the ledger's mark of a code a reviewer added


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_sheet_re_exported_with_its_decisions_imports_as_unchanged_and_exports_identically(
        tmp_path: Path, store, suffix: str) -> None:
    sheet = write_csv_rows(tmp_path / "ana.csv", decide(read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES,
                                                                                      tmp_path / "s.csv"))))
    import_sheet(store, sheet, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    ledger = ledger_frame(store)
    again = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"again{suffix}", ledger=ledger, codebook=CODEBOOK)
    frame = read_sheet(again, CODEBOOK, sheet_frame(ASSIGNMENTS, STUDIES, ledger), STUDIES["study_id"])
    shown = frame[frame["decision"] != ""].set_index("code")
    assert shown.loc["reasons.equity", "decision"] == "reject"  # rejected codes stay on the sheet
    assert shown.loc["reasons.policy_mandate", "new_code"] == "facilitators.structures"
    assert shown.loc["facilitators.trust_relationships", "decision"] == "add"
    assert set(shown["reviewer"]) == {"ana"}
    result = import_sheet(store, again, "ben", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert result.n_recorded == 0 and result.n_unchanged == 5
    third = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"third{suffix}", ledger=ledger_frame(store),
                         codebook=CODEBOOK)
    assert third.read_bytes() == again.read_bytes()


# ---------------------------------------------------------------- what spreadsheet programs write


def _variants(tmp_path: Path, rows: list[dict[str, str]]) -> dict[str, Path]:
    reordered = list(reversed(SHEET_COLUMNS)) + ["my comments"]
    for row in rows:
        row["my comments"] = "extra column, ignored"
    paths = {
        "utf8_bom_comma_crlf": write_csv_rows(tmp_path / "a.csv", rows),
        "utf8_no_bom_lf": write_csv_rows(tmp_path / "b.csv", rows, encoding="utf-8", lineterminator="\n"),
        "cp1252_semicolon": write_csv_rows(tmp_path / "c.csv", rows, encoding="cp1252", delimiter=";"),
        "utf16_tab": write_csv_rows(tmp_path / "d.txt", rows, encoding="utf-16", delimiter="\t"),
        "reordered_extra_columns": write_csv_rows(tmp_path / "e.csv", rows, columns=reordered),
    }
    sep = tmp_path / "f.csv"  # Excel's "sep=;" first line
    sep.write_bytes(b"sep=;\r\n" + (tmp_path / "c.csv").read_bytes())
    paths["excel_sep_line"] = sep
    trailing = tmp_path / "g.csv"
    trailing.write_bytes((tmp_path / "c.csv").read_bytes() + b";;;;;;;;;;;;;\r\n;;;;;;;;;;;;;\r\n\r\n")
    paths["trailing_empty_rows"] = trailing
    return paths


def test_every_spreadsheet_dialect_gives_the_same_decisions(tmp_path: Path) -> None:
    rows = decide(read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv")))
    # cp1252 cannot hold every character: keep the quotes of the fixture, but check the è of a cp1252 sheet
    find(rows, "seed001", "barriers.competition")["note"] = "très clair"
    find(rows, "seed004", "barriers.competition")["decision"] = "TRUE"  # booleans as Excel writes them
    find(rows, "seed004", "barriers.fragmentation")["decision"] = "0"
    find(rows, "seed004", "facilitators.matching")["decision"] = "Accept "
    results = {}
    for name, path in _variants(tmp_path, [dict(r) for r in rows]).items():
        frame = read_sheet(path, CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
        decided = frame[frame["decision"] != ""]
        results[name] = sorted(zip(decided.study_id, decided.code, decided.decision, decided.new_code,
                                   decided.new_direction, decided.evidence, decided.note, strict=True))
    expected = results["utf8_bom_comma_crlf"]
    assert len(expected) == 8
    fragmentation = ASSIGNMENTS.set_index(["study_id", "code"]).loc[("seed004", "barriers.fragmentation"), "evidence"]
    assert fragmentation.startswith("- Moving")  # a real quote that a spreadsheet would take for a formula
    assert ("seed004", "barriers.fragmentation", "reject", "", "", fragmentation, "") in expected
    assert ("seed001", "barriers.competition") in [(s, c) for s, c, d, *_ in expected if d == "accept"]
    for name, got in results.items():
        assert got == expected, name
    assert any(note == "très clair" for *_, note in expected)


def test_xlsx_with_booleans_numbers_and_added_rows(tmp_path: Path, store) -> None:
    from openpyxl import load_workbook

    path = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "sheet.xlsx", codebook=CODEBOOK)
    wb = load_workbook(path)
    ws = wb["Review"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) + 1 for name in header}
    by_code = {(ws.cell(r, col["study_id"]).value, ws.cell(r, col["code"]).value): r for r in range(2, ws.max_row + 1)}
    ws.cell(by_code[("seed001", "barriers.competition")], col["decision"]).value = True
    ws.cell(by_code[("seed001", "reasons.equity")], col["decision"]).value = 0
    new = ws.max_row + 3  # a gap of blank rows before the added row
    for name, value in (("study_id", "seed002"), ("code", "benefits.leadership_capacity"), ("decision", "add"),
                        ("evidence", "Heads grew as leaders — 校长成长"), ("new_direction", "supporting")):
        ws.cell(new, col[name]).value = value
    wb.save(path)
    result = import_sheet(store, path, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert result.counts == {"accept": 1, "reject": 1, "change_code": 0, "change_direction": 0, "add": 1}
    added = ledger_frame(store).set_index("code").loc["benefits.leadership_capacity"]
    assert added["evidence"] == "Heads grew as leaders — 校长成长" and added["new_direction"] == "supporting"


def test_quoted_newlines_keep_spreadsheet_row_numbers(tmp_path: Path) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    multiline = [i for i, r in enumerate(rows) if "\n" in r["evidence"]]
    assert multiline, "the fixture has a quote with a line break"
    last = len(rows) + 1  # the spreadsheet row of the last data row
    rows[-1]["decision"] = "acept"
    with pytest.raises(SheetError) as err:
        read_sheet(write_csv_rows(tmp_path / "e.csv", rows), CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    assert err.value.problems == [
        f"row {last}, decision: unknown decision 'acept'; did you mean 'accept'? use one of accept, reject, "
        "change_code, change_direction, add (or leave it empty)"
    ]


# ---------------------------------------------------------------- validation


def test_unknown_code_names_row_and_column_with_did_you_mean_and_the_known_codes(tmp_path: Path, store) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    rows[12].update(decision="change_code", new_code="barier.cost")
    with pytest.raises(SheetError) as err:
        import_sheet(store, write_csv_rows(tmp_path / "e.csv", rows), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    known = ", ".join(CODEBOOK.ids())
    assert err.value.problems == [
        f"row 14, new_code: unknown code 'barier.cost'; did you mean 'barriers.funding'? known codes: {known}"
    ]
    assert isinstance(err.value, ReviewError)
    assert "nothing was imported" in str(err.value)


def test_every_problem_is_listed_at_once_and_nothing_is_written(tmp_path: Path, store) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    rows[0]["decision"] = "accept"  # a good row: must not be written either
    rows[1].update(decision="change_code")  # no new_code
    rows[2].update(decision="change_direction", new_direction="mixed")  # a barrier has no direction
    rows[3].update(code="barriers.funding")  # the code was edited instead of using change_code
    rows[4].update(decision="reject", new_code="barriers.funding")
    rows[5].update(new_direction="suporting", decision="change_direction")
    rows[6].update(assignment_id="a000000000000000", decision="accept")
    rows.append({"study_id": "seed009", "code": "benefits.equity", "decision": "add", "evidence": ""})
    rows.append({"study_id": "seed002", "code": "barriers.funding", "decision": "accept"})  # no id, not add
    rows.append({"study_id": "seed002", "code": "benefits.equity", "decision": "add", "evidence": "Fairer.",
                 "new_direction": "supporting"})
    rows.append({"study_id": "seed002", "code": "benefits.equity", "decision": "add", "evidence": "Fairer.",
                 "new_direction": "contrasting"})  # contradicts the row above
    rows.append({"study_id": "seed002", "code": "benefits.student_outcomes", "decision": "add", "evidence": "Up."})
    path = write_csv_rows(tmp_path / "e.csv", rows)
    with pytest.raises(SheetError) as err:
        import_sheet(store, path, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    problems = err.value.problems
    codes = [(p.split(",")[0], p.split(", ")[1].split(":")[0]) for p in problems]
    assert codes == [
        ("row 3", "new_code"), ("row 4", "decision"), ("row 5", "code"), ("row 6", "new_code"),
        ("row 7", "new_direction"), ("row 8", "assignment_id"), ("row 28", "study_id"), ("row 28", "evidence"),
        ("row 29", "decision"), ("row 31", "decision"), ("row 32", "new_direction"),
    ]
    assert "unknown direction 'suporting'; did you mean 'supporting'?" in problems[4]
    assert "unknown study 'seed009'; did you mean 'seed000'?" in problems[6]
    assert problems[-2] == ("row 31, decision: row 30 already decides study 'seed002', code 'benefits.equity' "
                            "differently; keep one of the two rows")
    assert problems[-1] == ("row 32, new_direction: 'benefits.student_outcomes' is a benefits code: give "
                            "new_direction (supporting, contrasting, mixed)")
    assert ledger_frame(store).empty


def test_conflicting_and_repeated_rows(tmp_path: Path, store) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    rows[0]["decision"] = "reject"
    rows.append(dict(rows[0]))  # the same decision twice: a duplicate, skipped
    result = import_sheet(store, write_csv_rows(tmp_path / "d.csv", rows), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert (result.counts["reject"], result.n_duplicates) == (1, 1)
    rows[-1]["decision"] = "accept"
    with pytest.raises(SheetError) as err:
        read_sheet(write_csv_rows(tmp_path / "c.csv", rows), CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    assert err.value.problems == [
        f"row 28, decision: row 2 already decides study {rows[0]['study_id']!r}, code {rows[0]['code']!r} "
        "differently; keep one of the two rows"
    ]


def test_missing_columns_and_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("id;code;verdict\n1;x;accept\n", encoding="utf-8")
    with pytest.raises(SheetError) as err:
        read_sheet(bad, CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    assert "row 1: the header has no 'assignment_id', 'study_id', 'decision' column" in err.value.problems[0]
    old = tmp_path / "sheet.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0 old excel")
    with pytest.raises(InputFileError, match=r"is a \.xls file.*save it as \.xlsx or \.csv"):
        read_sheet(old, CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    with pytest.raises(InputFileError, match="no such file"):
        read_sheet(tmp_path / "missing.csv", CODEBOOK, ASSIGNMENTS, STUDIES["study_id"])
    with pytest.raises(ReviewError, match="--reviewer NAME"):
        import_sheet(open_store(f"sqlite:///{tmp_path / 'r.db'}"), bad, " ", CODEBOOK, ASSIGNMENTS, STUDIES)


def test_a_row_from_an_older_export_still_imports_after_the_machine_changed(tmp_path: Path, store) -> None:
    rows = read_csv_rows(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "s.csv"))
    find(rows, "seed001", "barriers.competition")["decision"] = "reject"
    rerun = ASSIGNMENTS[~((ASSIGNMENTS.study_id == "seed001") & (ASSIGNMENTS.code == "barriers.competition"))]
    result = import_sheet(store, write_csv_rows(tmp_path / "old.csv", rows), "ana", CODEBOOK, rerun, STUDIES)
    assert result.counts["reject"] == 1


# ---------------------------------------------------------------- hypothesis: hostile quotes

_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(",;\"'\n\t =+-@") + ["\r", "é", "ß", "—", "“", "”", "校", "長", "Ж", "ا", "😀"]),
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn", "Zl", "Zp")),
    ),
    min_size=1, max_size=60,
)
_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _normalised(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


@_SETTINGS
@given(evidence=_TEXT, lead=st.sampled_from(["", "=", "+", "-", "@"]))
def test_quotes_survive_the_sheet_cells_and_ids_still_match(tmp_path_factory, evidence: str, lead: str) -> None:
    evidence = lead + evidence
    assume(_normalised(evidence))
    tmp = tmp_path_factory.mktemp("h")
    frame = ASSIGNMENTS.head(2).copy()
    frame.loc[0, "evidence"] = evidence
    frame.loc[0, "assignment_id"] = assignment_id(frame.loc[0, "study_id"], frame.loc[0, "code"], evidence)
    for suffix in (".csv", ".xlsx"):
        path = export_sheet(frame, STUDIES, tmp / f"s{suffix}")
        _header, rows = _raw_rows(path.read_bytes(), path)
        cells = {r[0]: r for _n, r in rows}
        row = cells[frame.loc[0, "assignment_id"]]
        assert _normalised(row[6]) == _normalised(evidence)
        assert assignment_id(row[1], row[3], row[6]) == row[0]  # the row proves itself intact
        again = export_sheet(frame, STUDIES, tmp / f"t{suffix}")
        assert again.read_bytes() == path.read_bytes()


@_SETTINGS
@given(evidence=_TEXT, lead=st.sampled_from(["", "=", "+", "-", "@"]), delimiter=st.sampled_from([",", ";", "\t"]))
def test_added_quotes_reach_the_ledger_unchanged(tmp_path_factory, evidence: str, lead: str, delimiter: str) -> None:
    evidence = lead + evidence
    assume(_normalised(evidence) and not evidence.lstrip().startswith("'"))
    tmp = tmp_path_factory.mktemp("h")
    store = open_store("sqlite://")  # in memory: a fresh store per example, without a file's fsyncs
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(SHEET_COLUMNS)
    writer.writerow(["", "seed003", "", "barriers.funding", "", "", evidence, "", "", "add", "", "", "", ""])
    path = tmp / "added.csv"
    path.write_bytes(text.getvalue().encode("utf-8"))
    result = import_sheet(store, path, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert result.counts["add"] == 1
    assert ledger_frame(store)["evidence"].tolist() == [_normalised(evidence)]
    assert import_sheet(store, path, "ana", CODEBOOK, ASSIGNMENTS, STUDIES).n_unchanged == 1
