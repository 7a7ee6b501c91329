"""The fast path's cheap steps: split text into sentence chunks, and find the text worth giving to spaCy.

- `SentenceChunker` splits only where spaCy's sentencizer is sure to split too (a sentence-final '.', '!' or '?'
  that the tokenizer makes its own token, then whitespace, then a letter or digit). It may split less often than
  spaCy, never more: a chunk is then one or more whole spaCy sentences, and spaCy re-splits it exactly as it
  would the full text (its tokenizer works on whitespace-delimited pieces, its sentencizer only looks back).
- `Trigger` is one compiled regex per word class (a trie of literals, so matching costs the depth of the trie,
  not the number of words) over every surface form that a code's rule can match. A hit needs a standalone
  phrase, or a concept and a category cue, in one sentence, so text without them cannot produce a code.
- `required_literals` reads a rule's regex for the literal strings every match must contain, so a regex rule
  joins the trie as plain literals (found by containment, which no anchor or look-around can change); a regex
  that needs no literal makes every text a candidate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# a candidate end: . ! or ? (after a letter, digit, % or ')'), closing quotes/brackets, whitespace, then a letter
# or digit; the punctuation comes first so the regex engine can skip to it
_BOUNDARY_RE = re.compile(r"""([.!?])(?<=[a-z0-9%)][.!?])(["'”’)\]]*)(\s+)(?=[A-Z0-9])""")

_LETTER = r"[^\W\d_]"


class SentenceChunker:
    """Conservative sentence splitter that agrees with spaCy's tokenizer + sentencizer (see module doc)."""

    def __init__(self, special_cases: set[str]) -> None:
        self._special = special_cases

    def chunks(self, text: str) -> list[tuple[int, int]]:
        """(start, end) character spans covering the text's non-space content, in order."""
        spans: list[tuple[int, int]] = []
        start = len(text) - len(text.lstrip())
        for match in _BOUNDARY_RE.finditer(text):
            if match.start() < start or not self._is_split(text, match.start(1)):
                continue
            spans.append((start, match.start(3)))
            start = match.end(3)
        end = len(text.rstrip())
        if start < end:
            spans.append((start, end))
        return spans

    def _is_split(self, text: str, period: int) -> bool:
        # the whitespace-delimited piece ending at the period (at most 81 characters: a special case is short)
        piece = text[max(0, period - 80) : period + 1].rsplit(None, 1)[-1]
        if "/" in piece or "@" in piece or "www" in piece or "&" in piece:
            return False
        special = self._special
        if piece[:-1].isalpha():  # a plain word: the whole piece is the only tail
            return piece not in special and piece.lower() not in special
        # spaCy may split a word where a letter follows a non-letter ('6m.' -> '6' + 'm.'), then match a special
        # case ('m.') that keeps the period: every such tail must not be a special case
        for i in range(len(piece)):
            if (i == 0 or not piece[i - 1].isalpha()) and piece[i].isalpha():
                tail = piece[i:]
                if tail in special or tail.lower() in special:
                    return False
        return True


# ---------------------------------------------------------------- trigger regex


@dataclass
class WordSet:
    """Literals (whole words where a token must be a whole word, or anywhere), searched in one regex."""

    literal_re: re.Pattern[str] | None

    def search(self, text: str, start: int, end: int) -> bool:
        return self.literal_re is not None and self.literal_re.search(text, start, end) is not None


@dataclass
class Trigger:
    """Whether a stretch of text can hold a hit: a standalone phrase's word, or a concept's word and a cue's word.

    A hit needs a standalone phrase, or a concept and a category cue in the same sentence; each needs all of its
    tokens, so each needs the surface form of its most selective token (see `RuleEngine`), or a literal its
    regex needs. Words are matched as whole words: spaCy starts or ends a token inside a run of letters only in its
    tokenizer special cases ("cannot" -> "can" + "not"), and words that are such pieces are matched anywhere.
    `raw` holds the literals case-sensitive token regexes (TEXT / ORTH) need, searched in the text as written.
    """

    standalone: WordSet
    concepts: WordSet
    cues: WordSet
    raw: WordSet
    always: bool = False  # a rule without a findable word: every stretch of text is a candidate

    def hits(self, lower: str, raw: str, start: int, end: int) -> bool:
        if self.always:
            return True
        # concept and cue first: on-topic text has both early, and the standalone search then need not run
        concept = self.concepts.search(lower, start, end) or self.raw.search(raw, start, end)
        return concept and self.cues.search(lower, start, end) or self.standalone.search(lower, start, end)


def build_wordset(literals: set[str], loose: set[str] | frozenset[str], free: set[str] | None = None) -> WordSet:
    """`loose`: literals spaCy may split out of a longer word (special-case pieces); they, the literals that do
    not begin and end with a letter, and `free` (literals regexes need) are matched anywhere, the rest as whole
    words."""
    words = {w for w in literals if w}
    anchored = sorted(w for w in words if w not in loose and w[0].isalpha() and w[-1].isalpha())
    anywhere = sorted(words.difference(anchored) | {w for w in free or () if w})
    branches = _trie_branches(anchored, anchored=True) + _trie_branches(anywhere, anchored=False)
    return WordSet(re.compile("|".join(branches)) if branches else None)


def split_pieces(special_cases: dict[str, list[str]]) -> set[str]:
    """Lower-cased pieces of tokenizer special cases that start or end inside a run of letters."""
    loose: set[str] = set()
    for pieces in special_cases.values():
        for left, right in zip(pieces, pieces[1:], strict=False):
            if left and right and left[-1].isalpha() and right[0].isalpha():
                loose.update({left.lower(), right.lower()})
    return loose


def _trie_branches(words: list[str], *, anchored: bool) -> list[str]:
    """One regex alternative per first character: 'c(?<!L.)(?:rest...)(?!L)' for whole words.

    Each alternative begins with a literal character, so the regex engine scans for those characters instead of
    trying the trie at every position; the look-behind after it checks that no letter precedes the word."""
    trie: dict[str, dict] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    branches = []
    for char, child in sorted(trie.items()):
        head = re.escape(char) + (f"(?<!{_LETTER}.)" if anchored else "")
        branches.append(head + _emit(child) + (f"(?!{_LETTER})" if anchored else ""))
    return branches


def _emit(node: dict[str, dict]) -> str:
    branches = [re.escape(char) + _emit(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a word ends here: the longer words are optional (greedy, then backtrack)
        return f"(?:{body})?" if len(branches) > 1 or len(body) > 1 else f"{body}?"
    return body


# ---------------------------------------------------------------- literals a regex needs


def required_literals(pattern: str) -> list[tuple[str, ...]] | None:
    """Groups of literal strings such that every match of `pattern` contains one string of each group, most
    selective group first (its shortest string is the longest); None when nothing is known (no literal is
    required, or the pattern ignores case). Containment does not depend on anchors or look-arounds."""
    from re import _parser  # the stdlib's own regex parser (private, but what re.compile itself runs)

    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
        return None
    groups = {tuple(sorted(group)) for group in _required(list(parsed)) if all(group)}
    return sorted(groups, key=lambda g: (-min(map(len, g)), len(g), g)) or None


def _required(items: list) -> list[set[str]]:
    """For a parsed sequence: literal runs, and what its groups, alternations and repeats of 1+ require."""
    from re import _constants as op_codes

    groups: list[set[str]] = []
    run = ""
    for op, value in items:
        if op is op_codes.LITERAL:
            run += chr(value)
            continue
        if run:
            groups.append({run})
            run = ""
        if op is op_codes.SUBPATTERN and not value[1] and not value[2]:  # no inline flags
            groups.extend(_required(list(value[3])))
        elif op is op_codes.BRANCH:
            choice = _branch_literals(value[1])
            groups.extend([choice] if choice else [])
        elif op in (op_codes.MAX_REPEAT, op_codes.MIN_REPEAT) and value[0] >= 1:
            groups.extend(_required(list(value[2])))
    if run:
        groups.append({run})
    return groups


def _branch_literals(alternatives: list) -> set[str] | None:
    """One literal set for an alternation: each alternative's most selective group, joined."""
    joined: set[str] = set()
    for alternative in alternatives:
        groups = _required(list(alternative))
        if not groups:
            return None
        joined |= max(groups, key=lambda g: (min(map(len, g)), -len(g)))
    return joined


def match_heads(pattern: str) -> set[str] | None:
    """Literal strings one of which begins every match of `pattern` (its text, after zero-width assertions);
    None when there is no such set (the pattern may begin with a class or a repeat, or ignore case)."""
    from re import _parser

    try:
        parsed = _parser.parse(pattern)
    except re.error:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.LOCALE):
        return None
    heads = _heads(list(parsed))
    return heads if heads and all(heads) else None


def _heads(items: list) -> set[str] | None:
    """Heads of a parsed sequence: its literal run, extended through one group or alternation after it."""
    from re import _constants as op_codes

    prefix = ""
    for op, value in items:
        if op is op_codes.LITERAL:
            prefix += chr(value)
            continue
        if not prefix and op in (op_codes.AT, op_codes.ASSERT, op_codes.ASSERT_NOT):
            continue  # zero-width before the first character: the match's text begins after it
        inner = _group_heads(op, value)
        if inner:
            return {prefix + head for head in inner}
        break
    return {prefix} if prefix else None


def _group_heads(op: object, value: object) -> set[str] | None:
    from re import _constants as op_codes

    if op is op_codes.SUBPATTERN:
        _group, add_flags, del_flags, items = value  # type: ignore[misc]
        return None if add_flags or del_flags else _heads(list(items))
    if op is op_codes.BRANCH:
        heads: set[str] = set()
        for alternative in value[1]:  # type: ignore[index]
            found = _heads(list(alternative))
            if not found:
                return None
            heads |= found
        return heads
    return None


class RuleRegex:
    """A rule's regex, with the literals every match contains (`needs`) and the literals it begins with.

    `finditer` gives exactly `regex.finditer`'s matches but tries the regex only where one of its heads
    occurs: a regex that begins with `\\b` cannot use the regex engine's fast scan for its first characters, and
    trying it at every position of every sentence was the engine's largest regex cost."""

    def __init__(self, pattern: str) -> None:
        self.regex = re.compile(pattern)
        self.needs = required_literals(pattern)
        # checked smallest group first: a group of one literal rejects a text at the cost of one `in`
        self._checks = sorted(self.needs, key=len) if self.needs else []
        heads = match_heads(pattern)
        self._heads = build_wordset(set(), frozenset(), heads).literal_re if heads else None

    def could_match(self, text: str) -> bool:
        """False when the text lacks a literal every match contains (`in` is faster here than a regex)."""
        for group in self._checks:
            for literal in group:
                if literal in text:
                    break
            else:
                return False
        return True

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        if self._heads is None:
            yield from self.regex.finditer(text)
            return
        position = 0
        while (head := self._heads.search(text, position)) is not None:
            start = head.start()
            match = self.regex.match(text, start)  # the leftmost match begins at the first head where one does
            if match is None:
                position = start + 1  # heads may overlap: the next one may begin inside this one
                continue
            yield match  # never empty: it begins with a head
            position = match.end()
