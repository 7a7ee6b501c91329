"""Facets of a study: the countries it names, its design, and the theoretical lenses it names.

The lexicons are data (pipeline/gazetteer.yaml): every country with its other names, adjectives and demonyms
('Egyptian' -> Egypt, "the People's Republic of China" -> China, 'English' -> England), the UK's four nations
as their own places (`part_of` United Kingdom), phrases where a country word is not a country ('English
language', 'Latin America'), design cues and lens names. A codebook may add lenses of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

GAZETTEER_PATH = Path(__file__).with_name("gazetteer.yaml")
DESIGNS: tuple[str, ...] = ("review", "mixed_methods", "case_study", "quantitative", "qualitative", "conceptual")
_APOSTROPHES = "'’ʼ`"


@dataclass(frozen=True)
class _Gazetteer:
    country_re: re.Pattern[str]
    alias_to_country: dict[str, str]
    part_of: dict[str, str]
    not_country_re: re.Pattern[str] | None
    designs: dict[str, re.Pattern[str]]  # one alternation per design / lens: one search, not one per cue
    lenses: dict[str, re.Pattern[str]]


def study_facets(title: str, abstract: str, *, lenses: dict[str, Any] | None = None) -> dict[str, Any]:
    """{'countries': [...], 'country_parents': {...}, 'design': str, 'designs': [...], 'lenses': [...]}.

    countries: every country named, in order of first mention (England, Scotland, Wales and Northern Ireland are
    kept as named; `country_parents` maps them to the United Kingdom). design: the first of review,
    mixed_methods, case_study, quantitative, qualitative, conceptual whose cues occur (quantitative plus
    qualitative cues make mixed_methods), else 'other'. lenses: theoretical lenses named; `lenses` adds a
    codebook's own (name -> phrases, matched as plain phrases).
    """
    gazetteer = _load()
    text = f"{title or ''}\n{abstract or ''}"
    countries = _countries(text, gazetteer)
    designs = _designs(text, gazetteer)
    return {
        "countries": countries,
        "country_parents": {c: gazetteer.part_of[c] for c in countries if c in gazetteer.part_of},
        "design": designs[0] if designs else "other",
        "designs": designs,
        "lenses": _lenses(text, gazetteer, lenses or {}),
    }


def _countries(text: str, gazetteer: _Gazetteer) -> list[str]:
    matches = list(gazetteer.country_re.finditer(text))
    if not matches:  # most abstracts name no country: skip the (slower) scan for blocking phrases
        return []
    blocked = [m.span() for m in gazetteer.not_country_re.finditer(text)] if gazetteer.not_country_re else []
    found: list[str] = []
    for match in matches:
        if any(start <= match.start() and match.end() <= end for start, end in blocked):
            continue
        country = gazetteer.alias_to_country[_key(match.group(0))]
        if country not in found:
            found.append(country)
    return found


def _designs(text: str, gazetteer: _Gazetteer) -> list[str]:
    present = [name for name, pattern in gazetteer.designs.items() if pattern.search(text)]
    if "quantitative" in present and "qualitative" in present and "mixed_methods" not in present:
        present.append("mixed_methods")
    return [name for name in DESIGNS if name in present]


def _lenses(text: str, gazetteer: _Gazetteer, extra: dict[str, Any]) -> list[str]:
    named = [name for name, pattern in gazetteer.lenses.items() if pattern.search(text)]
    for name, phrases in extra.items():
        if name not in named and _extra_lens_re(tuple(str(p) for p in phrases)).search(text):
            named.append(name)
    return named


@lru_cache(maxsize=256)
def _extra_lens_re(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """A codebook lens's phrases as one pattern (it matches where any one of them would)."""
    return _any_of([_phrase_re(_name_pattern(p), flags=re.IGNORECASE) for p in phrases])


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that finds a match wherever one of `patterns` (all with the same flags) would."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), patterns[0].flags)


# ---------------------------------------------------------------- loading


def _key(name: str) -> str:
    """Apostrophes and runs of whitespace vary between sources; compare names without them."""
    return re.sub(r"\s+", " ", "".join("'" if ch in _APOSTROPHES else ch for ch in name)).strip()


def _name_pattern(name: str) -> str:
    parts = []
    for ch in re.sub(r"\s+", " ", name):
        if ch in _APOSTROPHES:
            parts.append(f"[{_APOSTROPHES}]")
        elif ch == " ":
            parts.append(r"\s+")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


def _phrase_re(body: str, *, flags: int = 0) -> re.Pattern[str]:
    # an OCR artefact may glue a 'c' (a misread comma) to the last word: 'Theory of Social Capitalc'
    return re.compile(rf"(?<!\w)(?:{body})(?:c(?!\w)|(?!\w))", flags)


@lru_cache(maxsize=1)
def _load() -> _Gazetteer:
    import yaml

    data = yaml.safe_load(GAZETTEER_PATH.read_text(encoding="utf-8"))
    alias_to_country: dict[str, str] = {}
    part_of: dict[str, str] = {}
    for entry in data["countries"]:
        for name in [entry["name"], *entry.get("aliases", [])]:
            alias_to_country[_key(name)] = entry["name"]
        if entry.get("part_of"):
            part_of[entry["name"]] = entry["part_of"]
    names = sorted(alias_to_country, key=len, reverse=True)
    country_re = re.compile(r"(?<![\w.])(?:" + "|".join(_name_pattern(n) for n in names) + r")(?!\w)")
    languages = "(?:" + "|".join(re.escape(x) for x in data.get("languages", [])) + ")"
    blockers = [
        languages.join(_name_pattern(part) for part in p.split("{lang}")) for p in data.get("not_countries", [])
    ]
    not_country_re = re.compile("|".join(blockers)) if blockers else None
    return _Gazetteer(
        country_re=country_re,
        alias_to_country=alias_to_country,
        part_of=part_of,
        not_country_re=not_country_re,
        designs={
            k: _any_of([re.compile(p.replace(" ", r"\s+"), re.IGNORECASE) for p in v]) for k, v in data["designs"].items()
        },
        lenses={
            k: _any_of([_phrase_re(p.replace(" ", r"\s+"), flags=re.IGNORECASE) for p in v])
            for k, v in data["lenses"].items()
        },
    )
