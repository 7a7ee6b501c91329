"""The rule engine: one sentence at a time, a code's concept plus its category's cue, read through modifiers.

For each sentence:
1. matches: concepts (phrases on LOWER; lemmas on LEMMA; token patterns; regexes), standalone phrases, category
   cues, modifiers (negation, gap, conditional, inquiry, finding, clause breaks) and direction cues. Blockers
   ("academy trust", "London Challenge", "mixed methods") cancel any match they overlap.
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
of a search) or does not look like English. The fast path (`code_text`) then codes only the sentence chunks that
the trigger regex finds (a standalone word, or a concept word and a cue word), and the whole text in one spaCy
call when most of it is candidate; the slow path (`code_text_slow`) runs spaCy over the whole text. They give the
same hits (tests assert it on real abstracts and on generated text).
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from pipeline.codebook import Code, Codebook, anchor_values
from pipeline.rules.nlp import Pipeline, inverse_lemma_table, word_log_probs
from pipeline.rules.prefilter import SentenceChunker, Trigger, build_wordset, split_pieces

log = logging.getLogger(__name__)

MAX_CUE_DISTANCE = 25  # tokens between a concept and the cue that gives it a category
NEGATION_WINDOW = 6  # tokens before concept+cue that a negation may stand in
FULL_DOC_SHARE = 0.6  # candidates covering more of the text than this: code the whole text in one doc
NEGATION_AFTER = 3  # tokens after it ("gains in attainment were not detected")
_WEAK_BREAKS = frozenset({",", ":", "(", ")", "–", "—"})
_ENGLISH_WORDS = frozenset(
    "the of and to in is that for with on are as by this be was were from an or at which it their these".split()
)
_WORD_RE = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True, slots=True)
class Hit:
    """One code found in one sentence, with the evidence a reviewer needs to check it."""

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


@dataclass(slots=True)
class _Match:
    kind: str  # P/C/T/R concept, S standalone, Q cue, M modifier, D direction, B blocker
    name: str  # code id, category, modifier kind or direction
    start: int  # token indices in the doc
    end: int
    rule: str = ""


@dataclass(slots=True)
class _Concept:
    start: int
    end: int
    codes: dict[str, tuple[str, bool]]  # code id -> (rule, standalone)


class RuleEngine:
    """Codes text against a codebook. Build once with `build_engine`; `code_text` is cheap per call."""

    def __init__(self, codebook: Codebook) -> None:
        from spacy.matcher import Matcher, PhraseMatcher

        self.codebook = codebook
        self._codes: dict[str, Code] = {code.id: code for code in codebook.codes}
        self._directional = {name for name, cat in codebook.categories.items() if cat.directional}
        self._pipe = Pipeline()
        vocab = self._pipe.vocab
        self._lemma_matcher = PhraseMatcher(vocab, attr="LEMMA")
        self._lower_matcher = PhraseMatcher(vocab, attr="LOWER")
        self._token_matcher = Matcher(vocab)
        self._keys: dict[int, tuple[str, str]] = {}
        self._code_regexes: list[tuple[str, re.Pattern[str]]] = []
        self._cue_regexes: list[tuple[str, re.Pattern[str]]] = []
        # the pre-filter's words: standalone phrases ("S"), concepts ("C") and category cues ("Q")
        self._literals: dict[str, set[str]] = {"S": set(), "C": set(), "Q": set()}
        self._lower_regexes: dict[str, list[str]] = {"S": [], "C": [], "Q": []}
        self._raw_regexes: list[str] = []
        self._always = False
        self._loose = frozenset(split_pieces(self._pipe.special_cases()))
        self._add_codes()
        self._add_cues_and_modifiers()
        self._trigger = self._build_trigger()
        self._any_regex = _any_of([r for _, r in self._code_regexes + self._cue_regexes])
        self._scope = self._build_scope()
        self._chunker = SentenceChunker(set(self._pipe.special_cases()))

    # ------------------------------------------------------------ building

    def _key(self, kind: str, name: str) -> str:
        key = f"{kind}|{name}"
        self._keys[self._pipe.vocab.strings.add(key)] = (kind, name)
        return key

    def _add_lemma_phrases(self, kind: str, name: str, phrases: tuple[str, ...], *, trigger: str = "") -> None:
        docs = [self._pipe.make_pattern(p) for p in phrases if p.strip()]
        if not docs:
            return
        self._lemma_matcher.add(self._key(kind, name), docs)
        for doc in docs if trigger else ():
            self._literals[trigger].update(_trigger_forms([t.lemma_ for t in doc], lemma=True, loose=self._loose))

    def _add_lower_phrases(self, kind: str, name: str, phrases: tuple[str, ...], *, trigger: str = "") -> None:
        docs = [self._pipe.nlp.make_doc(p) for p in phrases if p.strip()]
        if not docs:
            return
        self._lower_matcher.add(self._key(kind, name), docs)
        for doc in docs if trigger else ():
            self._literals[trigger].update(_trigger_forms([t.lower_ for t in doc], lemma=False, loose=self._loose))

    def _add_codes(self) -> None:
        for code in self.codebook.codes:
            self._add_lower_phrases("P", code.id, code.phrases, trigger="C")
            self._add_lemma_phrases("C", code.id, code.lemmas, trigger="C")
            self._add_lemma_phrases("S", code.id, code.standalone, trigger="S")
            for index, pattern in enumerate(code.patterns):
                self._token_matcher.add(self._key("T", f"{code.id}|{index}"), [list(pattern)])
                self._add_pattern_trigger(pattern)
            for regex in code.regexes:
                self._code_regexes.append((code.id, re.compile(regex)))
                self._lower_regexes["C"].append(regex)

    def _add_pattern_trigger(self, pattern: tuple[dict[str, Any], ...]) -> None:
        """A pattern needs each of its required tokens; the pre-filter looks for the first one's values."""
        for token in pattern:
            values = anchor_values(token)
            if not values:
                continue
            for attr, value, is_regex in values:
                if is_regex and attr == "LEMMA":  # a lemma regex may match a lemma sharing no letters with its form
                    self._always = True
                elif is_regex:
                    (self._lower_regexes["C"] if attr == "LOWER" else self._raw_regexes).append(value)
                else:
                    self._literals["C"].update(_trigger_forms([value.lower()], lemma=attr == "LEMMA"))
            return

    def _build_trigger(self) -> Trigger:
        sets = {k: build_wordset(self._literals[k], self._lower_regexes[k], self._loose) for k in ("S", "C", "Q")}
        raw = tuple(re.compile(r.lstrip("^").rstrip("$")) for r in self._raw_regexes)
        return Trigger(sets["S"], sets["C"], sets["Q"], raw, always=self._always)

    def _add_cues_and_modifiers(self) -> None:
        book = self.codebook
        for name, category in book.categories.items():
            self._add_lemma_phrases("Q", name, category.cues, trigger="Q")
            self._cue_regexes.extend((name, re.compile(r)) for r in category.cue_regexes)
            self._lower_regexes["Q"].extend(category.cue_regexes)
        mods = book.modifiers
        for kind in ("negation", "pseudo_negation", "gap", "conditional", "inquiry", "finding", "clause_breaks"):
            self._add_lemma_phrases("M", kind, getattr(mods, kind))
        self._add_lower_phrases("B", "blockers", mods.blockers + ("mixed methods", "mixed-methods"))
        for direction, words in book.directions.items():
            self._add_lemma_phrases("D", direction, words)

    def _build_scope(self) -> Any:
        """The codebook's domain words (and their inflections) as one whole-word regex; None: no gate."""
        forms: set[str] = set()
        for phrase in self.codebook.scope:
            lemmas = [token.lemma_ for token in self._pipe.make_pattern(phrase)]
            forms.update(_trigger_forms(lemmas, lemma=True, loose=self._loose))
        return build_wordset(forms, [], self._loose) if forms else None

    def in_scope(self, text: str, title: str = "") -> bool:
        """Whether title or text names one of the codebook's scope words (always, when it has none)."""
        if self._scope is None:
            return True
        joined = f"{title}\n{text}".lower()
        return self._scope.search(joined, 0, len(joined))

    # ------------------------------------------------------------ public

    def code_text(self, text: str, *, title: str = "") -> list[Hit]:
        """Hits in the title and the text (the fast path: spaCy sees only sentences the trigger finds).

        Nothing for a study outside the codebook's scope, or whose text does not look like English.
        """
        if not self.in_scope(text, title):
            return []
        hits = self._code_field(title, "title", fast=True) if title else []
        return hits + self._code_field(text, "abstract", fast=True)

    def code_text_slow(self, text: str, *, title: str = "") -> list[Hit]:
        """The same hits as `code_text`, with spaCy over every sentence (the reference for tests)."""
        if not self.in_scope(text, title):
            return []
        hits = self._code_field(title, "title", fast=False) if title else []
        return hits + self._code_field(text, "abstract", fast=False)

    def candidate_chunks(self, text: str) -> list[tuple[int, int]]:
        """The stretches of text the pre-filter passes to spaCy: runs of neighbouring candidate chunks merged."""
        lower = text.lower()
        merged: list[tuple[int, int]] = []
        previous_was_candidate = False
        for start, end in self._chunker.chunks(text):
            candidate = self._trigger.hits(lower, text, start, end)
            if candidate and previous_was_candidate:
                merged[-1] = (merged[-1][0], end)
            elif candidate:
                merged.append((start, end))
            previous_was_candidate = candidate
        return merged

    # ------------------------------------------------------------ paths

    def _code_field(self, text: str, field: str, *, fast: bool) -> list[Hit]:
        if not text or not text.strip():
            return []
        if looks_non_english(text):
            log.info("skipping a %s that does not look like English text", field)
            return []
        if not fast:
            return _dedupe(self._code_doc(text, 0, field))
        chunks = self.candidate_chunks(text)
        covered = sum(end - start for start, end in chunks)
        if covered > FULL_DOC_SHARE * len(text):  # one spaCy call beats many when most of the text is candidate
            chunks = [(0, len(text))]
        hits: list[Hit] = []
        for start, end in chunks:
            hits.extend(self._code_doc(text[start:end], start, field))
        return _dedupe(hits)

    def _code_doc(self, text: str, offset: int, field: str) -> list[Hit]:
        view = _View(*self._pipe.parse(text), text)
        buckets: list[list[_Match]] = [[] for _ in view.sents]
        starts = [start for start, _ in view.sents]
        for match in self._matches(view):
            index = bisect.bisect_right(starts, match.start) - 1
            if index >= 0 and match.end <= view.sents[index][1]:
                buckets[index].append(match)
        hits: list[Hit] = []
        for sentence, bucket in zip(view.sents, buckets, strict=True):
            if any(m.kind in "PCTRS" for m in bucket):
                hits.extend(self._code_sentence(view, sentence, bucket, offset, field))
        return hits

    def _matches(self, view: _View) -> list[_Match]:
        doc = view.doc
        found: list[_Match] = []
        for matcher in (self._lemma_matcher, self._lower_matcher):
            for key, start, end in matcher(doc):
                kind, name = self._keys[key]
                found.append(_Match(kind, name, start, end))
        for key, start, end in self._token_matcher(doc) if len(self._token_matcher) else ():
            kind, name = self._keys[key]
            code_id, index = name.rsplit("|", 1)
            found.append(_Match("T", code_id, start, end, f"pattern:{index}"))
        for sentence in view.sents:
            found.extend(self._regex_matches(view, sentence))
        return found

    def _regex_matches(self, view: _View, sentence: tuple[int, int]) -> list[_Match]:
        base, stop = view.chars(*sentence)
        lower = view.text[base:stop].lower()
        found: list[_Match] = []
        if self._any_regex is None or not self._any_regex.search(lower):  # one scan instead of one per regex
            return found
        for kind, table in (("R", self._code_regexes), ("Q", self._cue_regexes)):
            for name, regex in table:
                for m in regex.finditer(lower):
                    if m.end() == m.start():
                        continue
                    first, last = view.tokens_at(base + m.start(), base + m.end())
                    rule = f"regex:{regex.pattern!r}" if kind == "R" else ""
                    found.append(_Match(kind, name, first, last, rule))
        return found

    # ------------------------------------------------------------ one sentence

    def _code_sentence(
        self, view: _View, sentence: tuple[int, int], matches: list[_Match], offset: int, field: str
    ) -> list[Hit]:
        blockers = [m for m in matches if m.kind == "B"]
        matches = [m for m in matches if m.kind == "B" or not _overlaps_any(m, blockers)]
        mods = _by_name(m for m in matches if m.kind == "M")
        if mods.get("gap"):
            return []
        concepts = _select_concepts(m for m in matches if m.kind in "PCTRS")
        cues = _select_cues([m for m in matches if m.kind == "Q"], concepts)
        cues = [
            c for c in cues if not self._purpose_infinitive(view, c, sentence[0]) and not self._activity_gerund(view, c)
        ]
        directions = _by_name(m for m in matches if m.kind == "D")
        context = _Context(view, sentence, mods, directions, cues, self._directional)
        hits: list[Hit] = []
        for concept in concepts:
            hits.extend(self._concept_hits(view, sentence, concept, context, offset, field))
        return hits

    def _purpose_infinitive(self, view: _View, cue: _Match, first: int) -> bool:
        """'to enhance', 'to build': a purpose, not an outcome; such a benefits cue is no cue."""
        if cue.name not in self._directional or cue.start <= first:
            return False
        return view.lower(cue.start - 1) == "to" and view.lower(cue.start) != "to"

    def _activity_gerund(self, view: _View, cue: _Match) -> bool:
        """'improving practice', 'developing relationships': an activity, not an outcome; no benefits cue."""
        return cue.name in self._directional and cue.end - cue.start == 1 and view.lower(cue.start).endswith("ing")

    def _concept_hits(
        self, view: _View, sentence: tuple[int, int], concept: _Concept, ctx: _Context, offset: int, field: str
    ) -> list[Hit]:
        standalone = {c: rule for c, (rule, alone) in concept.codes.items() if alone}
        if standalone:
            chosen = [(code_id, rule, None) for code_id, rule in standalone.items()]
        else:
            categories = {self._codes[c].category for c in concept.codes}
            cue = ctx.nearest_cue(concept, categories)
            if cue is None:
                return []
            chosen = [(c, rule, cue) for c, (rule, _) in concept.codes.items() if self._codes[c].category == cue.name]
        hits = []
        for code_id, rule, cue in chosen:
            hit = self._make_hit(view, sentence, concept, self._codes[code_id], rule, cue, ctx, offset, field)
            if hit is not None:
                hits.append(hit)
        return hits

    def _make_hit(
        self,
        view: _View,
        sentence: tuple[int, int],
        concept: _Concept,
        code: Code,
        rule: str,
        cue: _Match | None,
        ctx: _Context,
        offset: int,
        field: str,
    ) -> Hit | None:
        lo = min(concept.start, cue.start) if cue else concept.start
        hi = max(concept.end, cue.end) if cue else concept.end
        negated = ctx.negated(lo, hi)
        if code.category in self._directional:
            if ctx.inquiry_only():
                return None
            direction = ctx.direction(concept, lo, hi, negated)
        elif negated:
            return None
        else:
            direction = ""
        first, last = view.trimmed(sentence)
        match_start, match_end = view.chars(concept.start, concept.end)
        matched = view.text[match_start:match_end]
        cue_text = view.span_text(cue.start, cue.end) if cue else ""
        kind = _rule_text(rule, matched) if len(rule) == 1 else rule
        cue_rule = f" + cue({cue.name}):{cue_text.lower()!r}" if cue else " (standalone)"
        return Hit(
            code=code.id,
            category=code.category,
            direction=direction,
            evidence=view.text[first:last],
            start=offset + first,
            end=offset + last,
            matched=matched,
            match_start=offset + match_start,
            match_end=offset + match_end,
            cue=cue_text,
            rule=kind + cue_rule,
            confidence=_confidence(cue is None, _distance(concept, cue) if cue else 0),
            field=field,
        )


class _View:
    """Plain-Python facts about one doc (token offsets, lower-case hashes, sentences), read once per doc:
    asking spaCy for Token or Span objects per match costs more than all the matching."""

    def __init__(self, doc: Any, sents: list[tuple[int, int]], idx: list[int], ends: list[int], text: str) -> None:
        self.doc = doc
        self.text = text  # doc.text, which spaCy would rebuild token by token
        self.idx = idx
        self.ends = ends
        self.sents = sents

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
    """What one sentence's modifiers and cues say, asked about token ranges."""

    def __init__(
        self,
        view: _View,
        sentence: tuple[int, int],
        mods: dict[str, list[_Match]],
        directions: dict[str, list[_Match]],
        cues: list[_Match],
        directional: set[str],
    ) -> None:
        self.first, self.last = sentence
        self.cues = cues
        pseudo = mods.get("pseudo_negation", [])
        plain_cues = [c for c in cues if c.name not in directional]
        self.negations = [
            m for m in mods.get("negation", []) if not _overlaps_any(m, pseudo) and not _overlaps_any(m, plain_cues)
        ]
        self.conditionals = mods.get("conditional", [])
        self.has_inquiry = bool(mods.get("inquiry"))
        self.has_finding = bool(mods.get("finding"))
        self.contrasting = directions.get("contrasting", [])
        self.mixed = directions.get("mixed", [])
        breaks = mods.get("clause_breaks", [])
        self.breaks = sorted(m.start for m in breaks)
        self.strong_breaks = sorted(m.start for m in breaks if view.span_text(m.start, m.end) not in _WEAK_BREAKS)

    def nearest_cue(self, concept: _Concept, categories: set[str]) -> _Match | None:
        best: tuple[int, int, _Match] | None = None
        for cue in self.cues:
            if cue.name not in categories:
                continue
            distance = _distance(concept, cue)
            if distance > MAX_CUE_DISTANCE:
                continue
            rank = (distance, 0 if cue.start < concept.start else 1)
            if best is None or rank < best[:2]:
                best = (rank[0], rank[1], cue)
        return best[2] if best else None

    def _clause_start(self, index: int, breaks: list[int]) -> int:
        position = bisect.bisect_right(breaks, index - 1) - 1
        return breaks[position] + 1 if position >= 0 else self.first

    def _clause_end(self, index: int, breaks: list[int]) -> int:
        position = bisect.bisect_left(breaks, index)
        return breaks[position] if position < len(breaks) else self.last

    def negated(self, lo: int, hi: int) -> bool:
        """A negation in the clause from a few tokens before concept+cue to a few after ('were not detected')."""
        window = max(self._clause_start(lo, self.breaks), lo - NEGATION_WINDOW)
        after = min(self._clause_end(hi, self.breaks), hi + NEGATION_AFTER)
        return any(window <= m.start and m.end <= after for m in self.negations)

    def inquiry_only(self) -> bool:
        return self.has_inquiry and not self.has_finding

    def direction(self, concept: _Concept, lo: int, hi: int, negated: bool) -> str:
        clause_lo = self._clause_start(lo, self.strong_breaks)
        clause_hi = self._clause_end(hi, self.strong_breaks)
        if self.mixed or any(clause_lo <= m.start and m.end <= clause_hi for m in self.conditionals):
            return "mixed"
        window = max(self._clause_start(lo, self.breaks), lo - NEGATION_WINDOW)
        if negated or any(window <= m.start and m.start < max(hi, concept.end + 2) for m in self.contrasting):
            return "contrasting"
        return "supporting"


# ---------------------------------------------------------------- helpers


def build_engine(codebook: Codebook) -> RuleEngine:
    """Compile a codebook's rules into a RuleEngine (a few seconds; reuse it)."""
    return RuleEngine(codebook)


def looks_non_english(text: str) -> bool:
    """True for a text of 15+ words with almost no English function words (skip it rather than invent codes).

    The first 2,000 characters decide: enough words, and a 100,000-word text costs no more than an abstract."""
    words = _WORD_RE.findall(text[:2000].lower())
    if len(words) < 15:
        return False
    common = sum(1 for w in words if w in _ENGLISH_WORDS)
    return common / len(words) < 0.06


def _any_of(regexes: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One regex that finds whether any of them matches (None: no regexes, or they cannot be combined,
    e.g. two use the same group name; then each is simply tried)."""
    if not regexes:
        return None
    try:
        return re.compile("|".join(f"(?:{r.pattern})" for r in regexes))
    except re.error:
        return re.compile("")


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


def _rule_text(kind: str, text: str) -> str:
    label = {"P": "phrase", "C": "lemma", "S": "standalone"}.get(kind, kind)
    return f"{label}:{text.lower()!r}"


def _by_name(matches: Any) -> dict[str, list[_Match]]:
    grouped: dict[str, list[_Match]] = {}
    for match in matches:
        grouped.setdefault(match.name, []).append(match)
    return grouped


def _overlaps(a: Any, b: Any) -> bool:
    return a.start < b.end and b.start < a.end


def _overlaps_any(match: Any, others: list[Any]) -> bool:
    return any(_overlaps(match, other) for other in others)


def _select_concepts(matches: Any) -> list[_Concept]:
    """Group matches by span, then keep the longest non-overlapping spans (ties: earliest)."""
    spans: dict[tuple[int, int], _Concept] = {}
    for match in matches:
        concept = spans.setdefault((match.start, match.end), _Concept(match.start, match.end, {}))
        standalone = match.kind == "S"
        previous = concept.codes.get(match.name)
        if previous is None or (standalone and not previous[1]):
            concept.codes[match.name] = (match.rule or match.kind, standalone)
    chosen: list[_Concept] = []
    for concept in sorted(spans.values(), key=lambda c: (-(c.end - c.start), c.start)):
        if not _overlaps_any(concept, chosen):
            chosen.append(concept)
    return sorted(chosen, key=lambda c: c.start)


def _select_cues(cues: list[_Match], concepts: list[_Concept]) -> list[_Match]:
    free = [c for c in cues if not _overlaps_any(c, concepts)]
    chosen: list[_Match] = []
    for cue in sorted(free, key=lambda c: (-(c.end - c.start), c.start, c.name)):
        if not _overlaps_any(cue, chosen):
            chosen.append(cue)
    return sorted(chosen, key=lambda c: c.start)


def _distance(concept: Any, cue: Any) -> int:
    if cue.end <= concept.start:
        return concept.start - cue.end
    if concept.end <= cue.start:
        return cue.start - concept.end
    return 0


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


def _dedupe(hits: list[Hit]) -> list[Hit]:
    """One hit per (field, sentence, code): the most confident; directions that disagree become mixed."""
    best: dict[tuple[str, int, str], Hit] = {}
    for hit in hits:
        key = (hit.field, hit.start, hit.code)
        kept = best.get(key)
        if kept is None:
            best[key] = hit
            continue
        winner = hit if hit.confidence > kept.confidence else kept
        if kept.direction != hit.direction and kept.direction and hit.direction:
            winner = _with_direction(winner, "mixed")
        best[key] = winner
    return sorted(best.values(), key=lambda h: (h.field != "title", h.start, h.code))


def _with_direction(hit: Hit, direction: str) -> Hit:
    from dataclasses import replace

    return replace(hit, direction=direction)
