"""The spaCy side of the engine: a blank English pipeline, a sentencizer and a lower-casing lookup lemmatizer."""

from __future__ import annotations

from functools import lru_cache
from typing import Any


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
    """spacy.blank('en') + sentencizer; lemmas looked up from the lower-cased token.

    Sentence starts follow spaCy's Sentencizer rule exactly (a sentence starts at the first token after one of its
    punctuation characters that is neither punctuation nor such a character) but are computed over arrays, which
    is several times faster than the component's loop over Token objects; a test compares both on real abstracts.

    The lookup table is case-sensitive ('Teachers' is not in it), so lemmas come from `token.lower_`; a plural the
    table lacks loses its plural ending (`fallback_lemma`), any other unknown word is its own lemma. Lemma hashes
    are cached per lower-case form.
    """

    def __init__(self) -> None:
        import spacy

        self.nlp = spacy.blank("en")
        sentencizer = self.nlp.add_pipe("sentencizer")
        self.vocab = self.nlp.vocab
        # every one of the Sentencizer's characters is a single character: a token is one when its text is
        self._punct_chars = frozenset(sentencizer.punct_chars)
        assert all(len(ch) == 1 for ch in self._punct_chars)
        self._table = lemma_table()
        self._cache: dict[int, int] = {}

    def __call__(self, text: str) -> Any:
        return self.parse(text)[0]

    def parse(self, text: str) -> tuple[Any, list[tuple[int, int]], list[int], list[int]]:
        """The doc, its sentences as (start, end) token ranges, and each token's start and end character
        (all read from one array: cheaper than iterating doc.sents or Token objects)."""
        from spacy.attrs import IDX, IS_PUNCT, LENGTH

        doc = self.nlp.make_doc(text)
        if not len(doc):
            return doc, [], [], []
        table = doc.to_array([IDX, LENGTH, IS_PUNCT]).astype("int64")
        idx = table[:, 0].tolist()
        ends = (table[:, 0] + table[:, 1]).tolist()
        starts = self._split_sentences(doc, text, idx, table[:, 1].tolist(), table[:, 2].tolist())
        self._lemmatise(doc)
        return doc, list(zip(starts, starts[1:] + [len(doc)], strict=True)), idx, ends

    def spacy_sentences(self, text: str) -> list[tuple[int, int]]:
        """Sentence token ranges from spaCy's own Sentencizer component (the reference for tests)."""
        return [(s.start, s.end) for s in self.nlp(text).sents]

    def _split_sentences(
        self, doc: Any, text: str, idx: list[int], lengths: list[int], is_punct: list[int]
    ) -> list[int]:
        """spaCy's Sentencizer rule: a sentence starts at the first token after a sentence-final character
        that is neither punctuation nor such a character. Sets SENT_START and returns the start tokens."""
        import numpy
        from spacy.attrs import SENT_START

        punct_chars = self._punct_chars
        in_chars = [n == 1 and text[i] in punct_chars for i, n in zip(idx, lengths, strict=True)]
        found = [0]
        seen_period = False
        for position, (final, punct) in enumerate(zip(in_chars, is_punct, strict=True)):
            if seen_period and not punct and not final:
                found.append(position)
                seen_period = False
            elif final:
                seen_period = True
        starts = numpy.full((len(doc), 1), -1, dtype="int64")
        starts[found, 0] = 1
        doc.from_array([SENT_START], starts.astype("uint64"))
        return found

    def make_pattern(self, phrase: str) -> Any:
        """A lemmatised pattern doc for a PhraseMatcher on LEMMA (or LOWER)."""
        doc = self.nlp.make_doc(phrase)
        self._lemmatise(doc)
        return doc

    def lemmas(self, phrase: str) -> list[str]:
        return [token.lemma_ for token in self.make_pattern(phrase)]

    def special_cases(self) -> dict[str, list[str]]:
        """The tokenizer's special cases: text -> the token texts it becomes."""
        from spacy.attrs import ORTH

        rules = self.nlp.tokenizer.rules or {}
        return {text: [piece.get(ORTH, piece.get("ORTH", "")) for piece in pieces] for text, pieces in rules.items()}

    def _lemmatise(self, doc: Any) -> None:
        """Set LEMMA from LOWER through arrays (no Python Token objects: this runs on every candidate)."""
        from spacy.attrs import LEMMA, LOWER

        if not len(doc):
            return
        cache = self._cache
        lowers = doc.to_array([LOWER])
        lemmas = lowers.copy()
        for i, lower in enumerate(lowers.tolist()):
            lemma = cache.get(lower)
            if lemma is None:
                text = self.vocab.strings[lower]
                lemma = self.vocab.strings.add(self._table.get(text) or fallback_lemma(text))
                cache[lower] = lemma
            lemmas[i] = lemma
        doc.from_array([LEMMA], lemmas.reshape(-1, 1))
