"""The codebook: the bundled school-to-school codebook is complete and valid; a broken one lists every problem."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.codebook import (
    CATEGORIES,
    REQUIRED_CODE_IDS,
    check_codebook,
    codebook_from_dict,
    load_codebook,
)
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "codebook" / "school_to_school.yaml"
BAD = ROOT / "tests" / "data" / "coding" / "bad_codebook.yaml"


@pytest.fixture(scope="module")
def bundled():
    return load_codebook(BUNDLED)


def _minimal() -> dict:
    return {
        "name": "tiny",
        "categories": {"barriers": {"label": "Barriers", "definition": "What hinders.", "cues": ["hinder"]}},
        "codes": [{"id": "barriers.funding", "label": "Funding", "definition": "Money.", "phrases": ["funding"]}],
    }


def test_bundled_codebook_is_valid_and_has_every_required_code(bundled):
    assert check_codebook(BUNDLED) == []
    assert set(REQUIRED_CODE_IDS) <= set(bundled.ids())
    assert len(bundled.ids()) == len(set(bundled.ids()))
    # 'equity' is both a reason and a benefit, as DESIGN.md lists it
    assert bundled.code("reasons.equity").category == "reasons"
    assert bundled.code("benefits.equity").category == "benefits"
    assert set(bundled.categories) == set(CATEGORIES)
    assert bundled.categories["benefits"].directional and not bundled.categories["barriers"].directional


def test_every_bundled_code_can_be_applied_by_hand(bundled):
    for code in bundled.codes:
        assert code.label.strip() and len(code.definition.split()) >= 12, code.id
        assert code.include.strip() and code.exclude.strip(), code.id
        assert len(code.examples) >= 2, code.id
        assert len(code.seed_words) >= 4, code.id
        assert len(code.phrases) + len(code.lemmas) + len(code.standalone) >= 8, code.id
        assert code.origin == "deductive", code.id
        assert code.id == f"{code.category}.{code.name}"


def test_benefit_examples_carry_a_valid_direction(bundled):
    directions = {e.direction for c in bundled.codes if c.category == "benefits" for e in c.examples}
    assert directions == {"supporting", "contrasting", "mixed"}
    assert all(not e.direction for c in bundled.codes if c.category != "benefits" for e in c.examples)


def test_category_cues_and_modifiers_are_loaded(bundled):
    assert "hinder" in bundled.categories["barriers"].cues
    assert "enabler" in bundled.categories["facilitators"].cues
    assert "led to" in bundled.categories["benefits"].cues
    assert "in response to" in bundled.categories["reasons"].cues
    assert "little research" in bundled.modifiers.gap
    assert "under the right circumstances" in bundled.modifiers.conditional
    assert "no relationship" in bundled.directions["contrasting"]
    assert "constructivism" in bundled.lenses


def test_broken_codebook_lists_every_problem_with_its_location():
    problems = check_codebook(BAD)
    expected = [
        "top level: unknown key 'colour'",
        "codes -> benefits.outcomes: unknown key 'colour'",
        "codes -> benefits.outcomes -> origin: must be 'deductive' or 'inductive', not 'emergent'",
        "categories -> barriers -> cue_regexes -> 0: broken regular expression 'motivat('",
        "categories -> benefits -> definition: must not be empty",
        "categories -> obstacles: unknown category 'obstacles'",
        "directions -> sideways: unknown direction 'sideways'",
        "codes -> barriers.funding -> regexes -> 0: broken regular expression 'short-term (funding'",
        "codes -> barriers.funding -> patterns -> 2: unknown token attribute 'LEMA'",
        "codes -> barriers.funding -> id: duplicate id 'barriers.funding'",
        "codes -> Barriers-Time -> id: 'Barriers-Time' is not of the form category.name",
        "codes -> reasons.policy -> id: unknown category 'reasons'",
        "codes -> benefits.outcomes -> definition: must not be empty",
        "codes -> benefits.outcomes -> examples -> 0 -> direction: unknown direction 'upwards'",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), (start, problems)
    assert len(problems) == len(expected)
    # the valid patterns of the same code are not reported
    assert not any("patterns -> 0" in p or "patterns -> 1" in p for p in problems)


def test_load_refuses_a_broken_codebook_with_one_error_listing_all_problems():
    with pytest.raises(ConfigError) as caught:
        load_codebook(BAD)
    error = caught.value
    assert error.path == str(BAD)
    assert len(error.problems) == 14
    assert str(error).startswith(f"{BAD} has 14 problem(s): ")
    assert "codes -> barriers.funding -> patterns -> 2: unknown token attribute 'LEMA'" in str(error)


def test_spacy_rejections_are_reported_in_the_codebook_own_terms(tmp_path):
    data = _minimal()
    data["codes"][0]["patterns"] = [
        [{"LOWER": {"IN": "abc"}}],
        [{"LOWER": "short"}, {"LOWER": "term", "OP": "*x"}],
        [{"IS_ALPHA": True}],
        [{"LOWER": {"REGEX": "fund("}}],
        [],
    ]
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    problems = check_codebook(path)
    assert any(p.startswith("codes -> barriers.funding -> patterns -> 0 -> 0 -> LOWER") for p in problems)
    assert any(p.startswith("codes -> barriers.funding -> patterns -> 1 -> 1 -> OP") for p in problems)
    assert any(p.startswith("codes -> barriers.funding -> patterns -> 2: no required token") for p in problems)
    assert any(p.startswith("codes -> barriers.funding -> patterns -> 3: broken regular expression") for p in problems)
    assert "codes -> barriers.funding -> patterns -> 4: a token pattern must have at least one token" in problems


def test_yaml_mistakes_are_located(tmp_path):
    duplicate = tmp_path / "dup.yaml"
    duplicate.write_text("name: a\nname: b\ncategories: {}\ncodes: []\n", encoding="utf-8")
    assert "line 2: duplicate key 'name' (first at line 1)" in check_codebook(duplicate)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: a\ncodes: [\n", encoding="utf-8")
    (problem,) = check_codebook(broken)
    assert problem.startswith("line 3, column 1: not valid YAML")
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n", encoding="utf-8")
    assert check_codebook(listing) == ["the codebook must be a YAML mapping with 'name', 'categories' and 'codes'"]
    missing = tmp_path / "nowhere.yaml"
    assert check_codebook(missing)[0].startswith("file not found")
    with pytest.raises(ConfigError):
        load_codebook(missing)


def test_missing_keys_empty_rules_and_wrong_types(tmp_path):
    data = _minimal()
    del data["codes"][0]["label"]
    data["codes"].append({"id": "barriers.time", "label": "Time", "definition": "No time."})
    data["codes"].append({"id": "barriers.cost", "label": "Cost", "definition": "Costs.", "phrases": "cost"})
    path = tmp_path / "codebook.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    problems = check_codebook(path)
    assert "codes -> barriers.funding: missing key 'label'" in problems
    assert any(p.startswith("codes -> barriers.time: no rules") for p in problems)
    assert any(p.startswith("codes -> barriers.cost -> phrases") for p in problems)


def test_codebook_from_dict_builds_dataclasses():
    data = _minimal()
    data["codes"][0]["examples"] = ["Funding ran out.", {"text": "Grants ended."}]
    codebook = codebook_from_dict(data)
    code = codebook.code("barriers.funding")
    assert (code.category, code.name, code.phrases) == ("barriers", "funding", ("funding",))
    assert [e.text for e in code.examples] == ["Funding ran out.", "Grants ended."]
    assert codebook.categories["barriers"].cues == ("hinder",)
    with pytest.raises(KeyError):
        codebook.code("barriers.nothing")
    data["codes"][0]["id"] = "barriers"
    with pytest.raises(ConfigError, match="is not of the form category.name"):
        codebook_from_dict(data)
