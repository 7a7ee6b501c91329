"""Facets: countries (a gazetteer with demonyms and the UK's nations), study design, theoretical lens."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.facets import DESIGNS, study_facets

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"


def _seed(prefix: str) -> str:
    (path,) = SEEDS.glob(f"{prefix}_*.txt")
    return path.read_text(encoding="utf-8")


def test_egyptian_comparative_study_seed():
    facets = study_facets("", _seed("000"))
    assert facets["countries"] == ["Egypt", "China", "England"]  # "the People’s Republic of China", curly apostrophe
    assert facets["country_parents"] == {"England": "United Kingdom"}
    assert facets["design"] == "conceptual"
    assert facets["lenses"] == [
        "constructivism",
        "social_capital",
        "durkheimian_network_theory",
        "new_social_movements",
    ]


def test_configurative_review_seeds():
    facets = study_facets("School-to-school collaboration in England: a configurative review", _seed("004"))
    assert facets["design"] == "review"
    assert facets["countries"] == ["England", "United Kingdom"]  # "University of Manchester, UK"
    assert study_facets("", _seed("001"))["countries"] == ["England"]  # "the English context"


def test_muijs_west_ainscow_lenses_and_case_studies():
    facets = study_facets("", _seed("002"))
    assert facets["lenses"] == [
        "constructivism",
        "social_capital",
        "durkheimian_network_theory",
        "new_social_movements",
    ]
    assert facets["designs"] == ["case_study", "conceptual"] and facets["design"] == "case_study"


def test_demonyms_adjectives_and_the_uk_nations():
    text = (
        "Welsh and Scottish schools were compared with English academies, Northern Irish schools and schools in "
        "the Republic of Ireland. Egyptian, Finnish and Dutch teachers took part, "
        "as did schools in Britain and the U.S."
    )
    assert study_facets("", text)["countries"] == [
        "Wales",
        "Scotland",
        "England",
        "Northern Ireland",
        "Ireland",
        "Egypt",
        "Finland",
        "Netherlands",
        "United Kingdom",
        "United States",
    ]


def test_words_that_are_not_countries():
    text = (
        "Pupils learning English as an additional language, English-speaking teachers, the Chinese language, "
        "guinea pigs and turkey farms in Latin America and North America; data were collected in English."
    )
    assert study_facets("", text)["countries"] == []
    assert study_facets("", "Schools in Turkey, Chad and Georgia.")["countries"] == ["Turkey", "Chad", "Georgia"]
    assert study_facets("", "Papua New Guinea and Guinea-Bissau, not Guinea.")["countries"] == [
        "Papua New Guinea",
        "Guinea-Bissau",
        "Guinea",
    ]


@pytest.mark.parametrize(
    ("text", "design"),
    [
        ("A systematic review of 40 studies of school networks.", "review"),
        ("A mixed-methods study of three federations.", "mixed_methods"),
        ("A national survey (n = 1,200) and semi-structured interviews with heads.", "mixed_methods"),
        ("Drawing on six case studies of school partnerships.", "case_study"),
        ("A difference-in-differences analysis of the National Pupil Database.", "quantitative"),
        ("Interviews and focus groups with teachers were analysed thematically.", "qualitative"),
        ("This conceptual paper sketches a theory of networks.", "conceptual"),
        ("School collaboration in England since 2010.", "other"),
    ],
)
def test_design_precedence(text, design):
    assert study_facets("", text)["design"] == design


def test_codebook_lenses_extend_the_defaults_and_empty_input():
    facets = study_facets(
        "Professional capital in teaching school alliances", "", lenses={"tsa": ["teaching school alliances"]}
    )
    assert facets["lenses"] == ["professional_capital", "tsa"]
    assert study_facets("", "") == {
        "countries": [],
        "country_parents": {},
        "design": "other",
        "designs": [],
        "lenses": [],
    }
    assert set(DESIGNS) == {"review", "mixed_methods", "case_study", "quantitative", "qualitative", "conceptual"}
