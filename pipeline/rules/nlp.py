"""The spaCy side of the engine: a blank English vocab and tokenizer whose lexemes carry their lemma.

Every lexeme's NORM is set, once, when spaCy creates it, to the lookup lemma of its lower-case form
(spacy-lookups-data's table, `fallback_lemma` for plurals it lacks). A Doc then carries its lemmas without any
per-token work, and the PhraseMatcher for lemma phrases matches on NORM. Sentence starts follow spaCy's
Sentencizer rule exactly, without running the component (tests compare both on real abstracts).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy

from pipeline.rules.compiled import fastdoc

FASTDOC = fastdoc()  # the C reads of a Doc, when built (setup.py); None: the Python ones below


@lru_cache(maxsize=1)
def lemma_table() -> dict[str, str]:
    """spacy-lookups-data's English lemma lookup (form -> lemma), keyed by lower-case forms."""
    from spacy.util import load_language_data, registry

    table = load_language_data(registry.lookups.get("en")["lemma_lookup"])
    return {form: lemma for form, lemma in table.items() if form == form.lower()}


def fallback_lemma(word: str) -> str:
    """A plural the lookup table lacks ('enablers', 'preconditions') becomes its singular; else the word itself."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "'s", "’s")) and word.isalpha():
        return word[:-1]
    return word


def lemma_of(text: str) -> str:
    """The engine's lemma of a token text: the lookup lemma of its lower-case form."""
    lower = text.lower()
    return lemma_table().get(lower) or fallback_lemma(lower)


@lru_cache(maxsize=1)
def word_log_probs() -> dict[str, float]:
    """spacy-lookups-data's English word log-probabilities: how common a word is (rarer = more selective)."""
    from spacy.util import load_language_data, registry

    return dict(load_language_data(registry.lookups.get("en")["lexeme_prob"]))


@lru_cache(maxsize=1)
def inverse_lemma_table() -> dict[str, frozenset[str]]:
    """lemma -> every lower-case form whose lemma it is (for the pre-filter's surface forms)."""
    inverse: dict[str, set[str]] = {}
    for form, lemma in lemma_table().items():
        inverse.setdefault(lemma, set()).add(form)
    return {lemma: frozenset(forms) for lemma, forms in inverse.items()}


class Pipeline:
    """spacy.blank('en')'s tokenizer and vocab, with lemmas on the lexemes and spaCy's sentence starts.

    - NORM = `lemma_of(text)` for every lexeme (set by the vocab's attribute getter as lexemes are created),
      and the tokenizer's special cases no longer override NORM ("n't" keeps its lexeme's lemma, as it had when
      lemmas were looked up from `token.lower_`). The LEMMA attribute is copied from NORM only when asked
      (token patterns on LEMMA).
    - Sentence starts: a regex finds the Sentencizer's sentence-final characters among the one-character tokens;
      only the tokens after them are looked at.
    """

    def __init__(self) -> None:
        import spacy
        from spacy.attrs import IDX, IS_PUNCT, LENGTH, NORM, ORTH

        self.nlp = spacy.blank("en")
        sentencizer = self.nlp.add_pipe("sentencizer")
        self.vocab = self.nlp.vocab
        self._special = {
            text: [piece[ORTH] for piece in pieces] for text, pieces in (self.nlp.tokenizer.rules or {}).items()
        }
        self.vocab.lex_attr_getters[NORM] = lemma_of
        for lexeme in self.vocab:  # the lexemes spaCy created before the getter was set
            lexeme.norm_ = lemma_of(lexeme.orth_)
        self.nlp.tokenizer.rules = {text: [{ORTH: p} for p in pieces] for text, pieces in self._special.items()}
        self._punct_chars = frozenset(sentencizer.punct_chars)
        # a token is final when its whole text is one of these characters, none of which is a letter or digit
        assert all(len(ch) == 1 and not ch.isalnum() for ch in self._punct_chars)
        # the ASCII final characters and any non-ASCII character (checked after): a class of 128 is slow in `re`
        ascii_finals = "".join(re.escape(ch) for ch in sorted(self._punct_chars) if ch.isascii())
        self._final_re = re.compile(f"[{ascii_finals}\x80-\U0010ffff]")
        self._is_punct = self.vocab.lex_attr_getters[IS_PUNCT]  # the function behind the IS_PUNCT flag
        self._columns = [IDX, LENGTH]

    def __call__(self, text: str) -> Any:
        return self.parse(text)[0]

    def parse(self, text: str) -> tuple[Any, list[tuple[int, int]], list[int], list[int]]:
        """The doc, its sentences as (start, end) token ranges, and each token's start and end character."""
        doc = self.nlp.tokenizer(text)
        if not len(doc):
            return doc, [], [], []
        idx, ends, single = self.token_offsets(doc)
        starts = self._sentence_starts(text, idx, ends, single)
        return doc, list(zip(starts, starts[1:] + [len(doc)], strict=True)), idx, ends

    def token_offsets(self, doc: Any) -> tuple[list[int], list[int], list[int]]:
        """Each token's start and end character, and the tokens one character long (fastdoc.pyx when built)."""
        if FASTDOC is not None:
            return FASTDOC.token_offsets(doc)
        columns = doc.to_array(self._columns)
        single = numpy.flatnonzero(columns[:, 1] == 1).tolist()
        columns[:, 1] += columns[:, 0]  # LENGTH -> end character
        idx, ends = columns.T.tolist()
        return idx, ends, single

    def phrase_matches(self, matcher: Any, doc: Any) -> list[tuple[int, int, int]]:
        """matcher(doc) for a PhraseMatcher without on_match callbacks (fastdoc.pyx when built)."""
        return FASTDOC.phrase_matches(matcher, doc) if FASTDOC is not None else matcher(doc)

    def _sentence_starts(self, text: str, idx: list[int], ends: list[int], single: list[int]) -> list[int]:
        """spaCy's Sentencizer rule: a sentence starts at token 0 and at the first token after a sentence-final
        character (a token that is one of its characters) that is neither punctuation nor such a character.
        The final tokens are found by a regex over the characters of the one-character tokens (`single`), so
        only the tokens after them are looked at."""
        count = len(idx)
        finals = self._punct_chars
        is_punct = self._is_punct
        found = [0]
        done = 0  # tokens before this one are already read
        chars = "".join(map(text.__getitem__, map(idx.__getitem__, single)))
        for match in self._final_re.finditer(chars):
            token = single[match.start()]
            if token < done or chars[match.start()] not in finals:
                continue
            following = token + 1
            while following < count:
                piece = text[idx[following] : ends[following]]
                if piece[0].isalnum() or piece not in finals and not is_punct(piece):
                    break  # a plain token (one beginning with a letter or digit is neither punctuation nor final)
                following += 1
            if following < count:
                found.append(following)
            done = following
        return found

    def annotate(self, doc: Any, sentence_starts: list[int]) -> None:
        """Set LEMMA (from NORM) and the sentence starts on the doc, for token patterns that ask for them."""
        from spacy.attrs import LEMMA, NORM, SENT_START

        if not len(doc):
            return
        starts = numpy.full(len(doc), -1, dtype="int64")
        starts[sentence_starts] = 1
        lemmas = doc.to_array([NORM]).astype("uint64")
        doc.from_array([LEMMA, SENT_START], numpy.stack([lemmas, starts.astype("uint64")], axis=1))

    def spacy_sentences(self, text: str) -> list[tuple[int, int]]:
        """Sentence token ranges from spaCy's own Sentencizer component (the reference for tests)."""
        return [(s.start, s.end) for s in self.nlp(text).sents]

    def make_pattern(self, phrase: str) -> Any:
        """A pattern doc for a PhraseMatcher on NORM (the lemma) or LOWER."""
        return self.nlp.make_doc(phrase)

    def lemmas(self, phrase: str) -> list[str]:
        return [token.norm_ for token in self.make_pattern(phrase)]

    def special_cases(self) -> dict[str, list[str]]:
        """The tokenizer's special cases: text -> the token texts it becomes."""
        return dict(self._special)
