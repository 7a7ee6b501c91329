"""The decisions ledger: append-only, latest decision in force, re-runs of the machine never override a decision,
decisions follow their study through dedup changes, and `review status` counts."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.assign import assign, assignment_id
from pipeline.ledger import (
    LEDGER_COLUMNS,
    append_decisions,
    apply_ledger,
    decision_id,
    in_force,
    latest_by_reviewer,
    ledger_assign_inputs,
    ledger_frame,
    remap_decisions,
    review_status,
)
from pipeline.sheets import SHEET_COLUMNS, export_sheet, import_sheet
from pipeline.store import open_store

from tests.support.sheets_data import ASSIGNMENTS, CODEBOOK, STUDIES


@pytest.fixture
def store(tmp_path: Path):
    return open_store(f"sqlite:///{tmp_path / 'review.db'}")


def hits_of(assignments: pd.DataFrame) -> pd.DataFrame:
    """The assignments back in the rule engine's hit format, as a re-run of the machine would give them."""
    return assignments.rename(columns={"study_id": "id"})[["id", "code", "category", "direction", "evidence",
                                                            "confidence", "rule"]]


def sheet_with(tmp_path: Path, name: str, decisions: dict[tuple[str, str], dict[str, str]],
               added: list[dict[str, str]] = ()) -> Path:
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


ANA = {
    ("seed001", "barriers.competition"): {"decision": "accept"},
    ("seed001", "reasons.equity"): {"decision": "reject", "note": "about the system, not a reason"},
    ("seed001", "reasons.policy_mandate"): {"decision": "change_code", "new_code": "facilitators.structures"},
    ("seed002", "benefits.wider_opportunities"): {"decision": "change_direction", "new_direction": "mixed"},
}
ADDED = [{"study_id": "seed003", "code": "barriers.funding", "decision": "add", "evidence": "Grants ran out."}]


def test_the_ledger_is_append_only_and_the_latest_decision_is_in_force(tmp_path: Path, store) -> None:
    key = ("seed001", "barriers.competition")
    for n, decision in enumerate(["accept", "reject", "accept"]):
        import_sheet(store, sheet_with(tmp_path, f"s{n}", {key: {"decision": decision}}), "ana", CODEBOOK,
                     ASSIGNMENTS, STUDIES)
    ledger = ledger_frame(store)
    assert list(ledger.columns) == LEDGER_COLUMNS
    assert ledger["decision"].tolist() == ["accept", "reject", "accept"]  # three rows, none overwritten
    assert ledger["sequence"].tolist() == [1, 2, 3]
    assert ledger["decision_id"].nunique() == 3  # the same content twice still gets its own id (chained)
    assert in_force(ledger)["decision"].tolist() == ["accept"]
    assert ledger["sheet_name"].tolist() == ["s0.csv", "s1.csv", "s2.csv"]


def test_decision_ids_hash_content_and_chain_but_not_time() -> None:
    fields = {"study_id": "s", "code": "c", "decision": "accept", "reviewer": "ana", "decided_at": "2026"}
    assert decision_id(fields) == decision_id({**fields, "decided_at": "2027"})
    assert decision_id(fields) != decision_id({**fields, "reviewer": "ben"})
    assert decision_id(fields, "d1") != decision_id(fields, "d2")


def test_an_append_is_all_or_nothing(store) -> None:
    good = {c: "x" for c in LEDGER_COLUMNS} | {"decision_id": "d1", "sequence": 0, "machine_confidence": 0.5}
    bad = good | {"decision_id": "d2", "reviewer": None}  # NOT NULL column
    with pytest.raises(sa.exc.IntegrityError):
        append_decisions(store, [good, bad])
    assert ledger_frame(store).empty
    assert append_decisions(store, [good]) == 1
    assert append_decisions(store, [good]) == 0  # a stored decision_id is never written twice


def test_re_running_the_machine_never_overrides_a_decision(tmp_path: Path, store) -> None:
    import_sheet(store, sheet_with(tmp_path, "ana", ANA, ADDED), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    reviewer_rows, rejected = ledger_assign_inputs(ledger_frame(store))
    assert rejected == {("seed001", "reasons.equity"), ("seed001", "reasons.policy_mandate")}
    # the machine runs again: same hits, one with new confidence and one with another quote
    rerun = hits_of(ASSIGNMENTS).copy()
    rerun["confidence"] = 0.99
    moved = (rerun["id"] == "seed001") & (rerun["code"] == "reasons.equity")
    rerun.loc[moved, "evidence"] = "Another sentence that names inequality."
    final = assign(rerun, None, reviewer_rows=reviewer_rows, rejected=rejected).set_index(["study_id", "code"])
    assert ("seed001", "reasons.equity") not in final.index
    assert ("seed001", "reasons.policy_mandate") not in final.index
    assert final.loc[("seed001", "barriers.competition"), "method"] == "reviewer"
    assert final.loc[("seed001", "barriers.competition"), "decided_by"] == "ana"
    assert final.loc[("seed001", "facilitators.structures"), "decided_by"] == "ana"
    assert final.loc[("seed002", "benefits.wider_opportunities"), "direction"] == "mixed"
    assert final.loc[("seed003", "barriers.funding"), "evidence"] == "Grants ran out."
    assert final.loc[("seed003", "barriers.funding"), "confidence"] == 1.0
    assert (final.loc[final["method"] == "rule", "confidence"] == 0.99).all()  # undecided codes follow the machine


def test_apply_ledger_gives_what_assign_gives_with_the_same_decisions(tmp_path: Path, store) -> None:
    import_sheet(store, sheet_with(tmp_path, "ana", ANA, ADDED), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    ledger = ledger_frame(store)
    reviewer_rows, rejected = ledger_assign_inputs(ledger)
    via_assign = assign(hits_of(ASSIGNMENTS), None, reviewer_rows=reviewer_rows, rejected=rejected)
    applied = apply_ledger(ASSIGNMENTS, ledger)
    pd.testing.assert_frame_equal(applied, via_assign)
    assert len(applied) == len(ASSIGNMENTS) - 1 + 1  # one rejected, one added; the changed code swaps
    accepted = applied.set_index(["study_id", "code"]).loc[("seed001", "barriers.competition")]
    assert accepted["rule"].startswith("standalone:")  # who decided, and which rule had found it
    assert apply_ledger(applied, ledger).equals(applied)  # applying to final assignments changes nothing


def test_a_change_code_then_a_reject_of_the_new_code_removes_both(tmp_path: Path, store) -> None:
    change = {("seed001", "reasons.policy_mandate"): {"decision": "change_code", "new_code": "barriers.funding"}}
    import_sheet(store, sheet_with(tmp_path, "one", change), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    evidence = ASSIGNMENTS.set_index(["study_id", "code"]).loc[("seed001", "reasons.policy_mandate"), "evidence"]
    later = [{"assignment_id": assignment_id("seed001", "barriers.funding", evidence), "study_id": "seed001",
              "code": "barriers.funding", "evidence": evidence, "decision": "reject"}]
    import_sheet(store, sheet_with(tmp_path, "two", {}, later), "ben", CODEBOOK, ASSIGNMENTS, STUDIES)
    keys = set(zip(*[apply_ledger(ASSIGNMENTS, ledger_frame(store))[c] for c in ("study_id", "code")], strict=True))
    assert ("seed001", "barriers.funding") not in keys and ("seed001", "reasons.policy_mandate") not in keys


def test_decisions_follow_their_study_through_dedup_changes(tmp_path: Path, store) -> None:
    import_sheet(store, sheet_with(tmp_path, "ana", ANA, ADDED), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    ledger = ledger_frame(store)
    # seed001 and seed004 are two reports of one review: dedup now groups them under seed004
    groups = {s: s for s in STUDIES["study_id"]} | {"seed001": "seed004"}
    moved = remap_decisions(ledger, groups)
    assert set(moved.loc[moved["original_study_id"] == "seed001", "study_id"]) == {"seed004"}
    assert ledger["study_id"].tolist() != moved["study_id"].tolist()  # the stored ledger is not rewritten
    merged = ASSIGNMENTS.assign(study_id=ASSIGNMENTS["study_id"].map(groups))
    merged = merged.drop_duplicates(["study_id", "code"])
    final = apply_ledger(merged, moved).set_index(["study_id", "code"])
    assert final.loc[("seed004", "barriers.competition"), "decided_by"] == "ana"
    assert ("seed004", "reasons.equity") not in final.index
    # a split: the record that was the group's canonical one keeps the decisions
    split = remap_decisions(ledger, {s: s for s in STUDIES["study_id"]})
    assert split["study_id"].tolist() == ledger["study_id"].tolist()
    orphan = remap_decisions(ledger, {})
    assert orphan["study_id"].tolist() == ledger["study_id"].tolist()


def test_review_status_counts_decisions_and_unreviewed_machine_codes(tmp_path: Path, store) -> None:
    empty = review_status(ledger_frame(store), ASSIGNMENTS)
    assert (empty["decisions"], empty["machine_codes"], empty["machine_unreviewed"]) == (0, 26, 26)
    import_sheet(store, sheet_with(tmp_path, "ana", ANA, ADDED), "ana", CODEBOOK, ASSIGNMENTS, STUDIES)
    both = {("seed001", "barriers.competition"): {"decision": "reject"}}
    import_sheet(store, sheet_with(tmp_path, "ben", both), "ben", CODEBOOK, ASSIGNMENTS, STUDIES)
    ledger = ledger_frame(store)
    status = review_status(ledger, ASSIGNMENTS)
    assert status["decisions"] == 6 and status["in_force"] == 5
    assert status["by_decision"] == {"accept": 0, "reject": 2, "change_code": 1, "change_direction": 1, "add": 1}
    assert status["reviewers"] == ["ana", "ben"] and status["sheets"] == 2
    assert status["machine_unreviewed"] == 26 - 4
    assert review_status(ledger, apply_ledger(ASSIGNMENTS, ledger))["machine_unreviewed"] == 22
    mine = latest_by_reviewer(ledger)
    assert len(mine) == 6 and set(mine["reviewer"]) == {"ana", "ben"}
