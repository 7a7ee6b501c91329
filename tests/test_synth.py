"""The evidence-synthesis matrix: wide and long forms, per-code summaries, crosstabs by facet.

Fixture: tests/data/export/ (the five bundled seeds as studies, and the rule engine's codes for them; see README).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from pipeline.codebook import Code, Codebook, load_codebook
from pipeline.errors import ReviewError
from pipeline.synth import (
    LONG_COLUMNS,
    SUMMARY_COLUMNS,
    WIDE_STUDY_COLUMNS,
    build_matrix,
    cell_text,
    year_band,
)

REPO = Path(__file__).resolve().parents[1]
EXPORT_DATA = REPO / "tests" / "data" / "export"
CODEBOOK = REPO / "codebook" / "school_to_school.yaml"


def load_seed_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(assignments, studies) as the assignment stage hands them over."""
    studies = pd.read_csv(EXPORT_DATA / "studies.csv", keep_default_na=False, dtype={"year": "Int64"})
    assignments = pd.read_csv(EXPORT_DATA / "assignments.csv", keep_default_na=False, dtype={"confidence": float})
    return assignments, studies


def reviewer_row(study_id: str, code: str, evidence: str, *, direction: str = "", name: str = "Ana") -> dict:
    category = code.split(".")[0]
    return {"study_id": study_id, "code": code, "category": category, "direction": direction, "evidence": evidence,
            "method": "reviewer", "confidence": 1.0, "decided_by": name, "assignment_id": f"rev-{study_id}-{code}"}


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="module")
def seed_matrix(codebook: Codebook):
    assignments, studies = load_seed_frames()
    return build_matrix(assignments, studies, codebook)


def test_wide_form_has_one_row_per_study_and_one_column_per_code_in_codebook_order(seed_matrix, codebook):
    wide = seed_matrix.wide
    assert list(wide.columns) == WIDE_STUDY_COLUMNS + codebook.ids()
    # Oldest first, studies without a year last; the id breaks the tie between the two 2020 studies by title.
    assert list(wide["study_id"]) == ["seed003", "seed004", "seed001", "seed000", "seed002"]
    seed004 = wide.set_index("study_id").loc["seed004"]
    assert seed004["n_codes"] == 10
    assert seed004["benefits.student_outcomes"].startswith("[supporting] - Teachers, school leaders")
    assert seed004["benefits.student_outcomes"].endswith("(rule, 0.90)")
    assert seed004["reasons.isolation"] == ""
    # seed000 (OCR-damaged text) got no code from the rules: it stays in the matrix with an empty row.
    assert wide.set_index("study_id").loc["seed000", "n_codes"] == 0


def test_long_form_joins_study_facets_and_code_metadata(seed_matrix, codebook):
    long = seed_matrix.long
    assert list(long.columns) == LONG_COLUMNS
    assert len(long) == 28
    row = long[(long["study_id"] == "seed002") & (long["code"] == "benefits.system_capacity")].iloc[0]
    assert row["direction"] == "mixed"
    assert row["code_label"] == codebook.code("benefits.system_capacity").label
    assert row["origin"] == "deductive"
    assert row["design"] == "conceptual"
    assert row["evidence"].startswith("It concludes that, under the right circumstances")


def test_summary_counts_studies_directions_years_and_contexts(seed_matrix, codebook):
    summary = seed_matrix.summary.set_index("code")
    assert list(seed_matrix.summary.columns) == SUMMARY_COLUMNS
    assert list(summary.index) == codebook.ids()  # every code, so codes without evidence show as gaps
    policy = summary.loc["reasons.policy_mandate"]
    assert (policy["n_studies"], policy["by_rule"], policy["by_reviewer"]) == (2, 2, 0)
    assert policy["years"] == "2020"
    assert policy["countries"] == "England (2)"
    assert pd.isna(policy["supporting"])  # reasons have no direction
    capacity = summary.loc["benefits.system_capacity"]
    assert (capacity["n_studies"], capacity["supporting"], capacity["contrasting"], capacity["mixed"]) == (2, 1, 0, 1)
    assert capacity["designs"] == "case_study (1); conceptual (1)"
    assert summary.loc["benefits.leadership_capacity", "n_studies"] == 0


def test_crosstabs_count_distinct_studies_by_country_design_and_year_band(seed_matrix):
    country = seed_matrix.crosstabs["country"].set_index("code")
    assert seed_matrix.facet_values["country"] == ["England", "China", "Egypt", "not stated"]
    assert country.loc["reasons.school_improvement", ["England", "not stated", "total"]].tolist() == [1, 2, 3]
    design = seed_matrix.crosstabs["design"].set_index("code")
    assert seed_matrix.facet_values["design"] == ["review", "case_study", "conceptual"]
    assert design.loc["barriers.competition", ["review", "case_study", "conceptual"]].tolist() == [2, 0, 0]
    years = seed_matrix.crosstabs["year_band"].set_index("code")
    assert seed_matrix.facet_values["year_band"] == ["2015-2019", "2020-2024", "no year"]
    assert years.loc["benefits.equity", ["2015-2019", "2020-2024", "no year"]].tolist() == [1, 0, 1]


def test_a_study_in_two_countries_counts_once_in_each_and_once_in_total(codebook):
    assignments, studies = load_seed_frames()
    extra = pd.DataFrame([reviewer_row("seed000", "reasons.school_improvement", "to improve schools")])
    matrix = build_matrix(pd.concat([assignments, extra], ignore_index=True), studies, codebook)
    row = matrix.crosstabs["country"].set_index("code").loc["reasons.school_improvement"]
    assert row[["England", "China", "Egypt", "not stated", "total"]].tolist() == [2, 1, 1, 2, 4]
    summary = matrix.summary.set_index("code").loc["reasons.school_improvement"]
    assert (summary["n_studies"], summary["by_reviewer"], summary["by_rule"]) == (4, 1, 3)
    cell = matrix.wide.set_index("study_id").loc["seed000", "reasons.school_improvement"]
    assert cell == "to improve schools (reviewer Ana, 1.00)"


def test_year_bands_cover_every_band_between_the_first_and_last_study(codebook):
    assignments, studies = load_seed_frames()
    studies.loc[studies["study_id"] == "seed000", "year"] = 2003
    matrix = build_matrix(assignments, studies, codebook)
    assert matrix.facet_values["year_band"] == ["2000-2004", "2005-2009", "2010-2014", "2015-2019", "2020-2024",
                                                "no year"]
    assert year_band(2017) == "2015-2019" and year_band(2020) == "2020-2024"
    assert year_band(pd.NA) == "no year" and year_band(None) == "no year"


def test_inductive_and_unknown_codes_are_marked(codebook):
    inductive = Code(id="facilitators.digital_platforms", category="facilitators", name="digital_platforms",
                     label="Digital platforms", definition="Online tools that connect schools.", origin="inductive",
                     phrases=("online platform",))
    extended = dataclasses.replace(codebook, codes=codebook.codes + (inductive,))
    assignments, studies = load_seed_frames()
    extra = pd.DataFrame([
        reviewer_row("seed001", "facilitators.digital_platforms", "an online platform linked the schools"),
        reviewer_row("seed001", "barriers.ofsted_fear", "fear of inspection"),
    ])
    matrix = build_matrix(pd.concat([assignments, extra], ignore_index=True), studies, extended)
    summary = matrix.summary.set_index("code")
    assert summary.loc["facilitators.digital_platforms", "origin"] == "inductive"
    assert summary.loc["barriers.ofsted_fear", "origin"] == "unknown"
    # Display order: categories in order, so the new facilitator sits before the barriers.
    codes = list(matrix.codes["code"])
    assert codes.index("facilitators.digital_platforms") < codes.index("barriers.competition")
    assert "facilitators.digital_platforms" in matrix.wide.columns


def test_two_rows_for_one_study_and_code_share_a_cell_and_count_once(codebook):
    assignments, studies = load_seed_frames()
    extra = pd.DataFrame([reviewer_row("seed004", "barriers.competition", "schools compete for pupils")])
    matrix = build_matrix(pd.concat([assignments, extra], ignore_index=True), studies, codebook)
    cell = matrix.wide.set_index("study_id").loc["seed004", "barriers.competition"]
    assert cell.count(" | ") == 1 and "schools compete for pupils (reviewer Ana, 1.00)" in cell
    assert matrix.summary.set_index("code").loc["barriers.competition", "n_studies"] == 2


def test_input_order_does_not_change_the_matrix(seed_matrix, codebook):
    assignments, studies = load_seed_frames()
    shuffled = build_matrix(
        assignments.sample(frac=1, random_state=3), studies.sample(frac=1, random_state=5), codebook
    )
    pd.testing.assert_frame_equal(shuffled.wide, seed_matrix.wide)
    pd.testing.assert_frame_equal(shuffled.long, seed_matrix.long)
    pd.testing.assert_frame_equal(shuffled.summary, seed_matrix.summary)
    for facet, table in seed_matrix.crosstabs.items():
        pd.testing.assert_frame_equal(shuffled.crosstabs[facet], table)


def test_no_assignments_gives_an_all_gap_matrix(codebook):
    _, studies = load_seed_frames()
    empty = pd.DataFrame(columns=["study_id", "code", "category", "direction", "evidence", "method", "confidence",
                                  "decided_by", "assignment_id"])
    matrix = build_matrix(empty, studies, codebook)
    assert len(matrix.long) == 0 and len(matrix.wide) == 5
    assert matrix.summary["n_studies"].sum() == 0
    assert matrix.crosstabs["country"]["total"].sum() == 0


def test_cell_text_names_direction_reviewer_and_confidence():
    row = {"direction": "contrasting", "evidence": "no effect on attainment", "method": "reviewer",
           "decided_by": "Sam", "confidence": 1.0}
    assert cell_text(row) == "[contrasting] no effect on attainment (reviewer Sam, 1.00)"
    assert cell_text({"direction": "", "evidence": "", "method": "topic", "decided_by": "machine",
                      "confidence": 0.4213}) == "(no quote) (topic, 0.42)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a, s: (a.drop(columns=["evidence"]), s),
         "the assignments table has no 'evidence' column; give a table with the columns study_id, code, category, "
         "direction, evidence, method, confidence, decided_by, assignment_id."),
        (lambda a, s: (a, s.drop(columns=["study_id"])),
         "the studies table has no 'study_id' column; give a table with the columns study_id, title, authors, year, "
         "doi, venue, abstract, countries, design, lens, records."),
        (lambda a, s: (a, s[s["study_id"] != "seed004"]),
         "1 assigned study_id(s) are not in the studies table (first: 'seed004'); pass the studies table the "
         "assignments were made from."),
        (lambda a, s: (a.assign(direction=a["direction"].replace("mixed", "partly")), s),
         "the assignments table has direction 'partly', which is not one of '', 'supporting', 'contrasting', "
         "'mixed'; correct that column."),
        (lambda a, s: (a.assign(method="machine"), s),
         "the assignments table has method 'machine', which is not one of 'rule', 'topic', 'reviewer'; correct "
         "that column."),
        (lambda a, s: (a, pd.concat([s, s.head(1)])),
         "the studies table has 1 study_id(s) on more than one row (first: 'seed000'); give one row per study."),
    ],
)
def test_bad_input_raises_one_sentence(codebook, change, message):
    assignments, studies = load_seed_frames()
    bad_assignments, bad_studies = change(assignments, studies)
    with pytest.raises(ReviewError) as raised:
        build_matrix(bad_assignments, bad_studies, codebook)
    assert str(raised.value) == message
