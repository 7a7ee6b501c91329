"""The rule engine: one sentence at a time, a code's concept plus its category's cue, read through modifiers.

For each sentence:
1. matches: concepts (phrases on LOWER; lemmas on the lemma; token patterns; regexes), standalone phrases,
   category cues, modifiers (negation, gap, conditional, inquiry, finding, clause breaks) and direction cues.
   Blockers ("academy trust", "London Challenge", "mixed methods") cancel any match they overlap.
2. overlapping concepts: the longest wins ("leadership opportunities" over "leadership"); a cue inside a concept
   is not a cue ("mutual challenge"); overlapping cues: the longest wins ("to raise" over "raise").
3. category: a standalone phrase carries its own; otherwise the nearest cue (in tokens, within MAX_CUE_DISTANCE)
   of a category that has a code for the concept decides, and no cue means no code.
4. meaning: a gap ("little research") means no code in the sentence; an inquiry ("whether", "we examine") without
   a finding word means no benefit; a negation in the clause just before or inside concept+cue suppresses the
   code, or makes a benefit contrasting; a conditional in the same clause (split at ';', 'but', ...) or a mixed
   cue in the sentence makes a benefit mixed.
5. confidence in [0, 1]: 0.85 for a standalone phrase; for concept + cue 0.9 / 0.8 / 0.7 / 0.6 as the cue is
   within 2 / 6 / 12 / more tokens.

Before any of this, a study is skipped when it names none of the codebook's `scope` words (off-topic records
of a search) or does not look like English. Two paths then give the same hits (tests assert it on real
abstracts and on generated text):
- the fast path (`code_text`): the pre-filter (prefilter.Trigger, one regex per word class) passes a text to
  spaCy only if it holds a standalone phrase's word or both a concept's and a cue's; a long text is cut into
  sentence chunks and only candidate chunks are parsed. In the doc, only sentences whose matches hold a concept
  are read further, and a rule regex runs only on a sentence that contains the literals it needs.
- the slow path (`code_text_slow`): no pre-filter; spaCy parses the whole text and every sentence goes through
  every step.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, NamedTuple

from pipeline.codebook import Codebook, anchor_values
from pipeline.rules.nlp import Pipeline, inverse_lemma_table, word_log_probs
from pipeline.rules.prefilter import (
    RuleRegex,
    SentenceChunker,
    Trigger,
    WordSet,
    build_wordset,
    required_literals,
    split_pieces,
)

log = logging.getLogger(__name__)

MAX_CUE_DISTANCE = 25  # tokens between a concept and the cue that gives it a category
NEGATION_WINDOW = 6  # tokens before concept+cue that a negation may stand in
NEGATION_AFTER = 3  # tokens after it ("gains in attainment were not detected")
FULL_DOC_SHARE = 0.6  # candidate chunks covering more of a long text than this: parse the whole text at once
# shorter texts (abstracts) are parsed whole once they pass the pre-filter: cutting a 200-word abstract into
# sentence chunks costs more than spaCy spends on its non-candidate sentences (benchmarks/coding_bench.py)
CHUNK_MIN_CHARS = 4000
_WEAK_BREAKS = frozenset({",", ":", "(", ")", "–", "—"})
_CONCEPT_KINDS = frozenset("PCTRS")
_RULE_LABELS = {"P": "phrase", "C": "lemma", "S": "standalone"}
_ENGLISH_WORDS = frozenset(
    "the of and to in is that for with on are as by this be was were from an or at which it their these".split()
)
_WORD_RE = re.compile(r"[^\W\d_]+")
_ASCII_RUNS_RE = re.compile(r"[\x00-\x7f]+")
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))  # a-z kept, every other byte a space
_LETTERS_AND_MARKS = bytes(c if 97 <= c <= 122 or c == 63 else 32 for c in range(256))  # a-z and '?' kept
_RUN_MARKS = bytes(97 if 97 <= c <= 122 else 32 for c in range(256))  # a-z as 'a', every other byte a space
_FREQUENT_ENGLISH = tuple(f" {w} ".encode("ascii") for w in ("the", "of", "and", "to", "in"))
_ENGLISH_BYTES = frozenset(word.encode("ascii") for word in _ENGLISH_WORDS)

# a match is a tuple (kind, name, start token, end token, entry): kind P/C/T/R concept, S standalone, Q cue,
# M modifier, D direction, B blocker; name the code id, category, modifier kind or direction; entry, for a
# concept, (rule, standalone) with rule the kind or, when a token pattern or regex fired, its label (other
# matches: ''). Tuples, not objects: an abstract has ~75 matches and this is the hot path.
_Match = tuple[str, str, int, int, Any]


class Hit(NamedTuple):
    """One code found in one sentence, with the evidence a reviewer needs to check it (an immutable record;
    a NamedTuple because the engine makes one per hit and a frozen dataclass costs four times as much)."""

    code: str
    category: str
    direction: str  # '' for non-directional categories; supporting / contrasting / mixed
    evidence: str  # the sentence
    start: int  # character offsets of the sentence in the coded text
    end: int
    matched: str  # the concept (or standalone phrase) as written
    match_start: int
    match_end: int
    cue: str  # the category cue ('' for a standalone phrase)
    rule: str  # which rule fired, e.g. "lemma:'trust' + cue(facilitators):'depended on'"
    confidence: float
    field: str = "abstract"  # 'abstract' or 'title'


# a concept is a tuple (start token, end token, codes: code id -> (rule, standalone)); a tuple for speed, as _Match
_Concept = tuple[int, int, dict[str, tuple[str, bool]]]


@dataclass(slots=True)
class _Regex:
    kind: str  # R (a code's concept) or Q (a category's cue)
    name: str
    rule: RuleRegex
    entry: Any  # its matches' entry (see _Match): (the rule text, False) for a concept regex


class _Triggers:
    """The pre-filter's words while the engine is built: literals, and literals regexes need, per word class."""

    def __init__(self) -> None:
        self.literals: dict[str, set[str]] = {"S": set(), "C": set(), "Q": set()}
        self.needed: dict[str, set[str]] = {"S": set(), "C": set(), "Q": set(), "raw": set()}
        self.always = False  # a rule with nothing findable: every text is a candidate


class RuleEngine:
    """Codes text against a codebook. Build once with `build_engine`; `code_text` is cheap per call."""

    def __init__(self, codebook: Codebook) -> None:
        from spacy.matcher import Matcher, PhraseMatcher

        self.codebook = codebook
        self._category_of = {code.id: code.category for code in codebook.codes}
        self._directional = {name for name, cat in codebook.categories.items() if cat.directional}
        self._pipe = Pipeline()
        vocab = self._pipe.vocab
        # one PhraseMatcher on NORM, which holds the lemma (see nlp.Pipeline), for lemma phrases and, with their
        # lemmas, for lower-case phrases: a token's lemma follows from its lower-case form, so a phrase that
        # matches on LOWER matches on NORM too, and is kept only if its tokens' lower-case forms are the phrase's
        # (one pass over the doc instead of a second matcher's)
        self._lemma_matcher = PhraseMatcher(vocab, attr="NORM")
        self._lower_forms: dict[tuple[str, str], set[tuple[str, ...]]] = {}  # (kind, name) -> phrases' tokens
        self._token_matcher = Matcher(vocab)
        self._keys: dict[int, tuple[str, str, Any, str]] = {}  # matcher key -> kind, name, entry, slot
        self._regexes: list[_Regex] = []
        self._triggers = _Triggers()
        self._loose = frozenset(split_pieces(self._pipe.special_cases()))
        self._add_codes()
        self._add_cues_and_modifiers()
        self._trigger = self._build_trigger()
        self._scope = self._build_scope()
        self._chunker = SentenceChunker(set(self._pipe.special_cases()))
        self.chunk_min_chars = CHUNK_MIN_CHARS  # texts this long are cut into sentence chunks (0: every text)

    # ------------------------------------------------------------ building

    def _key(self, kind: str, name: str, rule: str = "", label: str = "", *, lower: bool = False) -> str:
        """The matcher key of a kind's rules for a name; matches of lower-case phrases go to the slot 'lower'
        until they are checked (see _groups)."""
        key = f"{kind}|{label or name}"
        slot = "lower" if lower else _slot(kind, name)
        self._keys[self._pipe.vocab.strings.add(key)] = (kind, name, _entry(kind, rule), slot)
        return key

    def _add_lemma_phrases(self, kind: str, name: str, phrases: tuple[str, ...], *, trigger: str = "") -> None:
        docs = [self._pipe.make_pattern(p) for p in phrases if p.strip()]
        if not docs:
            return
        self._lemma_matcher.add(self._key(kind, name), docs)
        for doc in docs if trigger else ():
            forms = _trigger_forms([t.norm_ for t in doc], lemma=True, loose=self._loose)
            self._triggers.literals[trigger].update(forms)

    def _add_lower_phrases(self, kind: str, name: str, phrases: tuple[str, ...], *, trigger: str = "") -> None:
        docs = [self._pipe.make_pattern(p) for p in phrases if p.strip()]
        if not docs:
            return
        self._lemma_matcher.add(self._key(kind, name, lower=True), docs)
        phrases_forms = self._lower_forms.setdefault((kind, name), set())
        phrases_forms.update(tuple(token.lower_ for token in doc) for doc in docs)
        for doc in docs if trigger else ():
            forms = _trigger_forms([t.lower_ for t in doc], lemma=False, loose=self._loose)
            self._triggers.literals[trigger].update(forms)

    def _add_regex(self, kind: str, name: str, pattern: str, trigger: str) -> None:
        rule = RuleRegex(pattern)
        label = f"regex:{pattern!r}" if kind == "R" else ""
        self._regexes.append(_Regex(kind, name, rule, _entry(kind, label)))
        self._add_needed(trigger, rule.needs)

    def _add_needed(self, trigger: str, needs: list[tuple[str, ...]] | None) -> None:
        """The pre-filter looks for the regex's most selective group of literals (found by containment)."""
        if needs is None:
            self._triggers.always = True
        else:
            self._triggers.needed[trigger].update(needs[0])

    def _add_codes(self) -> None:
        for code in self.codebook.codes:
            self._add_lower_phrases("P", code.id, code.phrases, trigger="C")
            self._add_lemma_phrases("C", code.id, code.lemmas, trigger="C")
            self._add_lemma_phrases("S", code.id, code.standalone, trigger="S")
            for index, pattern in enumerate(code.patterns):
                key = self._key("T", code.id, f"pattern:{index}", label=f"{code.id}|{index}")
                self._token_matcher.add(key, [list(pattern)])
                self._add_pattern_trigger(pattern)
        for code in self.codebook.codes:  # code regexes are matched before cue regexes (order of hits)
            for regex in code.regexes:
                self._add_regex("R", code.id, regex, "C")

    def _add_pattern_trigger(self, pattern: tuple[dict[str, Any], ...]) -> None:
        """A pattern needs each of its required tokens; the pre-filter looks for the first one's values."""
        for token in pattern:
            values = anchor_values(token)
            if not values:
                continue
            for attr, value, is_regex in values:
                if is_regex and attr == "LEMMA":  # a lemma regex may match a lemma sharing no letters with its form
                    self._triggers.always = True
                elif is_regex:  # a token regex's match is in the token's text (lower-cased for LOWER)
                    self._add_needed("C" if attr == "LOWER" else "raw", required_literals(value))
                else:
                    self._triggers.literals["C"].update(_trigger_forms([value.lower()], lemma=attr == "LEMMA"))
            return

    def _add_cues_and_modifiers(self) -> None:
        book = self.codebook
        for name, category in book.categories.items():
            self._add_lemma_phrases("Q", name, category.cues, trigger="Q")
        for name, category in book.categories.items():
            for regex in category.cue_regexes:
                self._add_regex("Q", name, regex, "Q")
        mods = book.modifiers
        for kind in ("negation", "pseudo_negation", "gap", "conditional", "inquiry", "finding", "clause_breaks"):
            self._add_lemma_phrases("M", kind, getattr(mods, kind))
        self._add_lower_phrases("B", "blockers", mods.blockers + ("mixed methods", "mixed-methods"))
        for direction, words in book.directions.items():
            self._add_lemma_phrases("D", direction, words)

    def _build_trigger(self) -> Trigger:
        found = self._triggers
        sets = {k: build_wordset(found.literals[k], self._loose, found.needed[k]) for k in ("S", "C", "Q")}
        raw = build_wordset(set(), self._loose, found.needed["raw"])
        return Trigger(sets["S"], sets["C"], sets["Q"], raw, always=found.always)

    def _build_scope(self) -> WordSet | None:
        """The codebook's domain words (and their inflections) as one whole-word regex; None: no gate."""
        forms: set[str] = set()
        for phrase in self.codebook.scope:
            lemmas = self._pipe.lemmas(phrase)
            forms.update(_trigger_forms(lemmas, lemma=True, loose=self._loose))
        return build_wordset(forms, self._loose) if forms else None

    def in_scope(self, text: str, title: str = "") -> bool:
        """Whether title or text names one of the codebook's scope words (always, when it has none)."""
        return self._in_scope(text.lower(), title.lower())

    def _in_scope(self, lower: str, title_lower: str) -> bool:
        # title and text apart: the scope words are single words, so none can span the two
        scope = self._scope
        if scope is None:
            return True
        return scope.search(title_lower, 0, len(title_lower)) or scope.search(lower, 0, len(lower))

    # ------------------------------------------------------------ public

    def code_text(self, text: str, *, title: str = "") -> list[Hit]:
        """Hits in the title and the text (the fast path: spaCy sees only text the pre-filter passes).

        Nothing for a study outside the codebook's scope, or whose text does not look like English.
        """
        lower = text.lower()
        if not self._in_scope(lower, title.lower()):
            return []
        hits = self._code_field(title, "title", fast=True) if title else []
        return hits + self._code_field(text, "abstract", fast=True, lower=lower)

    def code_text_slow(self, text: str, *, title: str = "") -> list[Hit]:
        """The same hits as `code_text`, with spaCy over the whole text and every sentence read (for tests)."""
        if not self.in_scope(text, title):
            return []
        hits = self._code_field(title, "title", fast=False) if title else []
        return hits + self._code_field(text, "abstract", fast=False)

    def candidate_chunks(self, text: str, lower: str | None = None) -> list[tuple[int, int]]:
        """The stretches of text the pre-filter passes to spaCy: none, the whole text, or (for a long text)
        runs of neighbouring candidate sentence chunks."""
        lower = text.lower() if lower is None else lower
        if len(lower) != len(text) or "Σ" in text:  # lower-casing is not character by character: no pre-filter
            return [(0, len(text))]
        trigger = self._trigger
        if not trigger.hits(lower, text, 0, len(text)):
            return []
        if len(text) < self.chunk_min_chars:
            return [(0, len(text))]
        merged: list[tuple[int, int]] = []
        previous_was_candidate = False
        for start, end in self._chunker.chunks(text):
            candidate = trigger.hits(lower, text, start, end)
            if candidate and previous_was_candidate:
                merged[-1] = (merged[-1][0], end)
            elif candidate:
                merged.append((start, end))
            previous_was_candidate = candidate
        if sum(end - start for start, end in merged) > FULL_DOC_SHARE * len(text):
            return [(0, len(text))]  # one spaCy call beats many when most of the text is candidate
        return merged

    # ------------------------------------------------------------ paths

    def _code_field(self, text: str, field: str, *, fast: bool, lower: str | None = None) -> list[Hit]:
        if not text or text.isspace():
            return []
        if not fast:
            if self._non_english(text, field):
                return []
            return self._code_doc(text, 0, field, every_sentence=True)
        hits: list[Hit] = []
        for start, end in self.candidate_chunks(text, lower):
            if start == 0 and end == len(text):  # the whole text (an abstract): no copy, lower-cased already
                hits.extend(self._code_doc(text, 0, field, every_sentence=False, lower=lower))
            else:
                hits.extend(self._code_doc(text[start:end], start, field, every_sentence=False))
        # the language check only matters when there is something to drop
        return [] if not hits or self._non_english(text, field, lower) else hits

    @staticmethod
    def _non_english(text: str, field: str, lower: str | None = None) -> bool:
        if looks_non_english(text, lower):
            log.info("skipping a %s that does not look like English text", field)
            return True
        return False

    def _code_doc(
        self, text: str, offset: int, field: str, *, every_sentence: bool, lower: str | None = None
    ) -> list[Hit]:
        """Hits in one doc, in sentence order and, in a sentence, by code (each sentence gives a code at most
        once). `every_sentence`: read every sentence (the slow path); else only those with a concept match (a
        sentence without one cannot give a hit; regex concepts are looked for in every one)."""
        view = _View(*self._pipe.parse(text), text, lower)
        groups = self._groups(view)
        regexes = self._regexes if every_sentence else self._regexes_for(view)
        scan_all = every_sentence or any(r.kind == "R" for r in regexes)
        hits: list[Hit] = []
        for sentence, group in zip(view.sents, groups, strict=True):
            if not scan_all and "concept" not in group:
                continue  # a regex cue matters only beside a concept; regex concepts are looked for everywhere
            if regexes:
                for match in self._regex_matches(view, sentence, regexes, check=not every_sentence):
                    group["concept" if match[0] == "R" else "cue"].append(match)
            if every_sentence or "concept" in group:
                hits += self._code_sentence(view, sentence, group, offset, field)
        return hits

    def _groups(self, view: _View) -> list[dict[str, list[_Match]]]:
        """The matchers' matches per sentence, grouped by slot ('concept', 'cue', 'blocker', a modifier kind or
        'direction:<name>'), each group in matcher order (lemma phrases, lower-case phrases, token patterns); a
        match across a sentence end is dropped."""
        keys = self._keys
        groups: list[dict[str, list[_Match]]] = []
        group_of: list[dict[str, list[_Match]]] = []  # per token: its sentence's groups
        end_of: list[int] = []  # per token: its sentence's end
        for start, end in view.sents:
            group: dict[str, list[_Match]] = defaultdict(list)
            groups.append(group)
            group_of += [group] * (end - start)
            end_of += [end] * (end - start)
        for key, start, end in self._pipe.phrase_matches(self._lemma_matcher, view.doc):
            if end <= end_of[start]:
                kind, name, entry, slot = keys[key]
                group_of[start][slot].append((kind, name, start, end, entry))
        for group in groups:
            if "lower" in group:
                self._check_lower(view, group)
        if len(self._token_matcher):
            self._pipe.annotate(view.doc, [start for start, _ in view.sents])
            for key, start, end in self._token_matcher(view.doc):
                if end <= end_of[start]:
                    kind, name, entry, slot = keys[key]
                    group_of[start][slot].append((kind, name, start, end, entry))
        return groups

    def _check_lower(self, view: _View, group: dict[str, list[_Match]]) -> None:
        """Move the lower-case phrases found on their lemmas to their slots, those whose tokens are the phrase's
        lower-case forms."""
        for match in group.pop("lower"):
            kind, name, start, end, _ = match
            if tuple(map(view.lower, range(start, end))) in self._lower_forms[kind, name]:
                group[_slot(kind, name)].append(match)

    def _regexes_for(self, view: _View) -> list[_Regex]:
        """The regex rules whose needed literals are all in the text: no other can match one of its sentences."""
        lower = view.lower_text
        if lower is None:
            return self._regexes
        return [r for r in self._regexes if r.rule.could_match(lower)]

    def _regex_matches(
        self, view: _View, sentence: tuple[int, int], regexes: list[_Regex], *, check: bool
    ) -> list[_Match]:
        """Code and cue regexes over the lower-cased sentence, in rule order. With `check` (the fast path) a
        regex runs only on a sentence that contains the literals it needs, and is tried only where one of its
        heads begins (the same matches); the slow path runs every regex over every sentence."""
        base, stop = view.chars(*sentence)
        lower = view.lower_text[base:stop] if view.lower_text is not None else view.text[base:stop].lower()
        found: list[_Match] = []
        for regex in regexes:
            if check and not regex.rule.could_match(lower):
                continue
            for m in regex.rule.finditer(lower) if check else regex.rule.regex.finditer(lower):
                if m.end() != m.start():
                    first, last = view.tokens_at(base + m.start(), base + m.end())
                    found.append((regex.kind, regex.name, first, last, regex.entry))
        return found

    # ------------------------------------------------------------ one sentence

    def _code_sentence(
        self, view: _View, sentence: tuple[int, int], group: dict[str, list[_Match]], offset: int, field: str
    ) -> list[Hit]:
        blockers = group.get("blocker")
        if blockers:  # a blocker cancels every match it overlaps
            group = {
                slot: [m for m in matches if not _overlaps_any(m[2], m[3], blockers)]
                for slot, matches in group.items()
                if slot != "blocker"
            }
        found = group.get("concept")
        cues = group.get("cue") or []
        # a gap means no code; without a standalone phrase, a concept needs a cue
        if not found or group.get("gap") or not cues and all(m[0] != "S" for m in found):
            return []
        concepts = _select_concepts(found)
        if cues:
            cues = self._outcome_cues(view, _select_cues(cues, concepts), sentence[0])
        kept = self._kept_codes(concepts, cues, _Context.of(view, sentence, group, cues, self._directional))
        if not kept:
            return []
        first, last = view.trimmed(sentence)
        evidence = view.text[first:last]
        return [
            self._hit(view, concept, code_id, rule, cue, confidence, direction, evidence, first, last, offset, field)
            for code_id, (confidence, direction, concept, rule, cue) in sorted(kept.items())
        ]

    def _outcome_cues(self, view: _View, cues: list[_Match], first: int) -> list[_Match]:
        """The cues without a directional (benefits) cue that names a purpose ('to enhance', 'to build') or an
        activity ('improving practice', 'developing relationships') rather than an outcome."""
        directional = self._directional
        kept = []
        for cue in cues:
            if cue[1] in directional:
                start = cue[2]
                word = view.lower(start)
                if start > first and word != "to" and view.lower(start - 1) == "to":
                    continue  # a purpose infinitive
                if cue[3] - start == 1 and word.endswith("ing"):
                    continue  # an activity gerund
            kept.append(cue)
        return kept

    def _kept_codes(self, concepts: list[_Concept], cues: list[_Match], context: _Context) -> dict[str, list[Any]]:
        """code id -> [confidence, direction, concept, rule, cue]: one entry per code in the sentence, the first
        most confident; directions that disagree make it mixed."""
        kept: dict[str, list[Any]] = {}
        category_of = self._category_of
        directional = self._directional
        for concept in concepts:
            cue, distance, candidates = _candidates(concept, cues, category_of)
            if not candidates:
                continue
            confidence = _confidence(cue is None, distance)
            start, end = concept[0], concept[1]
            lo, hi = (start, end) if cue is None else (min(start, cue[2]), max(end, cue[3]))
            negated = context.negated(lo, hi) if context.negations else False
            for code_id, rule in candidates:
                if category_of[code_id] not in directional:
                    if negated:
                        continue
                    direction = ""
                elif context.inquiry_only:
                    continue
                else:
                    direction = context.direction(end, lo, hi, negated) if context.modified else "supporting"
                best = kept.get(code_id)
                if best is None:
                    kept[code_id] = [confidence, direction, concept, rule, cue]
                    continue
                if confidence > best[0]:
                    best[:] = [confidence, best[1], concept, rule, cue]
                    best[1], direction = direction, best[1]
                if best[1] != direction and best[1] and direction:
                    best[1] = "mixed"
        return kept

    def _hit(
        self,
        view: _View,
        concept: _Concept,
        code_id: str,
        rule: str,
        cue: _Match | None,
        confidence: float,
        direction: str,
        evidence: str,
        first: int,
        last: int,
        offset: int,
        field: str,
    ) -> Hit:
        text, idx, ends = view.text, view.idx, view.ends
        match_start, match_end = idx[concept[0]], ends[concept[1] - 1]
        matched = text[match_start:match_end]
        cue_text = text[idx[cue[2]] : ends[cue[3] - 1]] if cue else ""
        kind = f"{_RULE_LABELS.get(rule, rule)}:{matched.lower()!r}" if len(rule) == 1 else rule
        cue_rule = f" + cue({cue[1]}):{cue_text.lower()!r}" if cue else " (standalone)"
        return Hit(  # positional: the fields in order (keywords cost three times as much)
            code_id,
            self._category_of[code_id],
            direction,
            evidence,
            offset + first,
            offset + last,
            matched,
            offset + match_start,
            offset + match_end,
            cue_text,
            kind + cue_rule,
            confidence,
            field,
        )


class _View:
    """Plain-Python facts about one doc (token offsets, sentences), read once per doc: asking spaCy for Token or
    Span objects per match costs more than all the matching."""

    __slots__ = ("doc", "text", "idx", "ends", "sents", "lower_text")

    def __init__(
        self,
        doc: Any,
        sents: list[tuple[int, int]],
        idx: list[int],
        ends: list[int],
        text: str,
        lower: str | None = None,
    ) -> None:
        self.doc = doc
        self.text = text  # doc.text, which spaCy would rebuild token by token
        self.idx = idx
        self.ends = ends
        self.sents = sents
        self.lower_text = lower_aligned(text, lower)

    def lower(self, index: int) -> str:
        return self.text[self.idx[index] : self.ends[index]].lower()

    def chars(self, start: int, end: int) -> tuple[int, int]:
        return self.idx[start], self.ends[end - 1]

    def span_text(self, start: int, end: int) -> str:
        first, last = self.chars(start, end)
        return self.text[first:last]

    def tokens_at(self, first_char: int, last_char: int) -> tuple[int, int]:
        """The tokens covering a character range (spaCy's char_span with alignment_mode='expand')."""
        first = max(0, bisect.bisect_right(self.idx, first_char) - 1)
        last = bisect.bisect_left(self.idx, last_char)
        return first, max(last, first + 1)

    def trimmed(self, sentence: tuple[int, int]) -> tuple[int, int]:
        """Character offsets of the sentence without the whitespace spaCy may attach to its start."""
        first, last = self.chars(*sentence)
        chunk = self.text[first:last]
        return first + len(chunk) - len(chunk.lstrip()), first + len(chunk.rstrip())


class _Context:
    """What one sentence's modifiers say, asked about token ranges."""

    __slots__ = (
        "first",
        "last",
        "negations",
        "conditionals",
        "inquiry_only",
        "contrasting",
        "mixed",
        "modified",
        "breaks",
        "strong_breaks",
    )

    def __init__(
        self,
        view: _View,
        sentence: tuple[int, int],
        group: dict[str, list[_Match]],
        cues: list[_Match],
        directional: set[str],
    ) -> None:
        self.first, self.last = sentence
        self.negations = _negations(group, cues, directional) if "negation" in group else ()
        self.conditionals = group.get("conditional")
        # an inquiry ('whether', 'we examine') without a finding word: no benefit
        self.inquiry_only = "inquiry" in group and not group.get("finding") and bool(group["inquiry"])
        self.contrasting = group.get("direction:contrasting")
        self.mixed = group.get("direction:mixed")
        # whether a benefit's direction can be other than supporting
        self.modified = bool(self.negations or self.conditionals or self.contrasting or self.mixed)
        # clause breaks matter only to negations, conditionals and contrasting cues
        breaks = group.get("clause_breaks") if self.negations or self.conditionals or self.contrasting else None
        self.breaks = sorted([m[2] for m in breaks]) if breaks else []
        self.strong_breaks = (
            sorted([m[2] for m in breaks if view.span_text(m[2], m[3]) not in _WEAK_BREAKS]) if breaks else []
        )

    @classmethod
    def of(
        cls,
        view: _View,
        sentence: tuple[int, int],
        group: dict[str, list[_Match]],
        cues: list[_Match],
        directional: set[str],
    ) -> _Context:
        """The sentence's context; one shared plain context for the many sentences without a modifier that
        matters (no negation, conditional, inquiry, contrasting or mixed cue)."""
        for slot in _MODIFIER_SLOTS:
            if slot in group:
                return cls(view, sentence, group, cues, directional)
        return _PLAIN

    def _clause_start(self, index: int, breaks: list[int]) -> int:
        position = bisect.bisect_right(breaks, index - 1) - 1
        return breaks[position] + 1 if position >= 0 else self.first

    def _clause_end(self, index: int, breaks: list[int]) -> int:
        position = bisect.bisect_left(breaks, index)
        return breaks[position] if position < len(breaks) else self.last

    def negated(self, lo: int, hi: int) -> bool:
        """A negation in the clause from a few tokens before concept+cue to a few after ('were not detected')."""
        if not self.negations:
            return False
        window = max(self._clause_start(lo, self.breaks), lo - NEGATION_WINDOW)
        after = min(self._clause_end(hi, self.breaks), hi + NEGATION_AFTER)
        return any(window <= m[2] and m[3] <= after for m in self.negations)

    def direction(self, concept_end: int, lo: int, hi: int, negated: bool) -> str:
        """mixed: a mixed cue in the sentence, or a conditional in the clause; contrasting: negated, or a
        contrasting cue from the negation window up to just after the concept; else supporting."""
        if self.mixed:
            return "mixed"
        if self.conditionals:
            clause_lo = self._clause_start(lo, self.strong_breaks)
            clause_hi = self._clause_end(hi, self.strong_breaks)
            if any(clause_lo <= m[2] and m[3] <= clause_hi for m in self.conditionals):
                return "mixed"
        if negated:
            return "contrasting"
        if self.contrasting:
            window = max(self._clause_start(lo, self.breaks), lo - NEGATION_WINDOW)
            if any(window <= m[2] and m[2] < max(hi, concept_end + 2) for m in self.contrasting):
                return "contrasting"
        return "supporting"


# ---------------------------------------------------------------- helpers


def build_engine(codebook: Codebook) -> RuleEngine:
    """Compile a codebook's rules into a RuleEngine (a few seconds; reuse it)."""
    return RuleEngine(codebook)


def looks_non_english(text: str, lower: str | None = None) -> bool:
    """True for a text of 15+ words with almost no English function words (skip it rather than invent codes).

    The first 2,000 characters decide: enough words, and a 100,000-word text costs no more than an abstract.
    A word is a run of letters (`_WORD_RE`); fewer than 6% of the words may be English function words.
    `lower`: the text lower-cased, if the caller has it."""
    aligned = lower_aligned(text, lower) if lower is not None else None
    sample = aligned[:2000] if aligned is not None else text[:2000].lower()
    if sample.isascii():
        return _ascii_non_english(sample.encode("ascii"))
    # counted on ASCII bytes, each other character a '?'; as a letter a '?' can only join words, so the function
    # words counted stay a lower bound, and as a word of its own it can only add words, so runs of a-z plus the
    # '?'s are an upper bound on the words: enough function words among them settles it, as for most English text
    data = sample.encode("ascii", "replace")
    words = (b" " + data.translate(_RUN_MARKS)).count(b" a") + data.count(b"?")
    if words < 15 or _function_words_reach(b" " + data.translate(_LETTERS_AND_MARKS) + b" ", 0.06 * words):
        return False
    ascii_letters = _ascii_letters(sample)
    if ascii_letters is not None:  # no letter among the other characters: the runs of a-z are the words
        return _ascii_non_english(ascii_letters)
    found = _WORD_RE.findall(sample)
    return len(found) >= 15 and sum(map(_ENGLISH_WORDS.__contains__, found)) / len(found) < 0.06


def _ascii_non_english(data: bytes) -> bool:
    """looks_non_english for a sample whose words are its runs of a-z (ASCII bytes)."""
    # counted without making a string per word: runs of letters, and a lower bound on the function words
    count = (b" " + data.translate(_RUN_MARKS)).count(b" a")
    if count < 15:
        return False
    spaced = b" " + data.translate(_LETTERS_ONLY) + b" "
    if _function_words_reach(spaced, 0.06 * count):
        return False
    words = spaced.split()
    return sum(map(_ENGLISH_BYTES.__contains__, words)) / len(words) < 0.06


def _function_words_reach(spaced: bytes, needed: float) -> bool:
    """Whether the most frequent English function words occur at least `needed` times as words of `spaced`
    (letters, words apart by spaces, a space at each end): " the " counted, so a repeated word sharing its space
    is counted once, a lower bound. English text passes after one or two counts."""
    found = 0
    for word in _FREQUENT_ENGLISH:
        found += spaced.count(word)
        if found >= needed:
            return True
    return False


def _ascii_letters(lower: str) -> bytes | None:
    """The lower-cased text as ASCII bytes, its non-ASCII characters replaced by '?', when none of them is a
    letter (curly quotes, dashes); then its words are the runs of a-z. None when one is a letter."""
    if lower.isascii():
        return lower.encode("ascii")
    if _WORD_RE.search(_ASCII_RUNS_RE.sub("", lower)):  # a letter among the non-ASCII characters
        return None
    return lower.encode("ascii", "replace")


def _trigger_forms(words: list[str], *, lemma: bool, loose: frozenset[str] = frozenset()) -> set[str]:
    """Surface forms of the phrase's rarest word: the pre-filter needs only one of the phrase's words.

    `loose` forms (tokenizer special-case pieces such as 'll') are matched inside words, so count as common.
    """
    inverse = inverse_lemma_table()
    probs = word_log_probs()
    options = []
    for word in words:
        if not any(ch.isalnum() for ch in word):
            continue
        forms = {word} | (set(inverse.get(word, ())) if lemma else set())
        if lemma:  # plurals the lookup table lacks reach this lemma through fallback_lemma
            forms.add(word + "s")
            if word.endswith("ss"):
                forms.add(word + "es")
            if word.endswith("y"):
                forms.add(word[:-1] + "ies")
        commonness = sum(1.0 if form in loose else math.exp(probs.get(form, -20.0)) for form in forms)
        options.append((commonness, -len(word), sorted(forms)))
    if not options:
        return {w for w in words if w}
    return set(min(options)[2])


def lower_aligned(text: str, lower: str | None = None) -> str | None:
    """text.lower() (`lower` when given) if it lower-cases character by character, so that a slice of it is the
    same slice of the text lower-cased (None otherwise: 'İ' becomes two characters, 'Σ' depends on its
    neighbours)."""
    lower = text.lower() if lower is None else lower
    return lower if len(lower) == len(text) and "Σ" not in text else None


def _negations(group: dict[str, list[_Match]], cues: list[_Match], directional: set[str]) -> list[_Match]:
    """Negation matches that are not part of a pseudo-negation ('not only') or of a non-directional cue
    ('lack of')."""
    negations = group.get("negation")
    if not negations:
        return []
    pseudo = group.get("pseudo_negation") or ()
    plain_cues = [c for c in cues if c[1] not in directional]
    return [m for m in negations if not _overlaps_any(m[2], m[3], pseudo) and not _overlaps_any(m[2], m[3], plain_cues)]


def _entry(kind: str, rule: str) -> Any:
    """A match's entry (see _Match): for a concept, its rule (the kind, unless a token pattern or regex has a
    label) and whether it is a standalone phrase."""
    return (rule or kind, kind == "S") if kind in _CONCEPT_KINDS else ""


def _slot(kind: str, name: str) -> str:
    """Where a match goes among its sentence's groups."""
    if kind in _CONCEPT_KINDS:
        return "concept"
    return {"Q": "cue", "B": "blocker", "M": name, "D": f"direction:{name}"}[kind]


def _overlaps_any(start: int, end: int, others: Any) -> bool:
    """Whether the token range overlaps any match (a tuple with start, end at 2, 3)."""
    return any(start < other[3] and other[2] < end for other in others)


def _select_concepts(matches: list[_Match]) -> list[_Concept]:
    """Group matches by span, then keep the longest non-overlapping spans (ties: earliest). A span's codes keep
    the order of their first match; a standalone match replaces a plain one of the same code."""
    # spans keyed by (-length, start): sorting the keys puts the longest first, then the earliest
    spans: dict[tuple[int, int], dict[str, tuple[str, bool]]] = {}
    for _, name, start, end, entry in matches:
        codes = spans.get((start - end, start))
        if codes is None:
            spans[(start - end, start)] = {name: entry}
        elif name not in codes or entry[1] and not codes[name][1]:
            codes[name] = entry
    if len(spans) == 1:
        (negative_length, start), codes = spans.popitem()
        return [(start, start - negative_length, codes)]
    chosen: list[_Concept] = []
    for key in sorted(spans):
        start = key[1]
        end = start - key[0]
        for other in chosen:
            if start < other[1] and other[0] < end:
                break
        else:
            chosen.append((start, end, spans[key]))
    chosen.sort()  # by start: chosen spans do not overlap, so no two share a start
    return chosen


def _candidates(
    concept: _Concept, cues: list[_Match], category_of: dict[str, str]
) -> tuple[_Match | None, int, list[tuple[str, str]]]:
    """The cue (None: standalone), its distance in tokens, and the (code id, rule)s it gives the concept: the
    concept's standalone codes, or the codes of its nearest cue's category (none without such a cue)."""
    start, end, codes = concept
    if len(codes) == 1:  # the common case, without the comprehensions
        ((code_id, (rule, alone)),) = codes.items()
        if alone:
            return None, 0, [(code_id, rule)]
        cue, distance = _nearest_cue(cues, start, end, (category_of[code_id],))
        return cue, distance, [(code_id, rule)] if cue is not None else []
    standalone = [(c, rule) for c, (rule, alone) in codes.items() if alone]
    if standalone:
        return None, 0, standalone
    cue, distance = _nearest_cue(cues, start, end, {category_of[c] for c in codes})
    if cue is None:
        return None, 0, []
    return cue, distance, [(c, rule) for c, (rule, _) in codes.items() if category_of[c] == cue[1]]


def _nearest_cue(cues: list[_Match], start: int, end: int, categories: Any) -> tuple[_Match | None, int]:
    """The closest cue of one of the categories within MAX_CUE_DISTANCE of the tokens start..end (ties: the one
    before), and its distance in tokens."""
    best: _Match | None = None
    best_rank = (MAX_CUE_DISTANCE + 1, 0)
    for cue in cues:
        if cue[1] not in categories:
            continue
        distance = start - cue[3] if cue[3] <= start else cue[2] - end if end <= cue[2] else 0
        rank = (distance, 0 if cue[2] < start else 1)
        if rank < best_rank:
            best, best_rank = cue, rank
    return (best, best_rank[0]) if best is not None else (None, 0)


def _select_cues(cues: list[_Match], concepts: list[_Concept]) -> list[_Match]:
    """Cues outside every concept; of overlapping ones the longest (ties: earliest, then by name, then first)."""
    free: list[_Match] = []
    for cue in cues:
        for concept in concepts:
            if cue[2] < concept[1] and concept[0] < cue[3]:
                break
        else:
            free.append(cue)
    if len(free) < 2 or all(a[3] <= b[2] for a, b in zip(free, free[1:], strict=False)):
        return free  # apart and in order already: every one is kept, in this order
    chosen: list[_Match] = []
    for *_, position in sorted((c[2] - c[3], c[2], c[1], i) for i, c in enumerate(free)):
        cue = free[position]
        for other in chosen:
            if cue[2] < other[3] and other[2] < cue[3]:
                break
        else:
            chosen.append(cue)
    chosen.sort(key=_match_start)
    return chosen


def _match_start(match: _Match) -> int:
    return match[2]


def _confidence(standalone: bool, distance: int) -> float:
    if standalone:
        return 0.85
    if distance <= 2:
        return 0.9
    if distance <= 6:
        return 0.8
    if distance <= 12:
        return 0.7
    return 0.6


_MODIFIER_SLOTS = ("negation", "conditional", "inquiry", "direction:contrasting", "direction:mixed")
_PLAIN = _Context(_View(None, [], [], [], ""), (0, 0), {}, [], set())  # a sentence without any of them
