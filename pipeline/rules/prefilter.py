"""The fast path's two cheap steps: split text into sentence chunks, and find the chunks worth coding.

- `SentenceChunker` splits only where spaCy's sentencizer is sure to split too (a sentence-final '.', '!' or '?'
  that the tokenizer makes its own token, then whitespace, then a letter or digit). It may split less often than
  spaCy, never more: a chunk is then one or more whole spaCy sentences, and spaCy re-splits it exactly as it
  would the full text (its tokenizer works on whitespace-delimited pieces, its sentencizer only looks back).
- `Trigger` is one compiled regex (a trie of literals, so matching costs the depth of the trie, not the number
  of words) over every surface form that a code's rule can match. A rule needs one of its words in the sentence,
  so a chunk without a trigger cannot produce a code: the fast path skips it and gives the slow path's output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# a candidate end: . ! or ? (not an ellipsis), closing quotes/brackets, whitespace, then a letter or digit
_BOUNDARY_RE = re.compile(r"""(?<=[a-z0-9%)])([.!?])(["'”’)\]]*)(\s+)(?=[A-Z0-9])""")
_WORD_START_RE = re.compile(r"\S+$")


class SentenceChunker:
    """Conservative sentence splitter that agrees with spaCy's tokenizer + sentencizer (see module doc)."""

    def __init__(self, special_cases: set[str]) -> None:
        self._special = special_cases

    def chunks(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character spans covering the text's non-space content, in order."""
        spans: list[tuple[int, int]] = []
        start = _skip_space(text, 0)
        for match in _BOUNDARY_RE.finditer(text):
            if match.start() < start or not self._is_split(text, match.start(1)):
                continue
            end = match.start(3)
            spans.append((start, end))
            start = match.end(3)
        end = len(text.rstrip())
        if start < end:
            spans.append((start, end))
        return spans

    def _is_split(self, text: str, period: int) -> bool:
        word = _WORD_START_RE.search(text, max(0, period - 80), period + 1)  # a special case is short
        if word is None:
            return False
        piece = word.group(0)
        if any(mark in piece for mark in ("/", "@", "www", "://", "&")):
            return False
        # spaCy may split a word where a letter follows a non-letter ('6m.' -> '6' + 'm.'), then match a special
        # case ('m.') that keeps the period: every such tail must not be a special case
        for i in range(len(piece)):
            if (i == 0 or not piece[i - 1].isalpha()) and piece[i].isalpha():
                tail = piece[i:]
                if tail in self._special or tail.lower() in self._special:
                    return False
        return True


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


# ---------------------------------------------------------------- trigger regex

_LETTER = r"[^\W\d_]"


@dataclass
class WordSet:
    """Literals (whole words where a token must be a whole word) and regexes, searched in lower-cased text."""

    literal_re: re.Pattern[str] | None
    regexes: tuple[re.Pattern[str], ...] = ()

    def search(self, lower: str, start: int, end: int) -> bool:
        if self.literal_re is not None and self.literal_re.search(lower, start, end):
            return True
        return any(r.search(lower[start:end]) for r in self.regexes)


@dataclass
class Trigger:
    """Whether a stretch of text can hold a hit: a standalone phrase's word, or a concept's word and a cue's word.

    A hit needs a standalone phrase, or a concept and a category cue in the same sentence; each needs all of its
    tokens, so each needs the surface form of its most selective token (see `RuleEngine`). Literals are matched
    as whole words: spaCy starts or ends a token inside a run of letters only in its tokenizer special cases
    ("cannot" -> "can" + "not"), and literals that are such pieces are matched anywhere.
    """

    standalone: WordSet
    concepts: WordSet
    cues: WordSet
    raw_regexes: tuple[re.Pattern[str], ...] = ()  # case-sensitive token REGEX values (TEXT / ORTH)
    always: bool = False  # a LEMMA regex cannot be found in surface text: every chunk is a candidate

    def hits(self, lower: str, raw: str, start: int, end: int) -> bool:
        if self.always or self.standalone.search(lower, start, end):
            return True
        concept = self.concepts.search(lower, start, end) or any(r.search(raw[start:end]) for r in self.raw_regexes)
        return concept and self.cues.search(lower, start, end)


def build_wordset(literals: set[str], regexes: list[str], loose: set[str]) -> WordSet:
    """`loose`: literals spaCy may split out of a longer word (special-case pieces); matched without anchors."""
    words = {w for w in literals if w}
    anchored = sorted(w for w in words if w not in loose and w[0].isalpha() and w[-1].isalpha())
    free = sorted(words.difference(anchored))
    parts = []
    if anchored:
        parts.append(f"(?<!{_LETTER})(?:{_trie_regex(anchored)})(?!{_LETTER})")
    if free:
        parts.append(_trie_regex(free))
    literal_re = re.compile("|".join(parts)) if parts else None
    return WordSet(literal_re, tuple(re.compile(_unanchor(r)) for r in regexes))


def split_pieces(special_cases: dict[str, list[str]]) -> set[str]:
    """Lower-cased pieces of tokenizer special cases that start or end inside a run of letters."""
    loose: set[str] = set()
    for pieces in special_cases.values():
        for left, right in zip(pieces, pieces[1:], strict=False):
            if left and right and left[-1].isalpha() and right[0].isalpha():
                loose.update({left.lower(), right.lower()})
    return loose


def _unanchor(pattern: str) -> str:
    """Token regexes are anchored to the token; in running text the same letters occur unanchored."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    return pattern.replace("\\A", "").replace("\\Z", "")


def _trie_regex(words: list[str]) -> str:
    """A regex equivalent to 'w1|w2|...' whose alternatives share prefixes, so it scans quickly."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _emit(trie)


def _emit(node: dict[str, dict]) -> str:
    branches = [re.escape(char) + _emit(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a word ends here: the longer words are optional (greedy, then backtrack)
        return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
    return body
