# cython: language_level=3
# distutils: language = c++
"""Two reads of a spaCy Doc done in C (built by setup.py; pipeline/rules/nlp.py has the Python equivalents, used
when this module is not built, and tests/test_rules.py checks both give the same).

- `token_offsets`: each token's start and end character, and the one-character tokens, read from the token
  structs (`Doc.to_array` and numpy cost more than the whole loop for a 250-token abstract).
- `phrase_matches`: a PhraseMatcher's (key, start, end) matches, in its order, without the per-match callback
  lookup of `PhraseMatcher.__call__` (which decodes each key's string); the engine registers no callbacks.
"""

from libcpp.vector cimport vector
from spacy.matcher.phrasematcher cimport PhraseMatcher
from spacy.structs cimport SpanC
from spacy.tokens.doc cimport Doc


def token_offsets(Doc doc):
    """(idx, ends, single): start and end character of each token, and the tokens one character long."""
    cdef int i
    cdef int start
    cdef int length
    idx = []
    ends = []
    single = []
    for i in range(doc.length):
        start = doc.c[i].idx
        length = doc.c[i].lex.length
        idx.append(start)
        ends.append(start + length)
        if length == 1:
            single.append(i)
    return idx, ends, single


def phrase_matches(PhraseMatcher matcher, Doc doc):
    """matcher(doc) for a matcher without on_match callbacks: [(key, start, end), ...]."""
    cdef vector[SpanC] found
    cdef size_t i
    if doc.length == 0:
        return []
    matcher.find_matches(doc, 0, doc.length, &found)
    return [(found[i].label, found[i].start, found[i].end) for i in range(found.size())]
