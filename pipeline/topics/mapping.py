"""Topic -> codebook codes: a score from meaning (the backend's embeddings) and wording (TF-IDF), and a threshold.

A topic is represented by its c-TF-IDF words and its representative documents; a code by its label and
definition, its example sentences and its seed words (one third each). Both are compared twice:

- semantic: cosine similarity of their embeddings, with the backend that built the topics;
- lexical: cosine similarity of their TF-IDF vectors (vocabulary from the studies and the codebook).

The score is the geometric mean of the two (for the tfidf backend, the lexical similarity alone). Embeddings
alone do not tell a topic about school governance from one about e-government: on real off-codebook corpora
(benchmarks/topics_bench.py calibrate) model2vec gave topics about project management or e-government 0.74 with
a code, above the 0.68 of the weakest hand-coded group of school sentences. Requiring the topic to use the
code's words too separates them. A topic whose best score is below the threshold is an emergent theme.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.codebook import Code, Codebook
from pipeline.topics.embeddings import Embedder, tfidf_embedder

# Calibrated with benchmarks/topics_bench.py calibrate: the best score of any topic of three off-codebook corpora
# (information systems, veterinary, ecology; UMAP + HDBSCAN and PCA + KMeans topics, 177-245 per backend) vs the
# lowest score of a group of real sentences coded by hand (tests/data/coding, 34 codes) with its own code:
# model2vec 0.278 vs 0.439, minilm 0.235 vs 0.448, tfidf 0.191 vs 0.259. Each threshold sits just above the
# off-codebook maximum, so that the broad topics of a real school corpus (the seeds' topics: 0.29-0.39) still map.
MAP_THRESHOLDS: dict[str, float] = {"minilm": 0.25, "model2vec": 0.28, "tfidf": 0.20}
MAX_CODES_PER_TOPIC = 3
# A second or third code must be nearly as close as the best one: a topic is one theme, not a list of codes.
SECOND_CODE_MARGIN = 0.05

_SENTENCE_RE = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"'“‘(]*[A-Z0-9])")
_MIN_SENTENCE_CHARS = 20


@dataclass(frozen=True)
class Vectors:
    """Texts in both spaces: dense semantic rows (None for the tfidf backend) and sparse lexical rows (CSR),
    all L2-normalised. Lexical rows stay sparse: 10,000 abstracts have a vocabulary of several 100,000 terms."""

    semantic: np.ndarray | None
    lexical: Any

    def __len__(self) -> int:
        return int(self.lexical.shape[0])


@dataclass(frozen=True)
class Space:
    """The two ways texts are compared for the mapping; make one per corpus with `make_space`."""

    semantic: Embedder | None
    lexical: Embedder

    def vectors(self, texts: Sequence[str], *, cache: bool = True) -> Vectors:
        """Both kinds of vectors; `cache=False` for throw-away texts (sentences), see embeddings.py."""
        texts = list(texts)
        semantic = _unit_rows(self.semantic.embed(texts, cache=cache)) if self.semantic is not None else None
        return Vectors(semantic, _unit_sparse(self.lexical.mapping_vectors(texts)))

    def similarity(self, a: Vectors, b: Vectors) -> np.ndarray:
        """Scores a x b: geometric mean of semantic and lexical cosine (lexical only without embeddings)."""
        lexical = np.clip(_dense(a.lexical @ b.lexical.T), 0.0, 1.0)
        if a.semantic is None or b.semantic is None:
            return lexical
        semantic = np.clip(a.semantic @ b.semantic.T, 0.0, 1.0)
        return np.sqrt(semantic * lexical)


def make_space(embedder: Embedder, corpus: Sequence[str], codebook: Codebook) -> Space:
    """The backend's embeddings plus a TF-IDF over the corpus and the codebook (the tfidf backend is both)."""
    if embedder.backend == "tfidf":
        return Space(None, embedder)
    return Space(embedder, tfidf_embedder().fit(corpus, extra=codebook_texts(codebook)))


@dataclass(frozen=True)
class CodeVectors:
    ids: tuple[str, ...]
    categories: tuple[str, ...]
    vectors: Vectors  # one row per code


def codebook_texts(codebook: Codebook) -> list[str]:
    """Every text a code is represented by (for backends that learn a vocabulary from the corpus)."""
    return [text for code in codebook.codes for text in _code_parts(code)]


def code_vectors(codebook: Codebook, space: Space) -> CodeVectors:
    """One vector per code and space: the mean of its definition, examples and seed words (each normalised)."""
    parts = [_code_parts(code) for code in codebook.codes]
    flat = space.vectors([text for texts in parts for text in texts])

    pooling = _pooling_matrix([len(texts) for texts in parts])
    return CodeVectors(
        ids=tuple(c.id for c in codebook.codes),
        categories=tuple(c.category for c in codebook.codes),
        vectors=_pool(flat, pooling),
    )


def _code_parts(code: Code) -> list[str]:
    texts = [f"{code.label}. {code.definition}"]
    examples = [e.text for e in code.examples if e.text.strip()]
    if examples:
        texts.append(" ".join(examples))
    if code.seed_words:
        texts.append(", ".join(code.seed_words))
    return texts


def topic_vectors(topics: Sequence[tuple[Sequence[str], Sequence[str]]], space: Space) -> Vectors:
    """One row per topic (words, representative documents): half its words, half its documents' centroid."""
    if not topics:
        return take(space.vectors(["x"]), [])
    texts: list[str] = []
    groups: list[list[int]] = []  # per topic: sizes of its parts (words, documents), each part weighs the same
    for words, documents in topics:
        parts = ([[", ".join(words)]] if words else []) + ([list(documents)] if documents else [])
        texts += [t for part in parts for t in part]
        groups.append([len(part) for part in parts])
    parts = _pool(space.vectors(texts), _pooling_matrix([n for sizes in groups for n in sizes]))
    return _pool(parts, _pooling_matrix([len(sizes) for sizes in groups]))


def _pooling_matrix(sizes: Sequence[int]) -> Any:
    """A sparse (groups x rows) matrix that averages consecutive runs of rows of the given sizes."""
    from scipy import sparse

    rows = np.repeat(np.arange(len(sizes)), sizes)
    weights = np.repeat([1.0 / n if n else 0.0 for n in sizes], sizes)
    return sparse.csr_matrix((weights, (rows, np.arange(len(rows)))), shape=(len(sizes), int(sum(sizes))))


def _pool(vectors: Vectors, pooling: Any) -> Vectors:
    """Mean of each group of rows, renormalised, in both spaces."""
    semantic = None if vectors.semantic is None else _unit_rows(pooling @ vectors.semantic)
    return Vectors(semantic, _unit_sparse(pooling @ vectors.lexical))


def take(vectors: Vectors, rows: Sequence[int]) -> Vectors:
    """The given rows (repeats allowed) of both spaces."""
    index = np.asarray(rows, dtype=np.int64)
    return Vectors(None if vectors.semantic is None else vectors.semantic[index], vectors.lexical[index])


def score_matrix(topics: Vectors, codes: CodeVectors, space: Space) -> np.ndarray:
    """Scores, topics x codes, rounded so that platform noise cannot change a mapping."""
    if not len(topics) or not len(codes.ids):
        return np.zeros((len(topics), len(codes.ids)))
    return np.round(space.similarity(topics, codes.vectors), 4)


def mapped_codes(scores: np.ndarray, ids: Sequence[str], threshold: float) -> list[tuple[str, float]]:
    """The codes a topic maps to, best first: above the threshold and within the margin of the best (ties by id)."""
    order = sorted(range(len(ids)), key=lambda i: (-scores[i], ids[i]))
    if not order or scores[order[0]] < threshold:
        return []
    best = scores[order[0]]
    kept = [i for i in order if scores[i] >= threshold and scores[i] >= best - SECOND_CODE_MARGIN]
    return [(ids[i], float(scores[i])) for i in kept[:MAX_CODES_PER_TOPIC]]


def nearest_code(scores: np.ndarray, ids: Sequence[str]) -> tuple[str, float]:
    if not len(ids):
        return "", 0.0
    i = min(range(len(ids)), key=lambda j: (-scores[j], ids[j]))
    return ids[i], float(scores[i])


def split_sentences(text: str) -> list[str]:
    """Sentences of an abstract (a regex split: fast, and good enough to choose a quote)."""
    text = " ".join(text.split())
    if not text:
        return []
    parts = [p.strip() for p in _SENTENCE_RE.split(text) if p.strip()]
    long_enough = [p for p in parts if len(p) >= _MIN_SENTENCE_CHARS]
    return long_enough or parts


def best_sentences(sentence_lists: Sequence[Sequence[str]], targets: Vectors, space: Space) -> list[tuple[str, float]]:
    """For each study's sentences, the one closest to its target (a code or a topic), with the score.

    Sentences are ranked by the mean of semantic and lexical similarity, so a paraphrase can still win.
    """
    best = best_sentence_indices(sentence_lists, targets, space)
    return [(sentences[k] if k >= 0 else "", score) for sentences, (k, score) in zip(sentence_lists, best, strict=True)]


def best_sentence_indices(
    sentence_lists: Sequence[Sequence[str]],
    targets: Vectors,
    space: Space,
    target_rows: Sequence[int] | None = None,
) -> list[tuple[int, float]]:
    """best_sentences as (index of the sentence in its list, score); (-1, 0.0) for a study without sentences.

    With `target_rows`, list k is compared with row target_rows[k] of `targets` (else with row k). A list object
    given several times (one study, several targets) is embedded once, and the lexical similarities are one
    sparse product per target row, not one per list: each row's sum runs in the same order either way, so the
    scores are the same to the last bit.
    """
    rows = list(range(len(sentence_lists))) if target_rows is None else list(target_rows)
    starts: dict[int, int] = {}  # id of a sentence list -> the position of its first row in the embedded rows
    firsts: list[int] = []
    flat: list[str] = []
    for sentences in sentence_lists:
        if id(sentences) not in starts:
            starts[id(sentences)] = len(flat)
            flat.extend(sentences)
        firsts.append(starts[id(sentences)])
    if not flat:
        return [(-1, 0.0)] * len(sentence_lists)
    vecs = space.vectors(flat, cache=False)
    lexical = _lexical_similarities(vecs, targets, sentence_lists, firsts, rows)
    out: list[tuple[int, float]] = []
    for k, (sentences, start) in enumerate(zip(sentence_lists, firsts, strict=True)):
        if not sentences:
            out.append((-1, 0.0))
            continue
        sims = lexical[k]
        if vecs.semantic is not None and targets.semantic is not None:
            sims = (sims + vecs.semantic[start : start + len(sentences)] @ targets.semantic[rows[k]]) / 2
        sims = np.round(sims, 6)  # ties go to the earliest sentence on every platform
        best = int(np.argmax(sims))
        out.append((best, float(sims[best])))
    return out


def _lexical_similarities(
    vecs: Vectors,
    targets: Vectors,
    sentence_lists: Sequence[Sequence[str]],
    firsts: list[int],
    rows: list[int],
) -> list[np.ndarray]:
    """Per list, its sentences' lexical cosine with its target: one sparse product per distinct target row."""
    by_target: dict[int, list[int]] = {}
    for k, sentences in enumerate(sentence_lists):
        if sentences:
            by_target.setdefault(rows[k], []).append(k)
    out: list[np.ndarray] = [np.zeros(0)] * len(sentence_lists)
    for row, lists in by_target.items():
        index = np.concatenate([np.arange(firsts[k], firsts[k] + len(sentence_lists[k])) for k in lists])
        sims = _dense(vecs.lexical[index] @ targets.lexical[row].T).ravel()
        offset = 0
        for k in lists:
            out[k] = sims[offset : offset + len(sentence_lists[k])]
            offset += len(sentence_lists[k])
    return out


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def _unit_sparse(matrix: Any) -> Any:
    from scipy import sparse
    from sklearn.preprocessing import normalize

    return normalize(sparse.csr_matrix(matrix, dtype=np.float32))


def _dense(matrix: Any) -> np.ndarray:
    return np.asarray(matrix.toarray() if hasattr(matrix, "toarray") else matrix, dtype=np.float64)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)
