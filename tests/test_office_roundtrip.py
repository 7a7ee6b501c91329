"""A real spreadsheet program in the loop: LibreOffice (Debian's package) opens the exported CSV and XLSX headless and
saves them in its own CSV / XLSX; importing what it wrote gives the same decisions as importing the originals.

The session fixture installs LibreOffice Calc with scripts/install-test-packages.sh when `soffice` is missing (about
40 s and ~200 MB the first time; nothing is downloaded except Debian's packages). Each conversion runs with a fresh
user profile (-env:UserInstallation) and takes a few seconds.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from pipeline.ledger import ledger_frame
from pipeline.sheets import export_sheet, import_sheet
from pipeline.store import open_store

from tests.support.sheets_data import ASSIGNMENTS, CODEBOOK, REPO, STUDIES

INSTALL_SCRIPT = REPO / "scripts" / "install-test-packages.sh"
CSV_UTF8 = "CSV:44,34,76,1"  # ',' delimited, '"' quoted, UTF-8 (76), from line 1
SEMICOLON_UTF8 = "csv:Text - txt - csv (StarCalc):59,34,76,1"  # European Excel style: ';' as delimiter

# What a reviewer decides on the sheet: one of each decision, booleans, and added codes with hostile quotes.
DECISIONS = {
    ("seed001", "barriers.competition"): {"decision": "accept", "note": "clear; see \"marketised\""},
    ("seed001", "reasons.equity"): {"decision": "reject", "note": "about the system,\nnot a reason"},
    ("seed001", "reasons.policy_mandate"): {"decision": "change_code", "new_code": "facilitators.structures"},
    ("seed002", "benefits.wider_opportunities"): {"decision": "change_direction", "new_direction": "mixed"},
    ("seed004", "barriers.fragmentation"): {"decision": "TRUE"},  # a quote starting with "- ": kept as text
    ("seed004", "facilitators.matching"): {"decision": "FALSE"},
}
ADDED = [
    {"study_id": "seed003", "code": "facilitators.trust_relationships", "decision": "add",
     "evidence": "Trust between heads, \"built over years\",\nmade it work — 信任"},
    {"study_id": "seed000", "code": "benefits.equity", "decision": "add", "new_direction": "contrasting",
     "evidence": "+ no gain in equity was found; schools «in need» gained least"},
]


@pytest.fixture(scope="session")
def soffice() -> str:
    if shutil.which("soffice") is None:
        subprocess.run(["bash", str(INSTALL_SCRIPT), "soffice", "libreoffice-calc"], check=True, timeout=900)
    path = shutil.which("soffice")
    assert path, "scripts/install-test-packages.sh did not install soffice"
    return path


def convert(soffice: str, source: Path, target: str, out: Path, profile: Path) -> Path:
    """LibreOffice opens `source` and saves it as `target` (a format, optionally with filter options) into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    # A CSV is opened as UTF-8, as a user picks it in the import dialog: headless, LibreOffice would otherwise read it
    # in the system's legacy charset (and write it back the same way, hiding the mix-up).
    infilter = [f"--infilter={CSV_UTF8}"] if source.suffix == ".csv" else []
    done = subprocess.run(
        [soffice, "--headless", "--norestore", f"-env:UserInstallation={profile.as_uri()}", *infilter,
         "--convert-to", target, "--outdir", str(out), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    suffix = ".xlsx" if target.startswith("xlsx") else ".csv"
    result = out / (source.stem + suffix)
    assert done.returncode == 0 and result.exists(), f"soffice failed: {done.stdout}\n{done.stderr}"
    return result


def fill_csv(path: Path) -> Path:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    for row in rows:
        row.update(DECISIONS.get((row["study_id"], row["code"]), {}))
    rows.extend(ADDED)
    filled = path.with_name(path.stem + "_filled.csv")
    with open(filled, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return filled


def fill_xlsx(path: Path) -> Path:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb["Review"]
    header = [c.value for c in ws[1]]
    col = {name: header.index(name) + 1 for name in header}
    for r in range(2, ws.max_row + 1):
        said = DECISIONS.get((ws.cell(r, col["study_id"]).value, ws.cell(r, col["code"]).value), {})
        for name, value in said.items():
            ws.cell(r, col[name]).value = {"TRUE": True, "FALSE": False}.get(value, value)
    start = ws.max_row + 1
    for offset, added in enumerate(ADDED):
        for name, value in added.items():
            ws.cell(start + offset, col[name]).value = value
    filled = path.with_name(path.stem + "_filled.xlsx")
    wb.save(filled)
    return filled


def decisions_of(tmp: Path, sheet: Path) -> list[tuple]:
    store = open_store(f"sqlite:///{tmp / f'{sheet.parent.name}-{sheet.name}.db'}")
    result = import_sheet(store, sheet, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert result.n_recorded == len(DECISIONS) + len(ADDED)
    ledger = ledger_frame(store)
    columns = ["study_id", "code", "assignment_id", "decision", "new_code", "new_direction", "evidence", "note",
               "reviewer", "machine_method", "machine_rule", "decision_id"]
    return sorted(ledger[columns].itertuples(index=False, name=None))


def test_libreoffice_resaved_sheets_import_to_the_same_decisions(soffice: str, tmp_path: Path) -> None:
    profile = tmp_path / "lo-profile"
    csv_sheet = fill_csv(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "sheet.csv", codebook=CODEBOOK))
    xlsx_sheet = fill_xlsx(export_sheet(ASSIGNMENTS, STUDIES, tmp_path / "sheet.xlsx", codebook=CODEBOOK))

    expected = decisions_of(tmp_path, csv_sheet)
    assert decisions_of(tmp_path, xlsx_sheet) == expected
    assert {d for _s, _c, _a, d, *_ in expected} == {"accept", "reject", "change_code", "change_direction", "add"}
    added = {code: evidence for _s, code, _a, _d, _n, _nd, evidence, *_ in expected}
    assert added["facilitators.trust_relationships"].endswith("made it work — 信任")

    resaved = {
        "csv": convert(soffice, csv_sheet, "csv", tmp_path / "lo-csv", profile),
        "csv;": convert(soffice, csv_sheet, SEMICOLON_UTF8, tmp_path / "lo-semicolon", profile),
        "xlsx": convert(soffice, xlsx_sheet, "xlsx", tmp_path / "lo-xlsx", profile),
    }
    with zipfile.ZipFile(resaved["xlsx"]) as archive:  # really LibreOffice's own file, not ours passed through
        assert b"LibreOffice" in archive.read("docProps/app.xml")
    header = resaved["csv;"].read_text(encoding="utf-8").splitlines()[0]
    assert header.replace('"', "").startswith("assignment_id;study_id;title;")
    for name, path in resaved.items():
        assert decisions_of(tmp_path, path) == expected, name


def test_libreoffice_resave_of_an_untouched_sheet_records_nothing(soffice: str, tmp_path: Path) -> None:
    profile = tmp_path / "lo-profile"
    for suffix in ("csv", "xlsx"):
        sheet = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"untouched.{suffix}", codebook=CODEBOOK)
        resaved = convert(soffice, sheet, suffix, tmp_path / f"lo-{suffix}", profile)
        store = open_store(f"sqlite:///{tmp_path / (suffix + '.db')}")
        result = import_sheet(store, resaved, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
        assert (result.n_recorded, result.n_no_decision) == (0, len(ASSIGNMENTS))
        assert ledger_frame(store).empty
