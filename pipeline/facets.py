"""Facets of a study: the countries it names, its design, and the theoretical lenses it names.

The lexicons are data (pipeline/gazetteer.yaml): every country with its other names, adjectives and demonyms
('Egyptian' -> Egypt, "the People's Republic of China" -> China, 'English' -> England), the UK's four nations
as their own places (`part_of` United Kingdom), phrases where a country word is not a country ('English
language', 'Latin America'), design cues and lens names. A codebook may add lenses of its own.

Speed (a million studies): the country names form one trie-shaped pattern, so the regex engine skips every
position whose character cannot start a name; every design and lens cue carries the words one of which any
match of it must contain (read from the parsed cue), so a cue's regex runs only on texts holding one of them.
benchmarks/facets_bench.py measures both against the plain regex path, which tests/test_facets.py checks they
equal.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

GAZETTEER_PATH = Path(__file__).with_name("gazetteer.yaml")
DESIGNS: tuple[str, ...] = ("review", "mixed_methods", "case_study", "quantitative", "qualitative", "conceptual")
_APOSTROPHES = "'’ʼ`"
# The only non-ASCII characters that re.IGNORECASE matches to an ASCII one (the `re` docs list them under
# IGNORECASE: 'İ' and 'ı' match i, 'ſ' s, the Kelvin sign k); str.lower() does not map them so, so the
# case-folded copy of a text that word filters read maps them first. tests/test_facets.py checks the list
# against every code point.
_IGNORECASE_ASCII_TWINS = "\u0130\u0131\u017f\u212a"


@dataclass(frozen=True)
class _Cue:
    pattern: re.Pattern[str]
    words: frozenset[str]  # lower-case; any match contains one of them, case-folded. Empty: always search


@dataclass(frozen=True)
class _Facet:
    """A design or lens: found where any one of its cues matches."""

    name: str
    cues: tuple[_Cue, ...]
    words: frozenset[str]  # every cue's words, to skip the facet at once
    always: bool  # some cue has no words, so the facet can never be skipped on words alone

    def found_in(self, text: str, present: frozenset[str]) -> bool:
        if not self.always and self.words.isdisjoint(present):
            return False
        return any(
            (not cue.words or not cue.words.isdisjoint(present)) and cue.pattern.search(text) for cue in self.cues
        )


@dataclass(frozen=True)
class _Gazetteer:
    country_re: re.Pattern[str]
    alias_to_country: dict[str, str]
    part_of: dict[str, str]
    not_country_re: re.Pattern[str] | None
    designs: tuple[_Facet, ...]
    lenses: tuple[_Facet, ...]
    cue_words: tuple[str, ...]  # the words of every design and lens cue, each once


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
    folded = _folded(text)
    present = _present_words(folded, gazetteer.cue_words)
    countries = _countries(text, gazetteer)
    designs = _designs(text, gazetteer, present)
    return {
        "countries": countries,
        "country_parents": {c: gazetteer.part_of[c] for c in countries if c in gazetteer.part_of},
        "design": designs[0] if designs else "other",
        "designs": designs,
        "lenses": _lenses(text, gazetteer, lenses or {}, present, folded),
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


def _designs(text: str, gazetteer: _Gazetteer, present: frozenset[str] | None = None) -> list[str]:
    """The designs whose cues occur; `present`: the cue words in the text (_present_words), if known."""
    present = _present_words(_folded(text), gazetteer.cue_words) if present is None else present
    found = [facet.name for facet in gazetteer.designs if facet.found_in(text, present)]
    if "quantitative" in found and "qualitative" in found and "mixed_methods" not in found:
        found.append("mixed_methods")
    return [name for name in DESIGNS if name in found]


def _lenses(
    text: str,
    gazetteer: _Gazetteer,
    extra: dict[str, Any],
    present: frozenset[str] | None = None,
    folded: str | None = None,
) -> list[str]:
    """The lenses named, the gazetteer's then `extra`'s; `present` and `folded` as _designs and _folded give."""
    folded = _folded(text) if folded is None else folded
    present = _present_words(folded, gazetteer.cue_words) if present is None else present
    named = [facet.name for facet in gazetteer.lenses if facet.found_in(text, present)]
    for name, phrases in extra.items():
        if name not in named and _extra_lens(tuple(str(p) for p in phrases)).found_in(text, folded):
            named.append(name)
    return named


@dataclass(frozen=True)
class _ExtraLens:
    pattern: re.Pattern[str]
    words: tuple[frozenset[str], ...]  # per phrase, as _Cue.words

    def found_in(self, text: str, folded: str) -> bool:
        if all(words and not any(word in folded for word in words) for words in self.words):
            return False
        return self.pattern.search(text) is not None


@lru_cache(maxsize=256)
def _extra_lens(phrases: tuple[str, ...]) -> _ExtraLens:
    """A codebook lens's phrases as one pattern (it matches where any one of them would)."""
    bodies = [_name_pattern(p) for p in phrases]
    return _ExtraLens(
        pattern=_any_of([_phrase_re(body, flags=re.IGNORECASE) for body in bodies]),
        words=tuple(_cue_words(_phrase_re(body, flags=re.IGNORECASE)) for body in bodies),
    )


def _any_of(patterns: list[re.Pattern[str]]) -> re.Pattern[str]:
    """One pattern that finds a match wherever one of `patterns` (all with the same flags) would."""
    if not patterns:
        return re.compile(r"(?!)")
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), patterns[0].flags)


# ---------------------------------------------------------------- word filters


def _folded(text: str) -> str:
    """`text` case-folded as re.IGNORECASE folds ASCII: a word filter (ASCII) occurs in it wherever a match does."""
    if not text.isascii():
        for twin in _IGNORECASE_ASCII_TWINS:
            if twin in text:
                text = text.replace(twin, _ascii_twin(twin))
    return text.lower()


@cache
def _ascii_twin(char: str) -> str:
    (twin,) = {a.lower() for a in map(chr, range(128)) if re.fullmatch(re.escape(a), char, re.IGNORECASE)}
    return twin


def _present_words(folded: str, words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(word for word in words if word in folded)


def _cue_words(pattern: re.Pattern[str]) -> frozenset[str]:
    """Lower-case ASCII words, one of which every match of `pattern` contains (case-folded); empty if none is
    certain. Read from the parsed pattern: its longest run of plain characters, or the runs of every branch."""
    try:  # the stdlib's own parser (private, but the filter is then read from the very pattern re compiles)
        from re import _constants, _parser  # type: ignore[attr-defined]

        return frozenset(_required_words(_parser.parse(pattern.pattern, pattern.flags), _constants) or ())
    except (ImportError, AttributeError, IndexError, TypeError, ValueError, re.error):  # unforeseen: always search
        return frozenset()


def _required_words(sequence: Any, c: Any) -> set[str] | None:
    """Words one of which any match of this parsed sequence contains, or None; the most selective choice.

    Only ASCII characters make words: re.IGNORECASE matches an ASCII character only to characters that
    _folded() turns into its lower case (ASCII ones and the twins). Look-arounds, classes and optional parts
    give no word and end a run."""
    options: list[set[str]] = []
    run: list[str] = []
    for op, arg in [*sequence, (None, None)]:
        if op is c.LITERAL and chr(arg).isascii():
            run.append(chr(arg).lower())
            continue
        if run:
            options.append({"".join(run)})
            run = []
        if op is c.SUBPATTERN:
            options.append(_required_words(arg[3], c) or set())
        elif op is c.ATOMIC_GROUP:
            options.append(_required_words(arg, c) or set())
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and arg[0] >= 1:
            options.append(_required_words(arg[2], c) or set())
        elif op is c.BRANCH:
            branches = [_required_words(branch, c) for branch in arg[1]]
            options.append(set().union(*branches) if all(branches) else set())  # type: ignore[arg-type]
    options = [o for o in options if o]
    return max(options, key=lambda o: (min(map(len, o)), -len(o))) if options else None


# ---------------------------------------------------------------- loading


def _key(name: str) -> str:
    """Apostrophes and runs of whitespace vary between sources; compare names without them."""
    return re.sub(r"\s+", " ", "".join("'" if ch in _APOSTROPHES else ch for ch in name)).strip()


def _name_pattern(name: str) -> str:
    return "".join(_name_token(ch) for ch in re.sub(r"\s+", " ", name))


def _name_token(ch: str) -> str:
    if ch in _APOSTROPHES:
        return f"[{_APOSTROPHES}]"
    return r"\s+" if ch == " " else re.escape(ch)


def _phrase_re(body: str, *, flags: int = 0) -> re.Pattern[str]:
    # an OCR artefact may glue a 'c' (a misread comma) to the last word: 'Theory of Social Capitalc'
    return re.compile(rf"(?<!\w)(?:{body})(?:c(?!\w)|(?!\w))", flags)


def _country_re(names: list[str]) -> re.Pattern[str]:
    """The names (_key()s) as one trie, matching exactly what `(?<![\\w.])(?:longest|...|shortest)(?!\\w)` would.

    Why it is the same: the branches of a trie node start with different characters (a name's spaces all read
    \\s+, its apostrophes all one class), so at most one can match and their order is free; a name ending at the
    node is tried after them, as the longer names were tried first. The leading branch on the first character
    lets the regex engine skip, in C, every position no name starts with; the look-behind moves after it.
    """
    trie: dict[str, Any] = {}
    for name in names:
        node = trie
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}
    firsts = [
        _name_token(first) + rf"(?<![\w.]{_name_token(first)})" + _trie_pattern(node)
        for first, node in sorted(trie.items())
    ]
    return re.compile("(?:" + "|".join(firsts) + r")(?!\w)")


def _trie_pattern(node: dict[str, Any]) -> str:
    branches = [_name_token(ch) + _trie_pattern(child) for ch, child in sorted(node.items()) if ch]
    if branches and "" in node:
        branches.append("")  # the name ending here: last, as the shorter name
    return _alternation(branches)


def _alternation(branches: list[str]) -> str:
    if len(branches) <= 1:
        return "".join(branches)
    return "(?:" + "|".join(branches) + ")"


def _not_country_re(phrases: list[str], languages: list[str]) -> re.Pattern[str] | None:
    """The blocking phrases ('{lang}': any of `languages`) as one pattern finding exactly the spans that
    `phrase|phrase|...` (each '{lang}' read `(?:language|language|...)`) finds.

    The alternatives, languages spelt out in the order the regex engine would try them, become a trie whose
    branches at a node are grouped by their next token. That keeps every match: tokens that differ (a
    character, \\s+, the apostrophe class) never match the same text, so only an alternative that ends at the
    node competes with the others, and it ends the node, as it always matched before the ones after it.
    """
    langs = languages or [""]  # no languages: '{lang}' read (?:), the empty string
    if not phrases:
        return None
    if any(re.search(rf"[\s{_APOSTROPHES}]", lang) for lang in langs):  # tokens that could overlap: no trie
        pattern = "(?:" + "|".join(re.escape(x) for x in languages) + ")"
        return re.compile("|".join(pattern.join(_name_pattern(part) for part in p.split("{lang}")) for p in phrases))
    return re.compile(_ordered_trie([tokens for phrase in phrases for tokens in _phrase_tokens(phrase, langs)]))


def _phrase_tokens(phrase: str, languages: list[str]) -> list[list[str]]:
    parts = [[_name_token(ch) for ch in re.sub(r"\s+", " ", part)] for part in phrase.split("{lang}")]
    spelt = []
    for choice in itertools.product(languages, repeat=len(parts) - 1):  # first '{lang}' slowest, as tried
        tokens = list(parts[0])
        for language, part in zip(choice, parts[1:], strict=True):
            tokens += [re.escape(ch) for ch in language] + part
        spelt.append(tokens)
    return spelt


def _ordered_trie(alternatives: list[list[str]]) -> str:
    """`alternatives` (token lists, tried in order) as one trie pattern; see _not_country_re for why it is exact."""
    groups: dict[str, list[list[str]]] = {}
    ends = False
    for tokens in alternatives:
        if not tokens:
            ends = True  # matched here, so no alternative after it is ever tried
            break
        groups.setdefault(tokens[0], []).append(tokens[1:])
    branches = [token + _ordered_trie(rest) for token, rest in groups.items()]
    return _alternation(branches + [""] if ends and branches else branches)


def _facets(cue_lists: dict[str, list[str]], compile_cue: Any) -> tuple[_Facet, ...]:
    facets = []
    for name, patterns in cue_lists.items():
        compiled = [compile_cue(p.replace(" ", r"\s+")) for p in patterns]
        cues = tuple(_Cue(pattern, _cue_words(pattern)) for pattern in compiled)
        words = frozenset().union(*(cue.words for cue in cues))
        facets.append(_Facet(name, cues, words, always=any(not cue.words for cue in cues)))
    return tuple(facets)


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
    designs = _facets(data["designs"], lambda p: re.compile(p, re.IGNORECASE))
    lenses = _facets(data["lenses"], lambda p: _phrase_re(p, flags=re.IGNORECASE))
    return _Gazetteer(
        country_re=_country_re(list(alias_to_country)),
        alias_to_country=alias_to_country,
        part_of=part_of,
        not_country_re=_not_country_re(data.get("not_countries", []), data.get("languages", [])),
        designs=designs,
        lenses=lenses,
        cue_words=tuple(sorted(frozenset().union(*(f.words for f in designs + lenses)))),
    )
