"""Facets benchmark: pipeline.facets (countries, design, lenses of a study) against the plain regex path it replaced.

    python benchmarks/facets_bench.py                  3,000 real studies: ms/study per facet and overall
    python benchmarks/facets_bench.py --studies 0      every distinct title+abstract in ../shared/data
    python benchmarks/facets_bench.py --verify         also check, on every distinct text, that both paths agree

The studies are the distinct (title, abstract) pairs with an abstract among the records pipeline.ingest reads
from ../shared/data (exports and recorded API responses), evenly sampled. 'before' is `reference_facets` below:
the regex-only logic of pipeline/facets.py as it was (one case-insensitive alternation per design and lens, a
flat 518-name alternation for countries), kept here as the reference tests/test_facets.py checks the fast path
against. Each figure is the best of --repeats timed passes.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline import facets  # noqa: E402
from pipeline.errors import InputFileError  # noqa: E402
from pipeline.ingest import read_file  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
_SKIPPED_SUFFIXES = {".md", ".yaml", ".yml", ".py", ".gz", ".zip", ".html"}


# ---------------------------------------------------------------- the reference (regex-only) path


@dataclass(frozen=True)
class ReferenceGazetteer:
    country_re: re.Pattern[str]
    alias_to_country: dict[str, str]
    part_of: dict[str, str]
    not_country_re: re.Pattern[str] | None
    designs: dict[str, re.Pattern[str]]
    lenses: dict[str, re.Pattern[str]]


def reference_facets(title: str, abstract: str, *, lenses: dict[str, Any] | None = None) -> dict[str, Any]:
    """What pipeline.facets.study_facets returned before it was made fast (the same gazetteer file)."""
    gazetteer = reference_gazetteer()
    text = f"{title or ''}\n{abstract or ''}"
    countries = reference_countries(text, gazetteer)
    designs = reference_designs(text, gazetteer)
    return {
        "countries": countries,
        "country_parents": {c: gazetteer.part_of[c] for c in countries if c in gazetteer.part_of},
        "design": designs[0] if designs else "other",
        "designs": designs,
        "lenses": reference_lenses(text, gazetteer, lenses or {}),
    }


def reference_countries(text: str, gazetteer: ReferenceGazetteer) -> list[str]:
    matches = list(gazetteer.country_re.finditer(text))
    if not matches:
        return []
    blocked = [m.span() for m in gazetteer.not_country_re.finditer(text)] if gazetteer.not_country_re else []
    found: list[str] = []
    for match in matches:
        if any(start <= match.start() and match.end() <= end for start, end in blocked):
            continue
        country = gazetteer.alias_to_country[_ref_key(match.group(0))]
        if country not in found:
            found.append(country)
    return found


def reference_designs(text: str, gazetteer: ReferenceGazetteer) -> list[str]:
    present = [name for name, pattern in gazetteer.designs.items() if pattern.search(text)]
    if "quantitative" in present and "qualitative" in present and "mixed_methods" not in present:
        present.append("mixed_methods")
    return [name for name in facets.DESIGNS if name in present]


def reference_lenses(text: str, gazetteer: ReferenceGazetteer, extra: dict[str, Any]) -> list[str]:
    named = [name for name, pattern in gazetteer.lenses.items() if pattern.search(text)]
    for name, phrases in extra.items():
        if name not in named and _ref_extra_lens_re(tuple(str(p) for p in phrases)).search(text):
            named.append(name)
    return named


@lru_cache(maxsize=256)
def _ref_extra_lens_re(phrases: tuple[str, ...]) -> re.Pattern[str]:
    return _ref_any_of([_ref_phrase_re(_ref_name_pattern(p), flags=re.IGNORECASE) for p in phrases])


def _ref_any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), patterns[0].flags)


def _ref_key(name: str) -> str:
    return re.sub(r"\s+", " ", "".join("'" if ch in facets._APOSTROPHES else ch for ch in name)).strip()


def _ref_name_pattern(name: str) -> str:
    parts = []
    for ch in re.sub(r"\s+", " ", name):
        if ch in facets._APOSTROPHES:
            parts.append(f"[{facets._APOSTROPHES}]")
        elif ch == " ":
            parts.append(r"\s+")
        else:
            parts.append(re.escape(ch))
    return "".join(parts)


def _ref_phrase_re(body: str, *, flags: int = 0) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w)(?:{body})(?:c(?!\w)|(?!\w))", flags)


@lru_cache(maxsize=1)
def reference_gazetteer() -> ReferenceGazetteer:
    import yaml

    data = yaml.safe_load(facets.GAZETTEER_PATH.read_text(encoding="utf-8"))
    alias_to_country: dict[str, str] = {}
    part_of: dict[str, str] = {}
    for entry in data["countries"]:
        for name in [entry["name"], *entry.get("aliases", [])]:
            alias_to_country[_ref_key(name)] = entry["name"]
        if entry.get("part_of"):
            part_of[entry["name"]] = entry["part_of"]
    names = sorted(alias_to_country, key=len, reverse=True)
    country_re = re.compile(r"(?<![\w.])(?:" + "|".join(_ref_name_pattern(n) for n in names) + r")(?!\w)")
    languages = "(?:" + "|".join(re.escape(x) for x in data.get("languages", [])) + ")"
    blockers = [
        languages.join(_ref_name_pattern(part) for part in p.split("{lang}")) for p in data.get("not_countries", [])
    ]
    return ReferenceGazetteer(
        country_re=country_re,
        alias_to_country=alias_to_country,
        part_of=part_of,
        not_country_re=re.compile("|".join(blockers)) if blockers else None,
        designs={
            k: _ref_any_of([re.compile(p.replace(" ", r"\s+"), re.IGNORECASE) for p in v])
            for k, v in data["designs"].items()
        },
        lenses={
            k: _ref_any_of([_ref_phrase_re(p.replace(" ", r"\s+"), flags=re.IGNORECASE) for p in v])
            for k, v in data["lenses"].items()
        },
    )


# ---------------------------------------------------------------- real texts and timing


def real_studies(root: Path = DATA, *, with_abstract: bool = True) -> list[tuple[str, str]]:
    """Distinct (title, abstract) pairs of every record pipeline.ingest reads under `root`, sorted."""
    logging.disable(logging.WARNING)  # one line per file read is noise here
    try:
        pairs: set[tuple[str, str]] = set()
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in _SKIPPED_SUFFIXES):
            try:
                pairs.update((r.title or "", r.abstract or "") for r in read_file(path))
            except InputFileError:  # not a bibliographic file (a gold list, an esearch reply)
                continue
    finally:
        logging.disable(logging.NOTSET)
    return sorted(p for p in pairs if p[1] or (not with_abstract and p[0]))


def _timed(texts: list[str], facet: Callable[[str], Any], repeats: int) -> float:
    """ms per text, the best of `repeats` passes."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            facet(text)
        best = min(best, time.perf_counter() - start)
    return best / len(texts) * 1000


def _paths() -> dict[str, tuple[Callable[[str], Any], Callable[[str], Any]]]:
    """facet -> (before, after), each taking the title+abstract text study_facets reads."""
    ref, new = reference_gazetteer(), facets._load()
    return {
        "countries": (lambda t: reference_countries(t, ref), lambda t: facets._countries(t, new)),
        "designs": (lambda t: reference_designs(t, ref), lambda t: facets._designs(t, new)),
        "lenses": (lambda t: reference_lenses(t, ref, {}), lambda t: facets._lenses(t, new, {})),
        "study_facets": (lambda t: reference_facets("", t), lambda t: facets.study_facets("", t)),
    }


def verify(studies: list[tuple[str, str]]) -> int:
    """How many studies the two paths disagree on (every one is printed)."""
    differing = 0
    for title, abstract in studies:
        before, after = reference_facets(title, abstract), facets.study_facets(title, abstract)
        if before != after:
            differing += 1
            print(f"DIFFERENT: {title[:60]!r}: {before} != {after}")
    return differing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=3000, help="studies to time, evenly sampled (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    parser.add_argument("--verify", action="store_true", help="check both paths agree on every distinct text")
    args = parser.parse_args(argv)

    studies = real_studies()
    step = max(1, len(studies) // args.studies) if args.studies else 1
    sample = studies[::step][: args.studies or None]
    texts = [f"{title}\n{abstract}" for title, abstract in sample]
    print(
        f"{len(sample):,} studies (of {len(studies):,} distinct with an abstract in {DATA}), "
        f"{sum(map(len, texts)) / len(texts):,.0f} characters on average; best of {args.repeats} passes"
    )
    for before, after in _paths().values():  # compile and warm both paths before timing
        before(texts[0])
        after(texts[0])
    print(f"{'facet':<14}{'before ms':>11}{'after ms':>10}{'speed-up':>10}")
    for name, (before, after) in _paths().items():
        old, new = _timed(texts, before, args.repeats), _timed(texts, after, args.repeats)
        print(f"{name:<14}{old:>11.4f}{new:>10.4f}{old / new:>9.1f}x")
    if args.verify:
        every = real_studies(with_abstract=False)
        print(f"verify: {verify(every)} of {len(every):,} distinct titles/abstracts differ")


if __name__ == "__main__":
    main()
