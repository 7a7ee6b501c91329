"""Facets: countries (a gazetteer with demonyms and the UK's nations), study design, theoretical lens."""

from __future__ import annotations

import json
import random
import re
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


# ---------------------------------------------------------------- the fast path equals the plain regex path
# benchmarks/facets_bench.py keeps the regex-only logic facets.py had before its word filters and tries
# (reference_facets); these check both give the same facets, on real texts and on texts built to trip them.

CODEBOOK_LENSES = {  # extra lenses as a codebook gives them: several words, apostrophes, non-ASCII, no ASCII word
    "tsa": ["teaching school alliances", "teaching school alliance"],
    "bourdieusian": ["Bourdieu's capital", "field theory"],
    "pedagogy": ["pédagogie différenciée"],
    "greek_lens": ["παιδεία"],
    "network": ["network"],
}
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="module")
def real_studies() -> list[tuple[str, str]]:
    """Every distinct (title, abstract) in the real exports and responses of tests/data, and the seeds."""
    from benchmarks.facets_bench import real_studies as read_studies

    studies = set(read_studies(DATA, with_abstract=False))
    studies.update(("", path.read_text(encoding="utf-8")) for path in sorted(SEEDS.glob("*.txt")))
    gold = (DATA / "coding" / "gold.jsonl").read_text(encoding="utf-8").splitlines()
    studies.update(("", json.loads(line)["text"]) for line in gold[::5])
    assert len(studies) > 400
    return sorted(studies)


def _assert_same_facets(studies: list[tuple[str, str]]) -> None:
    from benchmarks.facets_bench import reference_facets

    for title, abstract in studies:
        expected = reference_facets(title, abstract, lenses=CODEBOOK_LENSES)
        assert study_facets(title, abstract, lenses=CODEBOOK_LENSES) == expected, (title, abstract[:300])


def test_the_fast_path_equals_the_regex_path_on_real_texts(real_studies):
    _assert_same_facets(real_studies)


def _twins(text: str) -> str:
    """The non-ASCII letters re.IGNORECASE matches to s, k and i, where str.lower() would not find them."""
    return text.replace("s", "ſ").replace("k", "\u212a").replace("i", "ı").replace("I", "İ")


VARIANTS = {
    "upper": str.upper,
    "lower": str.lower,
    "whitespace runs": lambda t: t.replace(" ", " \t\n  "),
    "curly apostrophes": lambda t: t.replace("'", "’").replace("’s", "ʼs"),
    "OCR c before punctuation": lambda t: re.sub(r"(\w)([,.;:)])", r"\1c\2", t),
    "OCR c after every word": lambda t: re.sub(r"(\w)\b", r"\1c", t),
    "non-ASCII twins": _twins,
    "upper-case twins": lambda t: _twins(t.upper().replace("S", "s").replace("K", "k")),
    "accents and dashes": lambda t: t.replace("e", "é").replace(" ", "\u00a0").replace("-", "\u2011"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_fast_path_equals_the_regex_path_on_variants(real_studies, variant):
    change = VARIANTS[variant]
    studies = [(change(title), change(abstract)) for title, abstract in real_studies[::12]]
    _assert_same_facets(studies)


def test_the_fast_path_equals_the_regex_path_on_gazetteer_phrases_run_together():
    """Random runs of the gazetteer's own names, blocking phrases and cue words, in every case, joined by spaces,
    punctuation, apostrophes or nothing: where a trie or word filter could part from the flat regexes."""
    import yaml

    from pipeline.facets import GAZETTEER_PATH

    data = yaml.safe_load(GAZETTEER_PATH.read_text(encoding="utf-8"))
    names = [n for entry in data["countries"] for n in [entry["name"], *entry.get("aliases", [])]]
    blockers = [p.replace("{lang}", lang) for p in data["not_countries"] for lang in data["languages"][:6]]
    cues = [w for group in ("designs", "lenses") for cue in data[group].values() for w in cue]
    words = [re.sub(r"\(\?:|[()?\[\]\\|]", "", w) for w in cues]  # the cues' plain words, roughly
    vocabulary = names + blockers + words + data["languages"] + ["Guinea-", "New", "the", "in", "U.S", "Kong SARS"]
    joiners = [" ", "  ", "\n", ", ", ". ", "-", "'", "’", "c ", "", "s ", "n ", "(n = 3", "á "]
    cases = [str, str.lower, str.upper, str.title, _twins]
    rng = random.Random(20240611)
    studies = []
    for _ in range(1500):
        pieces = [rng.choice(cases)(rng.choice(vocabulary)) + rng.choice(joiners) for _ in range(rng.randint(1, 12))]
        studies.append(("", "".join(pieces)))
    _assert_same_facets(studies)


def _instance(sequence, rng: random.Random) -> str:
    """A random text the parsed pattern matches, optional parts often left out (look-arounds and \\b are not
    honoured: the reference path decides whether the text matches)."""
    from re import _constants as c

    out = []
    for op, arg in sequence:
        if op is c.LITERAL:
            out.append(chr(arg))
        elif op is c.IN:
            out.append(_class_member(arg, rng))
        elif op in (c.NOT_LITERAL, c.ANY):
            out.append("#")
        elif op is c.SUBPATTERN:
            out.append(_instance(arg[3], rng))
        elif op is c.BRANCH:
            out.append(_instance(rng.choice(arg[1]), rng))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT):
            low, high, item = arg
            out.extend(_instance(item, rng) for _ in range(rng.randint(low, min(high, low + 2))))
    return "".join(out)


def _class_member(items, rng: random.Random) -> str:
    from re import _constants as c

    if items[0][0] is c.NEGATE:
        return "#"
    op, arg = rng.choice(items)
    if op is c.LITERAL:
        return chr(arg)
    if op is c.RANGE:
        return chr(rng.randint(*arg))
    return {c.CATEGORY_DIGIT: "7", c.CATEGORY_SPACE: rng.choice([" ", "\t", "\n", "\u00a0"])}.get(arg, "a")


def test_every_cue_is_found_as_before_in_random_texts_it_matches():
    """Texts generated from every design and lens cue (optional parts in or out, every case, the OCR 'c'):
    the word filter read from a cue must let each of its matches through."""
    from re import _parser

    from benchmarks.facets_bench import reference_facets
    from pipeline.facets import _load

    gazetteer = _load()
    rng = random.Random(7)
    cases = [str, str.lower, str.upper, str.title, _twins]
    found = tried = 0
    for kind, facets in (("designs", gazetteer.designs), ("lenses", gazetteer.lenses)):
        for facet in facets:
            for cue in facet.cues:
                parsed = _parser.parse(cue.pattern.pattern, cue.pattern.flags)
                for _ in range(8):
                    text = f"In this {rng.choice(cases)(_instance(parsed, rng))}, we"
                    expected = reference_facets("", text)
                    assert study_facets("", text) == expected, text
                    found += facet.name in expected[kind]
                    tried += 1
    assert found > 0.9 * tried  # the generated texts do exercise the cues


def test_only_four_non_ascii_characters_ignorecase_to_ascii():
    """The word filters read a case-folded copy of the text; it is exact only if these are all the non-ASCII
    characters re.IGNORECASE matches to an ASCII one (checked for every code point, every ASCII character)."""
    from pipeline.facets import _IGNORECASE_ASCII_TWINS, _ascii_twin, _folded

    every = "".join(map(chr, range(0x80, 0x110000)))
    twins = {m.group() for a in map(chr, range(128)) for m in re.finditer(re.escape(a), every, re.IGNORECASE)}
    assert twins == set(_IGNORECASE_ASCII_TWINS)
    assert [_ascii_twin(t) for t in _IGNORECASE_ASCII_TWINS] == ["i", "i", "s", "k"]
    assert _folded("İnterviews, ınterviews, ſurvey, \u212aey") == "interviews, interviews, survey, key"


def test_cue_words_are_read_from_the_cue_pattern():
    from pipeline.facets import _cue_words, _phrase_re

    def words(pattern: str, **kw) -> set[str]:
        return set(_cue_words(re.compile(pattern.replace(" ", r"\s+"), re.IGNORECASE)))

    assert words("systematic (?:literature )?review") == {"systematic"}  # the longest word
    assert words("review of (?:the )?(?:evidence|literature|research)") == {"evidence", "literature", "research"}
    assert words(r"\brcts?\b") == {"rct"}
    assert words(r"\(n ?= ?\d") == {"(n"}
    assert words(r"\d+ schools?") == {"school"}
    assert words(r"\d+|[a-z]+") == set()  # no certain word: always searched
    assert words("élève") == {"ve"}  # non-ASCII ends a word (its case-folding is not str.lower's)
    ocr = _phrase_re(r"social\s+capital", flags=re.IGNORECASE)
    assert set(_cue_words(ocr)) == {"capital"}  # 'Capitalc' (an OCR comma) still holds it
    facets = study_facets("", "The Theory of Social Capitalc and ſocial capital")
    assert facets["lenses"] == ["social_capital"]


def test_extra_lenses_without_an_ascii_word_are_still_found():
    facets = study_facets("", "Η παιδεία and pédagogie  différenciée", lenses=CODEBOOK_LENSES)
    assert facets["lenses"] == ["pedagogy", "greek_lens"]
