"""Agreement statistics (percent agreement, Cohen's kappa, Krippendorff's alpha; reviewer vs reviewer and machine vs
reviewers; rule precision) and two-reviewer reconciliation through a sheet that imports like any other."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pipeline.agreement import (
    ALL,
    IN_FORCE,
    agreement_report,
    cohen_kappa,
    krippendorff_alpha,
    outcome,
    percent_agreement,
    summary_lines,
)
from pipeline.ledger import in_force, ledger_frame
from pipeline.reconcile import reconcile, write_reconciliation_sheet
from pipeline.sheets import SHEET_COLUMNS, export_sheet, import_sheet
from pipeline.store import open_store

from tests.support.sheets_data import ASSIGNMENTS, CODEBOOK, STUDIES


@pytest.fixture
def store(tmp_path: Path):
    return open_store(f"sqlite:///{tmp_path / 'review.db'}")


def sheet_with(tmp_path: Path, name: str, decisions: dict[tuple[str, str], dict[str, str]],
               added: list[dict[str, str]] = (), suffix: str = ".csv") -> Path:
    source = export_sheet(ASSIGNMENTS, STUDIES, tmp_path / f"{name}.export.csv")
    with open(source, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row.update(decisions.get((row["study_id"], row["code"]), {}))
    rows.extend(added)
    path = tmp_path / f"{name}.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SHEET_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# Ten machine codes both reviewers decide; they disagree on three of them (and ana adds a code ben does not).
KEYS = [("seed001", "barriers.competition"), ("seed001", "reasons.equity"), ("seed001", "reasons.policy_mandate"),
        ("seed001", "reasons.school_improvement"), ("seed002", "benefits.wider_opportunities"),
        ("seed002", "benefits.equity"), ("seed003", "benefits.equity"), ("seed003", "reasons.equity"),
        ("seed004", "barriers.competition"), ("seed004", "facilitators.brokerage")]
ANA = {k: {"decision": "accept"} for k in KEYS} | {
    ("seed001", "reasons.equity"): {"decision": "reject"},
    ("seed001", "reasons.policy_mandate"): {"decision": "change_code", "new_code": "facilitators.structures"},
    ("seed002", "benefits.wider_opportunities"): {"decision": "change_direction", "new_direction": "mixed"},
}
BEN = {k: {"decision": "accept"} for k in KEYS} | {
    ("seed001", "reasons.equity"): {"decision": "reject"},
    ("seed001", "reasons.policy_mandate"): {"decision": "reject"},  # differs: change_code vs reject
    ("seed004", "facilitators.brokerage"): {"decision": "reject"},  # differs: accept vs reject
    # differs: ana mixed, ben kept the machine's supporting
}
ANA_ADDS = [{"study_id": "seed003", "code": "barriers.funding", "decision": "add", "evidence": "Grants ran out."}]


@pytest.fixture
def two_reviewers(tmp_path: Path, store) -> tuple[Path, Path]:
    a = sheet_with(tmp_path, "ana", ANA, ANA_ADDS)
    b = sheet_with(tmp_path, "ben", BEN)
    import_sheet(store, a, "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    import_sheet(store, b, "ben", CODEBOOK, ASSIGNMENTS, STUDIES)
    return a, b


# ---------------------------------------------------------------- the statistics


def test_krippendorff_alpha_matches_the_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
    # missing values; nominal alpha = 0.743.
    a = [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None]
    b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3]
    c = [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None]
    d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]
    units = [[v for v in unit if v is not None] for unit in zip(a, b, c, d, strict=True)]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)


def test_two_rater_statistics_against_hand_computed_values() -> None:
    x = ["keep", "keep", "keep", "reject", "reject", "keep"]
    y = ["keep", "keep", "reject", "reject", "keep", "keep"]
    assert percent_agreement(x, y) == pytest.approx(4 / 6)
    # p_o = 4/6; p_e = (4/6)(4/6) + (2/6)(2/6) = 20/36
    assert cohen_kappa(x, y) == pytest.approx((4 / 6 - 20 / 36) / (1 - 20 / 36))
    # coincidences: keep-keep 6, reject-reject 2, keep-reject 2+2; n = 12, n_keep = 8, n_reject = 4
    assert krippendorff_alpha(list(zip(x, y, strict=True))) == pytest.approx(1 - 11 * 4 / (2 * 8 * 4))
    assert krippendorff_alpha([("a", "a"), ("b", "b")]) == 1.0
    assert math.isnan(cohen_kappa(["keep", "keep"], ["keep", "keep"]))  # one value used throughout: undefined
    assert math.isnan(krippendorff_alpha([("keep", "keep"), ("keep",)]))
    assert math.isnan(percent_agreement([], []))


def test_outcomes_treat_accept_add_and_change_direction_as_keeping_the_code() -> None:
    assert outcome("accept", "", "supporting") == outcome("change_direction", "", "supporting") == "keep:supporting"
    assert outcome("add") == "keep"
    assert outcome("change_code", "barriers.funding") == "change_code:barriers.funding"
    assert outcome("reject") == "reject"


# ---------------------------------------------------------------- the report on real decisions


def test_reviewer_vs_reviewer_overall_and_per_code(two_reviewers, store) -> None:
    report = agreement_report(ledger_frame(store), ASSIGNMENTS)
    pairs = report["reviewer_pairs"].set_index("code")
    overall = pairs.loc[ALL]
    assert (overall["reviewer_a"], overall["reviewer_b"]) == ("ana", "ben")
    assert (overall["n_items"], overall["n_agree"]) == (10, 7)  # the add only ana made is not shared
    assert overall["percent_agreement"] == pytest.approx(0.7)
    assert overall["cohen_kappa"] == pytest.approx(cohen_kappa(*_labels()))
    assert not math.isnan(overall["krippendorff_alpha"])
    assert pairs.loc["reasons.equity", "n_items"] == 2 and pairs.loc["reasons.equity", "percent_agreement"] == 1.0
    assert pairs.loc["facilitators.brokerage", "percent_agreement"] == 0.0
    group = report["reviewers_all"].set_index("code").loc[ALL]
    assert (group["n_items"], group["n_reviewers"]) == (10, 2)
    assert group["krippendorff_alpha"] == pytest.approx(overall["krippendorff_alpha"])


def _labels() -> tuple[list[str], list[str]]:
    """The two reviewers' outcomes on the shared items, as the report should see them (sorted by key)."""
    directions = ASSIGNMENTS.set_index(["study_id", "code"])["direction"]
    x, y = [], []
    for key in sorted(KEYS):
        for said, out in ((ANA[key], x), (BEN[key], y)):
            new_direction = said.get("new_direction") or (directions[key] if said["decision"] == "accept" else "")
            out.append(outcome(said["decision"], said.get("new_code", ""), new_direction))
    return x, y


def test_machine_vs_reviewers_and_rule_precision(two_reviewers, store) -> None:
    report = agreement_report(ledger_frame(store), ASSIGNMENTS)
    machine = report["machine_vs_reviewers"].set_index(["reviewer", "code"])
    ana = machine.loc[("ana", ALL)]
    # ana: 10 machine codes (8 kept, 2 removed) + facilitators.structures (new code) + barriers.funding (added):
    # the machine said yes to the 10, no to the 2 others; ana says yes to 10 of the 12
    assert (ana["n_items"], ana["n_agree"]) == (12, 8)
    ben = machine.loc[("ben", ALL)]
    assert (ben["n_items"], ben["n_agree"]) == (10, 7)
    assert math.isnan(ben["cohen_kappa"]) is False and ben["cohen_kappa"] == pytest.approx(0.0)
    assert (IN_FORCE, ALL) in machine.index
    rules = report["rule_precision"]
    assert set(rules["method"]) == {"rule"} and rules["n_reviewed"].sum() == 10
    assert rules["n_kept"].sum() + rules["n_removed"].sum() == 10
    codes = report["code_precision"].set_index("code")
    # in force: reasons.equity rejected in seed001, kept in seed003
    assert codes.loc["reasons.equity", ["n_kept", "n_removed", "precision"]].tolist() == [1, 1, 0.5]
    # facilitators.brokerage: ana kept it, ben (imported last) removed it
    assert codes.loc["facilitators.brokerage", "precision"] == 0.0
    assert codes.loc["barriers.funding", "n_added"] == 1
    lines = summary_lines(report)
    assert lines[0].startswith("ana vs ben: 10 shared items, 70.0% agreement, kappa ")
    assert any(line.startswith("machine codes reviewed: 10,") for line in lines)


# ---------------------------------------------------------------- reconciliation


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_conflicts_go_to_a_reconciliation_sheet_that_imports_like_any_other(
        tmp_path: Path, store, two_reviewers, suffix: str) -> None:
    a, b = two_reviewers
    conflicts = reconcile(a, b, codebook=CODEBOOK, assignments=ASSIGNMENTS, studies=STUDIES)
    assert sorted(zip(conflicts["study_id"], conflicts["code"], strict=True)) == [
        ("seed001", "reasons.policy_mandate"), ("seed002", "benefits.wider_opportunities"),
        ("seed004", "facilitators.brokerage")]
    row = conflicts.set_index("code").loc["reasons.policy_mandate"]
    assert (row["reviewer_a"], row["decision_a"]) == ("ana", "change_code")
    assert row["new_code_a"] == "facilitators.structures"
    assert (row["reviewer_b"], row["decision_b"]) == ("ben", "reject")
    assert set(conflicts["kind"]) == {"differ"}
    one_sided = reconcile(a, b, codebook=CODEBOOK, assignments=ASSIGNMENTS, studies=STUDIES, one_sided=True)
    assert ("barriers.funding", "only_a") in set(zip(one_sided["code"], one_sided["kind"], strict=True))

    sheet = write_reconciliation_sheet(conflicts, tmp_path / f"reconcile{suffix}", codebook=CODEBOOK)
    again = write_reconciliation_sheet(conflicts, tmp_path / f"again{suffix}", codebook=CODEBOOK)
    assert sheet.read_bytes() == again.read_bytes()
    _fill(sheet, {"reasons.policy_mandate": ("change_code", "facilitators.structures", ""),
                  "benefits.wider_opportunities": ("change_direction", "", "mixed"),
                  "facilitators.brokerage": ("reject", "", "")})
    result = import_sheet(store, sheet, "chair", CODEBOOK, ASSIGNMENTS, STUDIES)
    assert result.n_recorded == 3
    force = in_force(ledger_frame(store)).set_index("code")
    assert force.loc["reasons.policy_mandate", "reviewer"] == "chair"
    assert force.loc["reasons.policy_mandate", "new_code"] == "facilitators.structures"
    assert force.loc["facilitators.brokerage", "decision"] == "reject"
    assert import_sheet(store, sheet, "chair", CODEBOOK, ASSIGNMENTS, STUDIES).n_unchanged == 3


def _fill(path: Path, decisions: dict[str, tuple[str, str, str]]) -> None:
    """The person who reconciles fills the decision columns (with csv or openpyxl, as a spreadsheet would)."""
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            columns, rows = reader.fieldnames, list(reader)
        assert columns[: len(SHEET_COLUMNS)] == SHEET_COLUMNS and "decision_a" in columns
        for row in rows:
            row["decision"], row["new_code"], row["new_direction"] = decisions[row["code"]]
        with open(path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
        return
    from openpyxl import load_workbook

    wb = load_workbook(path)
    ws = wb["Review"]
    header = [c.value for c in ws[1]]
    for r in range(2, ws.max_row + 1):
        values = decisions[ws.cell(r, header.index("code") + 1).value]
        for name, value in zip(("decision", "new_code", "new_direction"), values, strict=True):
            ws.cell(r, header.index(name) + 1).value = value or None
    wb.save(path)
