"""Studies -> topics with BERTopic, offline and reproducible, guided by the codebook and mapped to its codes.

The pipeline: embed title + abstract (cached per text), reduce with UMAP (fixed random_state) and cluster with
HDBSCAN; the codebook's seed words guide the clustering (BERTopic's guided topic modelling, seed_topic_list).
They are not boosted in the c-TF-IDF topic words: boosted codebook words entered unrelated topics (ecology
topics gained "policy; government") and faked a mapping. Outliers are then reassigned to their nearest topic
when they are at least as close to it as the least typical 5 % of clustered studies are to their own topic, so
studies that fit no topic stay out. Large corpora raise HDBSCAN's smallest topic to n/250 studies.
A corpus too small for UMAP + HDBSCAN, or where HDBSCAN finds fewer than two topics or puts most studies in one
(a homogeneous corpus can be one dense blob), falls back to PCA + KMeans, which is deterministic and has no
outliers; a corpus of fewer than MIN_STUDIES studies is skipped. The status says which, and why.

`fit_sample` fits on a set of studies (the whole corpus, or the capped sample pipeline/topics/corpus.py draws)
and yields the FittedTopics (everything that belongs to the model: topic words, centroids, representative
studies, quotes, the topic -> code mapping) plus the sample's per-study results; `assign_batch` gives studies
outside the sample their topic with the fitted model's transform, and the same outlier reassignment.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import ReviewError
from pipeline.topics import mapping
from pipeline.topics.embeddings import Embedder, check_backend, make_embedder

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "minilm"  # best topics on every real corpus measured; see benchmarks/topics_bench.py
CLUSTERINGS: tuple[str, ...] = ("hdbscan", "kmeans")
MIN_STUDIES = 4  # below this there is nothing to cluster
UMAP_MIN_STUDIES = 40  # below this UMAP's neighbourhood graph is too thin: PCA + KMeans instead
OUTLIER_QUANTILE = 0.05  # reassign an outlier only if it is as close to a topic as this quantile of members
N_WORDS = 10
N_REPRESENTATIVE = 3
MAX_KMEANS_TOPICS = 40
MAX_TOPIC_SHARE = 0.5  # HDBSCAN topics where one holds more than this share of studies: use KMeans instead
TOPICS_PER_CORPUS_SCALE = 250  # HDBSCAN's smallest topic is at least n / this
# Boilerplate and generic words of scholarly abstracts that would otherwise crowd topic words.
EXTRA_STOP_WORDS: tuple[str, ...] = (
    "paper", "study", "studies", "article", "research", "findings", "results", "result", "abstract", "aim", "aims",
    "purpose", "method", "methods", "approach", "based", "using", "use", "used", "elsevier", "ltd", "copyright",
    "rights", "reserved", "published", "publishing", "authors", "author", "springer", "taylor", "francis", "wiley",
    "licence", "license", "creative", "commons", "doi", "et", "al",
)  # fmt: skip

TOPIC_COLUMNS = [
    "topic", "label", "size", "words", "mapped_codes", "best_code", "best_score", "emergent", "method",
    "representative_quote", "representative_id",
]  # fmt: skip
STUDY_TOPIC_COLUMNS = ["id", "topic", "label", "similarity", "reassigned", "representative"]
SUGGESTION_COLUMNS = [
    "id", "code", "category", "direction", "evidence", "method", "confidence", "rule", "topic", "evidence_score",
]  # fmt: skip
EMERGENT_COLUMNS = [
    "topic", "label", "size", "words", "nearest_code", "nearest_score", "suggested_id",
    "quote_1", "quote_1_id", "quote_2", "quote_2_id", "quote_3", "quote_3_id",
]  # fmt: skip


@dataclass
class TopicResult:
    """What the topic stage found; `status` is 'ok', 'fallback: <why>' or 'skipped: <why>'.

    The tables cover every study; `model`, `documents` and `reduced_embeddings` cover the studies the model was
    fitted on (all of them up to topics.max_fit_studies), which is what the figures show. `fitted` and
    `assignments` are what `save_topic_state` keeps for the next run; `run` says how this run got its topics.
    """

    status: str
    topics: pd.DataFrame
    study_topics: pd.DataFrame
    suggestions: pd.DataFrame
    emergent: pd.DataFrame
    outlier_share_before: float
    outlier_share_after: float
    backend: str
    model: Any | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    documents: list[str] = field(default_factory=list, repr=False)  # the fitted texts, in fit order
    reduced_embeddings: np.ndarray | None = field(default=None, repr=False)  # 2-D, for the documents figure
    fitted: FittedTopics | None = field(default=None, repr=False)
    assignments: StudyAssignments | None = field(default=None, repr=False)
    run: dict[str, Any] = field(default_factory=dict)  # model fitted or reused, studies fitted / assigned / reused


@dataclass(frozen=True)
class _Plan:
    clustering: str  # 'hdbscan' (after UMAP) or 'kmeans' (after PCA)
    n_clusters: int = 0
    status: str = "ok"


@dataclass
class StudyTexts:
    """Studies with any text, in input order: ids, 'title. abstract' documents, cleaned titles and abstracts,
    content keys (doc_key), and their sentences on demand."""

    ids: list[str] = field(default_factory=list)
    docs: list[str] = field(default_factory=list)
    titles: list[str] = field(default_factory=list)
    abstracts: list[str] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    _sentences: dict[int, list[str]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def append(self, study_id: str, raw_title: str, raw_abstract: str, key: bytes) -> None:
        title, abstract = _squash(raw_title), _squash(raw_abstract)
        self.ids.append(study_id)
        self.docs.append(f"{title.rstrip('.')}. {abstract}" if title and abstract else title or abstract)
        self.titles.append(title)
        self.abstracts.append(abstract)
        self.keys.append(key)

    def sentences(self, i: int) -> list[str]:
        """Quote candidates of study i: its title and its abstract's sentences (one list object per study)."""
        if i not in self._sentences:
            title = self.titles[i]
            self._sentences[i] = ([title] if title else []) + mapping.split_sentences(self.abstracts[i])
        return self._sentences[i]

    def take(self, positions: Sequence[int]) -> StudyTexts:
        return StudyTexts(
            [self.ids[i] for i in positions],
            [self.docs[i] for i in positions],
            [self.titles[i] for i in positions],
            [self.abstracts[i] for i in positions],
            [self.keys[i] for i in positions],
        )

    @staticmethod
    def concat(parts: Sequence[StudyTexts]) -> StudyTexts:
        return StudyTexts(
            [i for p in parts for i in p.ids],
            [d for p in parts for d in p.docs],
            [t for p in parts for t in p.titles],
            [a for p in parts for a in p.abstracts],
            [k for p in parts for k in p.keys],
        )


def doc_key(raw_title: str, raw_abstract: str) -> bytes:
    """The content key of a study's text as given (raw_text of title and abstract): a saved model knows a study
    by it. Raw, so that a run need not clean studies whose placement it reuses; a change of whitespace alone
    makes a new key, which costs one placement and changes nothing else."""
    return hashlib.sha256(f"{raw_title}\x1f{raw_abstract}".encode()).digest()[:16]


@dataclass
class StudyAssignments:
    """Per-study results, in input order: topic (-1 = outlier), whether it was an outlier before reassignment,
    cosine similarity to the topic's centroid (rounded as written), and the topic's code suggestions as
    (position, code, index of the evidence sentence, evidence sentence, evidence score)."""

    ids: list[str]
    keys: list[bytes]
    topics: np.ndarray
    initial_outlier: np.ndarray
    similarity: np.ndarray
    suggestions: list[tuple[int, str, int, str, float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @staticmethod
    def concat(parts: Sequence[StudyAssignments]) -> StudyAssignments:
        offsets = np.cumsum([0] + [len(p) for p in parts])
        return StudyAssignments(
            ids=[i for p in parts for i in p.ids],
            keys=[k for p in parts for k in p.keys],
            topics=np.concatenate([p.topics for p in parts]) if parts else np.zeros(0, dtype=np.int64),
            initial_outlier=np.concatenate([p.initial_outlier for p in parts]) if parts else np.zeros(0, dtype=bool),
            similarity=np.concatenate([p.similarity for p in parts]) if parts else np.zeros(0),
            suggestions=[(pos + int(off), *rest) for p, off in zip(parts, offsets, strict=False)
                         for pos, *rest in p.suggestions],  # fmt: skip
        )


@dataclass
class FittedTopics:
    """The model as fitted on the sample, with everything needed to assign more studies and to write the tables.

    Topic words, centroids, representative studies, quotes and the topic -> code mapping are properties of the
    fit: studies assigned later count towards sizes and get suggestions, but change none of these.
    """

    status: str
    backend: str
    settings: dict[str, Any]
    model: Any  # BERTopic
    embedder: Embedder
    space: mapping.Space
    codes: mapping.CodeVectors
    topic_ids: list[int]
    labels: dict[int, str]
    centroids: dict[int, np.ndarray]
    mapped: dict[int, list[tuple[str, float]]]
    topic_rows: list[dict[str, Any]]  # TOPIC_COLUMNS without 'size'
    emergent_rows: list[dict[str, Any]]  # EMERGENT_COLUMNS without 'size'
    representatives: set[tuple[str, bytes]]  # (study id, doc key) of every topic's representative studies
    outlier_vectors: np.ndarray | None  # the topic vectors outliers were reassigned by, and the similarity floor
    outlier_floor: float
    documents: list[str] = field(repr=False)
    reduced_embeddings: np.ndarray | None = field(default=None, repr=False)

    def label(self, topic: int) -> str:
        return self.labels.get(topic, "outliers")


# ---------------------------------------------------------------- inputs


def check_settings(backend: str, clustering: str, min_topic_size: int) -> None:
    check_backend(backend)
    if clustering not in CLUSTERINGS:
        raise ReviewError(f"Unknown topic clustering {clustering!r}: use one of {', '.join(CLUSTERINGS)}.")
    if min_topic_size < 2:
        raise ReviewError(f"min_topic_size is {min_topic_size}: set topics.min_topic_size in review.yaml to 2 or more.")


def study_texts(studies: pd.DataFrame, seen: set[str] | None = None) -> StudyTexts:
    """The studies (columns id, title, abstract) with any text, in input order; `seen` carries ids across batches."""
    texts = StudyTexts()
    for study_id, raw_title, raw_abstract in study_rows(studies, seen):
        if has_text(raw_title, raw_abstract):
            texts.append(study_id, raw_title, raw_abstract, doc_key(raw_title, raw_abstract))
    return texts


def study_rows(studies: pd.DataFrame, seen: set[str] | None = None) -> Iterator[tuple[str, str, str]]:
    """(id, raw title, raw abstract) of every row; an id seen before (in `seen` too) is an error."""
    missing = [c for c in ("id", "abstract") if c not in studies.columns]
    if missing:
        names = " or ".join(repr(c) for c in missing)
        raise ReviewError(f"The studies table has no {names} column: give a table with columns id, title, abstract.")
    seen = set() if seen is None else seen
    titles = studies["title"].tolist() if "title" in studies.columns else [None] * len(studies)
    for study_id, title, abstract in zip(studies["id"].tolist(), titles, studies["abstract"].tolist(), strict=True):
        study_id = str(study_id)
        if study_id in seen:
            raise ReviewError(
                f"The studies table has the id {study_id!r} twice: give each study one row with a unique id."
            )
        seen.add(study_id)
        yield study_id, raw_text(title), raw_text(abstract)


def raw_text(value: Any) -> str:
    """A title or abstract cell as text ('' for a missing one), not yet cleaned."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def has_text(raw_title: str, raw_abstract: str) -> bool:
    """Whether the study has any text once whitespace is squashed (str.isspace and str.split agree on it)."""
    return _nonblank(raw_title) or _nonblank(raw_abstract)


def _nonblank(text: str) -> bool:
    return bool(text) and not text.isspace()


def _squash(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- fitting on the sample


def fit_sample(
    texts: StudyTexts,
    codebook: Codebook,
    *,
    backend: str,
    seed: int,
    min_topic_size: int,
    cache_dir: Path | None,
    clustering: str,
    threshold: float,
) -> tuple[FittedTopics, StudyAssignments] | None:
    """Fit the model on these studies (at least MIN_STUDIES) and map its topics to codes; None when too few."""
    ids, docs = texts.ids, texts.docs
    plan = _plan(len(ids), min_topic_size, clustering)
    if plan is None:
        return None
    embedder = make_embedder(backend, cache_dir, seed=seed).fit(docs, extra=mapping.codebook_texts(codebook))
    embeddings = embedder.embed(docs)
    model, initial, plan = _fit_with_fallback(
        docs, embeddings, embedder, codebook, plan, seed=seed, min_topic_size=min_topic_size
    )
    _ready_to_transform(model)
    floor = _member_similarity_floor(np.asarray(initial), embeddings)
    outlier_vectors = _outlier_vectors(model)
    topics = _reduce_outliers(model, docs, initial, embeddings, floor)
    before, after = _outlier_share(initial), _outlier_share(topics)
    log.info("topics: %s; outliers %.1f%% before reduction, %.1f%% after", plan.status, 100 * before, 100 * after)
    settings = {"backend": backend, "seed": seed, "min_topic_size": min_topic_size, "clustering": clustering,
                "map_threshold": threshold, "n_studies": len(ids), "clustering_used": plan.clustering,
                "n_clusters": plan.n_clusters, "min_cluster_size": min_cluster_size(len(ids), min_topic_size)}  # fmt: skip
    fitter = _Fitter(texts, np.asarray(topics), embeddings, model, embedder, codebook, threshold)
    fitted = fitter.fitted(plan.status, backend, settings, outlier_vectors, floor, _reduce_2d(embeddings, seed))
    initial_outlier = np.asarray(initial) == -1
    return fitted, fitter.assignments(fitted, initial_outlier)


def assign_batch(fitted: FittedTopics, texts: StudyTexts) -> StudyAssignments:
    """Assign studies the model was not fitted on: the fitted model's transform, then the same outlier
    reassignment as the fit, centroid similarity and the mapped topics' suggestions. Memory: this batch only.

    UMAP's transform depends a little on which studies are transformed together, so callers pass batches
    whose make-up follows from the input alone (corpus.ASSIGN_BATCH studies in input order).
    """
    if not len(texts):
        return _no_studies()
    embeddings = fitted.embedder.embed(texts.docs)
    _ready_to_transform(fitted.model)
    with _quiet_bertopic():
        initial = [int(t) for t in fitted.model.transform(texts.docs, embeddings=embeddings.copy())[0]]
    topics = _reassign_outliers(np.asarray(initial), embeddings, fitted.outlier_vectors, fitted.outlier_floor)
    similarity = _centroid_similarity(topics, embeddings, fitted.centroids)
    suggestions = _suggestions(fitted, texts, topics)
    return StudyAssignments(
        texts.ids, list(texts.keys), topics, np.asarray(initial) == -1, similarity, suggestions
    )


def _no_studies() -> StudyAssignments:
    return StudyAssignments([], [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), np.zeros(0))


def _reassign_outliers(
    labels: np.ndarray, embeddings: np.ndarray, vectors: np.ndarray | None, floor: float
) -> np.ndarray:
    """BERTopic's reduce_outliers(strategy='embeddings') with the fit's topic vectors and similarity floor."""
    labels = labels.astype(np.int64)
    outliers = np.flatnonzero(labels == -1)
    if not len(outliers) or vectors is None or not len(vectors):
        return labels
    from sklearn.metrics.pairwise import cosine_similarity

    similarity = cosine_similarity(embeddings[outliers], vectors)
    similarity[similarity < floor] = 0
    labels[outliers] = [int(np.argmax(sim)) if sum(sim) > 0 else -1 for sim in similarity]
    return labels


def _centroid_similarity(topics: np.ndarray, embeddings: np.ndarray, centroids: dict[int, np.ndarray]) -> np.ndarray:
    """Each study's cosine similarity to its topic's centroid, rounded as written (0.0 for outliers)."""
    return np.array(
        [
            round(float(mapping._unit(embeddings[i]) @ centroids[int(t)]), 4) if t != -1 else 0.0
            for i, t in enumerate(topics.tolist())
        ],
        dtype=np.float64,
    )


def _suggestions(
    fitted: FittedTopics, texts: StudyTexts, topics: np.ndarray
) -> list[tuple[int, str, int, str, float]]:
    """Every study in a mapped topic gets each of the topic's codes, with its best sentence for that code."""
    pairs = [(i, code, t) for t in fitted.topic_ids for code, _ in fitted.mapped[t]
             for i in np.flatnonzero(topics == t).tolist()]  # fmt: skip
    if not pairs:
        return []
    index = {code_id: k for k, code_id in enumerate(fitted.codes.ids)}
    sentence_lists = [texts.sentences(i) for i, _, _ in pairs]
    rows = [index[code] for _, code, _ in pairs]
    best = mapping.best_sentence_indices(sentence_lists, fitted.codes.vectors, fitted.space, rows)
    return [
        (i, code, k, sentences[k] if k >= 0 else "", round(sim, 4))
        for (i, code, _), sentences, (k, sim) in zip(pairs, sentence_lists, best, strict=True)
    ]


# ---------------------------------------------------------------- fitting


def _plan(n: int, min_topic_size: int, clustering: str) -> _Plan | None:
    if n < MIN_STUDIES:
        log.warning("topics skipped: %d studies with text (at least %d needed)", n, MIN_STUDIES)
        return None
    if clustering == "kmeans":
        return _Plan("kmeans", _kmeans_k(n, min_topic_size))
    if n < max(UMAP_MIN_STUDIES, 3 * min_topic_size):
        k = _kmeans_k(n, min_topic_size)
        status = f"fallback: {n} studies are too few for UMAP + HDBSCAN; PCA + KMeans with {k} topics"
        log.warning("topics %s", status)
        return _Plan("kmeans", k, status)
    return _Plan("hdbscan")


def _kmeans_k(n: int, min_topic_size: int) -> int:
    """About sqrt(n/2) topics, none smaller than min_topic_size on average, at least 2."""
    k = min(round((n / 2) ** 0.5), n // min_topic_size, MAX_KMEANS_TOPICS)
    return max(2, k)


def _fit_with_fallback(
    docs: list[str],
    embeddings: np.ndarray,
    embedder: Embedder,
    codebook: Codebook,
    plan: _Plan,
    *,
    seed: int,
    min_topic_size: int,
) -> tuple[Any, list[int], _Plan]:
    model = _build_model(plan, embedder, codebook, len(docs), seed=seed, min_topic_size=min_topic_size)
    # BERTopic's guided modelling edits the embeddings it is given: pass a copy, keep ours for the mapping
    topics = list(model.fit_transform(docs, embeddings=embeddings.copy())[0])
    problem = _hdbscan_problem(topics) if plan.clustering == "hdbscan" else ""
    if problem:
        k = _kmeans_k(len(docs), min_topic_size)
        plan = _Plan("kmeans", k, f"fallback: {problem}; PCA + KMeans with {k} topics")
        log.warning("topics %s", plan.status)
        model = _build_model(plan, embedder, codebook, len(docs), seed=seed, min_topic_size=min_topic_size)
        topics = list(model.fit_transform(docs, embeddings=embeddings.copy())[0])
    return model, [int(t) for t in topics], plan


def _hdbscan_problem(topics: list[int]) -> str:
    """Why HDBSCAN's topics are no use ('' when they are): too few, or one topic holding most studies."""
    labels = np.asarray(topics)
    clustered = labels[labels != -1]
    if len(set(clustered.tolist())) < 2:
        return "HDBSCAN found fewer than 2 topics"
    largest = np.bincount(clustered).max() / len(labels)
    if largest > MAX_TOPIC_SHARE:
        return f"HDBSCAN put {largest:.0%} of the studies in one topic"
    return ""


def _build_model(plan: _Plan, embedder: Embedder, codebook: Codebook, n: int, *, seed: int, min_topic_size: int) -> Any:
    from bertopic import BERTopic
    from bertopic.vectorizers import ClassTfidfTransformer

    seed_topics = [list(code.seed_words) for code in codebook.codes if code.seed_words]
    reducer, clusterer = _reducer_and_clusterer(plan, n, seed=seed, min_topic_size=min_topic_size)
    return BERTopic(
        embedding_model=_bertopic_embedder(embedder),
        umap_model=reducer,
        hdbscan_model=clusterer,
        vectorizer_model=_vectorizer(),
        # no c-TF-IDF seed_words: boosted codebook words would enter unrelated topics and fake a mapping
        ctfidf_model=ClassTfidfTransformer(reduce_frequent_words=True),
        seed_topic_list=seed_topics or None,
        top_n_words=N_WORDS,
        min_topic_size=min_topic_size,
        calculate_probabilities=False,
        verbose=False,
    )


def _reducer_and_clusterer(plan: _Plan, n: int, *, seed: int, min_topic_size: int) -> tuple[Any, Any]:
    if plan.clustering == "kmeans":
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        return PCA(n_components=min(5, n - 1), random_state=seed), KMeans(
            n_clusters=plan.n_clusters, n_init=10, random_state=seed
        )
    from hdbscan import HDBSCAN
    from umap import UMAP

    reducer = UMAP(
        n_neighbors=min(15, n - 1),
        n_components=5,
        min_dist=0.0,
        metric="cosine",
        random_state=seed,
        n_jobs=1,
        low_memory=True,
    )
    size = min_cluster_size(n, min_topic_size)
    # one process: the default (4 loky workers, ~200 MB each, alive after the fit) only costs memory on 2 cores
    return reducer, HDBSCAN(
        min_cluster_size=size, metric="euclidean", cluster_selection_method="eom", core_dist_n_jobs=1
    )


def min_cluster_size(n: int, min_topic_size: int) -> int:
    """min_topic_size, raised to n/250 for large corpora: 10,000 studies give tens of topics, not hundreds."""
    return max(min_topic_size, round(n / TOPICS_PER_CORPUS_SCALE))


def _vectorizer() -> Any:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    # min_df stays 1: BERTopic fits this on one joined document per topic, so df counts topics, not studies
    return CountVectorizer(
        stop_words=sorted(ENGLISH_STOP_WORDS | set(EXTRA_STOP_WORDS)),
        ngram_range=(1, 2),
        token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]+\b",
    )


def _bertopic_embedder(embedder: Embedder) -> Any:
    from pipeline.topics.adapter import EmbedderAdapter

    return EmbedderAdapter(embedder)


def attach_embedder(model: Any, embedder: Embedder) -> None:
    """Give a BERTopic model loaded from a saved state its embedder back (it is not pickled)."""
    model.embedding_model = _bertopic_embedder(embedder)


def _outlier_share(topics: list[int] | np.ndarray) -> float:
    topics = np.asarray(topics)
    return float((topics == -1).mean()) if len(topics) else 0.0


def _reduce_outliers(
    model: Any, docs: list[str], topics: list[int], embeddings: np.ndarray, floor: float
) -> list[int]:
    """Reassign outliers that are as close to a topic as typical members are; refresh the topic words after."""
    labels = np.asarray(topics)
    if not (labels == -1).any() or (labels != -1).sum() == 0:
        return topics
    new = model.reduce_outliers(docs, topics, strategy="embeddings", embeddings=embeddings, threshold=floor)
    new = [int(t) for t in new]
    if new != topics:
        with _quiet_bertopic():  # it warns that custom topics break later topic reduction; none follows here
            model.update_topics(docs, topics=new, vectorizer_model=_vectorizer(), ctfidf_model=model.ctfidf_model)
    return new


def _ready_to_transform(model: Any) -> None:
    """HDBSCAN places new points only with its prediction data, which it keeps only when asked (after the fit,
    so the fit itself is unchanged)."""
    clusterer = model.hdbscan_model
    if hasattr(clusterer, "generate_prediction_data") and getattr(clusterer, "_prediction_data", None) is None:
        clusterer.generate_prediction_data()


def _outlier_vectors(model: Any) -> np.ndarray | None:
    """The topic vectors reduce_outliers compares outliers with, as they are before update_topics changes them."""
    vectors = getattr(model, "topic_embeddings_", None)
    if vectors is None:
        return None
    return np.array(vectors[model._outliers :])


@contextlib.contextmanager
def _quiet_bertopic() -> Iterator[None]:
    bertopic_log = logging.getLogger("BERTopic")
    level = bertopic_log.level
    bertopic_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # UMAP's transform warns about its seed and threads
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        bertopic_log.setLevel(level)


def _member_similarity_floor(labels: np.ndarray, embeddings: np.ndarray) -> float:
    """The OUTLIER_QUANTILE of clustered studies' cosine similarity to their own topic's centroid."""
    sims = []
    for topic in sorted(set(labels.tolist()) - {-1}):
        members = mapping._unit_rows(embeddings[labels == topic])
        sims.append(members @ mapping._unit(members.mean(axis=0)))
    if not sims:
        return 1.0
    return round(float(np.quantile(np.concatenate(sims), OUTLIER_QUANTILE)), 4)


def _reduce_2d(embeddings: np.ndarray, seed: int) -> np.ndarray | None:
    """2-D coordinates for the documents figure (PCA: deterministic and fast at any size)."""
    if len(embeddings) < 3:
        return None
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(embeddings)


# ---------------------------------------------------------------- what the fit yields


class _Fitter:
    """From one fitted model and its sample: topic words, centroids, representatives, quotes, the mapping to codes
    (the FittedTopics) and the sample's own per-study results. Everything is sorted and rounded for stable bytes."""

    def __init__(
        self,
        texts: StudyTexts,
        labels: np.ndarray,
        embeddings: np.ndarray,
        model: Any,
        embedder: Embedder,
        codebook: Codebook,
        threshold: float,
    ) -> None:
        self.texts, self.labels, self.embeddings, self.model = texts, labels, embeddings, model
        self.embedder, self.codebook, self.threshold = embedder, codebook, threshold
        self.topic_ids = sorted(int(t) for t in set(labels.tolist()) if t != -1)
        self.words = {t: self._words(t) for t in self.topic_ids}
        self.centroids = {
            t: mapping._unit(mapping._unit_rows(embeddings[labels == t]).mean(axis=0)) for t in self.topic_ids
        }
        self.representatives = {t: self._representatives(t) for t in self.topic_ids}
        self.space = mapping.make_space(embedder, texts.docs, codebook)
        self.codes = mapping.code_vectors(codebook, self.space)
        pairs = [(self.words[t], [texts.docs[i] for i in self.representatives[t]]) for t in self.topic_ids]
        self.topic_vectors = mapping.topic_vectors(pairs, self.space)
        self.scores = mapping.score_matrix(self.topic_vectors, self.codes, self.space)
        self.mapped = {
            t: mapping.mapped_codes(self.scores[i], self.codes.ids, threshold) for i, t in enumerate(self.topic_ids)
        }
        self.quotes = self._quotes()

    def _words(self, topic: int) -> list[str]:
        pairs = self.model.get_topic(topic) or []
        return [w for w, score in pairs if w and score > 0][:N_WORDS]

    def _representatives(self, topic: int) -> list[int]:
        """Indices of the members closest to the topic centroid (ties: input order)."""
        members = np.flatnonzero(self.labels == topic)
        sims = np.round(mapping._unit_rows(self.embeddings[members]) @ self.centroids[topic], 6)
        order = sorted(range(len(members)), key=lambda i: (-sims[i], members[i]))
        return [int(members[i]) for i in order[:N_REPRESENTATIVE]]

    def _quotes(self) -> dict[int, list[tuple[str, str]]]:
        """Per topic: (study id, the sentence of a representative study closest to the topic)."""
        pairs = [(t, i) for t in self.topic_ids for i in self.representatives[t]]
        targets = mapping.take(self.topic_vectors, [self.topic_ids.index(t) for t, _ in pairs])
        best = mapping.best_sentences([self.texts.sentences(i) for _, i in pairs], targets, self.space)
        quotes: dict[int, list[tuple[str, str]]] = {t: [] for t in self.topic_ids}
        for (t, i), (sentence, _) in zip(pairs, best, strict=True):
            quotes[t].append((self.texts.ids[i], sentence))
        return quotes

    def label(self, topic: int) -> str:
        if topic == -1:
            return "outliers"
        return "_".join([str(topic)] + [w.replace(" ", "-") for w in self.words[topic][:3]])

    def fitted(
        self,
        status: str,
        backend: str,
        settings: dict[str, Any],
        outlier_vectors: np.ndarray | None,
        outlier_floor: float,
        reduced: np.ndarray | None,
    ) -> FittedTopics:
        keys = self.texts.keys
        return FittedTopics(
            status=status,
            backend=backend,
            settings=settings,
            model=self.model,
            embedder=self.embedder,
            space=self.space,
            codes=self.codes,
            topic_ids=self.topic_ids,
            labels={t: self.label(t) for t in self.topic_ids},
            centroids=self.centroids,
            mapped=self.mapped,
            topic_rows=[self._topic_row(t, i) for i, t in enumerate(self.topic_ids)],
            emergent_rows=[self._emergent_row(t, i) for i, t in enumerate(self.topic_ids) if not self.mapped[t]],
            representatives={(self.texts.ids[i], keys[i]) for t in self.topic_ids for i in self.representatives[t]},
            outlier_vectors=outlier_vectors,
            outlier_floor=outlier_floor,
            documents=self.texts.docs,
            reduced_embeddings=reduced,
        )

    def _topic_row(self, topic: int, index: int) -> dict[str, Any]:
        code, score = mapping.nearest_code(self.scores[index], self.codes.ids)
        quote_id, quote = self.quotes[topic][0] if self.quotes[topic] else ("", "")
        return {
            "topic": topic,
            "label": self.label(topic),
            "words": "; ".join(self.words[topic]),
            "mapped_codes": "; ".join(f"{c} ({s:.4f})" for c, s in self.mapped[topic]),
            "best_code": code,
            "best_score": round(score, 4),
            "emergent": not self.mapped[topic],
            "method": "topic",
            "representative_quote": quote,
            "representative_id": quote_id,
        }

    def _emergent_row(self, topic: int, index: int) -> dict[str, Any]:
        code, score = mapping.nearest_code(self.scores[index], self.codes.ids)
        row: dict[str, Any] = {
            "topic": topic,
            "label": self.label(topic),
            "words": "; ".join(self.words[topic]),
            "nearest_code": code,
            "nearest_score": round(score, 4),
            "suggested_id": suggested_code_id(topic, code, self.words[topic]),
        }
        for k in range(N_REPRESENTATIVE):
            quote_id, quote = self.quotes[topic][k] if k < len(self.quotes[topic]) else ("", "")
            row[f"quote_{k + 1}"], row[f"quote_{k + 1}_id"] = quote, quote_id
        return row

    def assignments(self, fitted: FittedTopics, initial_outlier: np.ndarray) -> StudyAssignments:
        return StudyAssignments(
            ids=list(self.texts.ids),
            keys=list(self.texts.keys),
            topics=self.labels.astype(np.int64),
            initial_outlier=initial_outlier,
            similarity=_centroid_similarity(self.labels, self.embeddings, self.centroids),
            suggestions=_suggestions(fitted, self.texts, self.labels),
        )


def suggested_code_id(topic: int, nearest: str, words: list[str]) -> str:
    """A valid codebook id for an emergent theme: the nearest code's category, 'emergent_<topic>_<top words>'."""
    category = nearest.split(".", 1)[0] if "." in nearest else "facilitators"
    slug = "_".join(re.sub(r"[^a-z0-9]+", "_", w.lower()).strip("_") for w in words[:2]).strip("_")
    return f"{category}.emergent_{topic}" + (f"_{slug}" if slug else "")
