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
"""

from __future__ import annotations

import logging
import re
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
    """What fit_topics found; `status` is 'ok', 'fallback: <why>' or 'skipped: <why>'."""

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
    documents: list[str] = field(default_factory=list, repr=False)  # the modelled texts, in study_topics order
    reduced_embeddings: np.ndarray | None = field(default=None, repr=False)  # 2-D, for the documents figure


@dataclass(frozen=True)
class _Plan:
    clustering: str  # 'hdbscan' (after UMAP) or 'kmeans' (after PCA)
    n_clusters: int = 0
    status: str = "ok"


# ---------------------------------------------------------------- public API


def fit_topics(
    studies: pd.DataFrame,
    codebook: Codebook,
    *,
    backend: str = DEFAULT_BACKEND,
    seed: int = 42,
    min_topic_size: int = 5,
    cache_dir: Path | None = None,
    clustering: str = "hdbscan",
    map_threshold: float | None = None,
) -> TopicResult:
    """Fit topics over the studies (columns id, title, abstract), map them to codes, suggest codes (method 'topic').

    The same studies, codebook and settings give the same tables, byte for byte, on the same platform.
    """
    check_backend(backend)
    _check_settings(clustering, min_topic_size)
    ids, docs, sentences = _study_texts(studies)
    threshold = mapping.MAP_THRESHOLDS[backend] if map_threshold is None else float(map_threshold)
    settings = {"backend": backend, "seed": seed, "min_topic_size": min_topic_size, "clustering": clustering,
                "map_threshold": threshold, "n_studies": len(ids)}  # fmt: skip
    plan = _plan(len(ids), min_topic_size, clustering)
    if plan is None:
        return _skipped(
            f"skipped: {len(ids)} studies with text, topic modelling needs at least {MIN_STUDIES}", backend, settings
        )
    embedder = make_embedder(backend, cache_dir, seed=seed).fit(docs, extra=mapping.codebook_texts(codebook))
    embeddings = embedder.embed(docs)
    model, initial, plan = _fit_with_fallback(
        docs, embeddings, embedder, codebook, plan, seed=seed, min_topic_size=min_topic_size
    )
    topics = _reduce_outliers(model, docs, initial, embeddings)
    before, after = _outlier_share(initial), _outlier_share(topics)
    reassigned = (np.asarray(initial) == -1) & (np.asarray(topics) != -1)
    log.info("topics: %s; outliers %.1f%% before reduction, %.1f%% after", plan.status, 100 * before, 100 * after)
    settings.update(
        clustering_used=plan.clustering,
        n_clusters=plan.n_clusters,
        min_cluster_size=min_cluster_size(len(ids), min_topic_size),
    )
    tables = _Tables(
        ids, docs, sentences, np.asarray(topics), reassigned, embeddings, model, embedder, codebook, threshold
    )
    return TopicResult(
        status=plan.status,
        topics=tables.topics(),
        study_topics=tables.study_topics(),
        suggestions=tables.suggestions(),
        emergent=tables.emergent(),
        outlier_share_before=round(before, 4),
        outlier_share_after=round(after, 4),
        backend=backend,
        model=model,
        settings=settings,
        documents=docs,
        reduced_embeddings=_reduce_2d(embeddings, seed),
    )


# ---------------------------------------------------------------- inputs


def _check_settings(clustering: str, min_topic_size: int) -> None:
    if clustering not in CLUSTERINGS:
        raise ReviewError(f"Unknown topic clustering {clustering!r}: use one of {', '.join(CLUSTERINGS)}.")
    if min_topic_size < 2:
        raise ReviewError(f"min_topic_size is {min_topic_size}: set topics.min_topic_size in review.yaml to 2 or more.")


def _study_texts(studies: pd.DataFrame) -> tuple[list[str], list[str], list[list[str]]]:
    """(ids, 'title. abstract' texts, candidate quote sentences) of studies with any text, in input order."""
    missing = [c for c in ("id", "abstract") if c not in studies.columns]
    if missing:
        names = " or ".join(repr(c) for c in missing)
        raise ReviewError(f"The studies table has no {names} column: give a table with columns id, title, abstract.")
    ids: list[str] = []
    docs: list[str] = []
    sentences: list[list[str]] = []
    seen: set[str] = set()
    for row in studies.to_dict("records"):
        study_id = str(row["id"])
        if study_id in seen:
            raise ReviewError(
                f"The studies table has the id {study_id!r} twice: give each study one row with a unique id."
            )
        seen.add(study_id)
        title, abstract = _clean(row.get("title")), _clean(row.get("abstract"))
        if not (title or abstract):
            continue
        ids.append(study_id)
        docs.append(f"{title.rstrip('.')}. {abstract}" if title and abstract else title or abstract)
        sentences.append(([title] if title else []) + mapping.split_sentences(abstract))
    skipped = len(studies) - len(ids)
    if skipped:
        log.info("topics: %d of %d studies have neither title nor abstract and are left out", skipped, len(studies))
    return ids, docs, sentences


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return " ".join(str(value).split())


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
    return reducer, HDBSCAN(min_cluster_size=size, metric="euclidean", cluster_selection_method="eom")


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
    """BERTopic embeds the seed topics (and anything else it needs) with the same backend as the studies."""
    from bertopic.backend import BaseEmbedder

    class _Adapter(BaseEmbedder):  # type: ignore[misc]
        def embed(self, documents: list[str], verbose: bool = False) -> np.ndarray:
            return embedder.embed(list(documents))

    return _Adapter()


def _outlier_share(topics: list[int] | np.ndarray) -> float:
    topics = np.asarray(topics)
    return float((topics == -1).mean()) if len(topics) else 0.0


def _reduce_outliers(model: Any, docs: list[str], topics: list[int], embeddings: np.ndarray) -> list[int]:
    """Reassign outliers that are as close to a topic as typical members are; refresh the topic words after."""
    labels = np.asarray(topics)
    if not (labels == -1).any() or (labels != -1).sum() == 0:
        return topics
    threshold = _member_similarity_floor(labels, embeddings)
    new = model.reduce_outliers(docs, topics, strategy="embeddings", embeddings=embeddings, threshold=threshold)
    new = [int(t) for t in new]
    if new != topics:
        # BERTopic warns that custom topics break later topic reduction; no reduction follows here
        bertopic_log = logging.getLogger("BERTopic")
        level = bertopic_log.level
        bertopic_log.setLevel(logging.ERROR)
        try:
            model.update_topics(docs, topics=new, vectorizer_model=_vectorizer(), ctfidf_model=model.ctfidf_model)
        finally:
            bertopic_log.setLevel(level)
    return new


def _member_similarity_floor(labels: np.ndarray, embeddings: np.ndarray) -> float:
    """The OUTLIER_QUANTILE of clustered studies' cosine similarity to their own topic's centroid."""
    sims = []
    for topic in sorted(set(labels) - {-1}):
        members = mapping._unit_rows(embeddings[labels == topic])
        sims.append(members @ mapping._unit(members.mean(axis=0)))
    return round(float(np.quantile(np.concatenate(sims), OUTLIER_QUANTILE)), 4)


def _reduce_2d(embeddings: np.ndarray, seed: int) -> np.ndarray | None:
    """2-D coordinates for the documents figure (PCA: deterministic and fast at any size)."""
    if len(embeddings) < 3:
        return None
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(embeddings)


# ---------------------------------------------------------------- result tables


class _Tables:
    """Builds the result tables from one fitted model; every table is sorted and rounded for stable bytes."""

    def __init__(
        self,
        ids: list[str],
        docs: list[str],
        sentences: list[list[str]],
        labels: np.ndarray,
        reassigned: np.ndarray,
        embeddings: np.ndarray,
        model: Any,
        embedder: Embedder,
        codebook: Codebook,
        threshold: float,
    ) -> None:
        self.ids, self.docs, self.sentences, self.labels, self.reassigned = ids, docs, sentences, labels, reassigned
        self.embeddings, self.model, self.embedder, self.codebook = embeddings, model, embedder, codebook
        self.threshold = threshold
        self.topic_ids = sorted(int(t) for t in set(labels.tolist()) if t != -1)
        self.words = {t: self._words(t) for t in self.topic_ids}
        self.centroids = {
            t: mapping._unit(mapping._unit_rows(embeddings[labels == t]).mean(axis=0)) for t in self.topic_ids
        }
        self.representatives = {t: self._representatives(t) for t in self.topic_ids}
        self.space = mapping.make_space(embedder, docs, codebook)
        self.codes = mapping.code_vectors(codebook, self.space)
        pairs = [(self.words[t], [docs[i] for i in self.representatives[t]]) for t in self.topic_ids]
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
        best = mapping.best_sentences([self.sentences[i] for _, i in pairs], targets, self.space)
        quotes: dict[int, list[tuple[str, str]]] = {t: [] for t in self.topic_ids}
        for (t, i), (sentence, _) in zip(pairs, best, strict=True):
            quotes[t].append((self.ids[i], sentence))
        return quotes

    def label(self, topic: int) -> str:
        if topic == -1:
            return "outliers"
        return "_".join([str(topic)] + [w.replace(" ", "-") for w in self.words[topic][:3]])

    def topics(self) -> pd.DataFrame:
        rows = [self._topic_row(t, i) for i, t in enumerate(self.topic_ids)]
        n_out = int((self.labels == -1).sum())
        if n_out:
            rows.append(
                {
                    "topic": -1,
                    "label": "outliers",
                    "size": n_out,
                    "words": "",
                    "mapped_codes": "",
                    "best_code": "",
                    "best_score": 0.0,
                    "emergent": False,
                    "method": "topic",
                    "representative_quote": "",
                    "representative_id": "",
                }
            )
        frame = pd.DataFrame(rows, columns=TOPIC_COLUMNS)
        return frame.astype({"topic": "int64", "size": "int64", "best_score": "float64", "emergent": "bool"})

    def _topic_row(self, topic: int, index: int) -> dict[str, Any]:
        code, score = mapping.nearest_code(self.scores[index], self.codes.ids)
        quote_id, quote = self.quotes[topic][0] if self.quotes[topic] else ("", "")
        return {
            "topic": topic,
            "label": self.label(topic),
            "size": int((self.labels == topic).sum()),
            "words": "; ".join(self.words[topic]),
            "mapped_codes": "; ".join(f"{c} ({s:.4f})" for c, s in self.mapped[topic]),
            "best_code": code,
            "best_score": round(score, 4),
            "emergent": not self.mapped[topic],
            "method": "topic",
            "representative_quote": quote,
            "representative_id": quote_id,
        }

    def study_topics(self) -> pd.DataFrame:
        reps = {i for t in self.topic_ids for i in self.representatives[t]}
        rows = []
        for i, (study_id, topic) in enumerate(zip(self.ids, self.labels.tolist(), strict=True)):
            sim = float(mapping._unit(self.embeddings[i]) @ self.centroids[topic]) if topic != -1 else 0.0
            row = {"id": study_id, "topic": int(topic), "label": self.label(int(topic)), "similarity": round(sim, 4)}
            rows.append(row | {"reassigned": bool(self.reassigned[i]), "representative": i in reps})
        frame = pd.DataFrame(rows, columns=STUDY_TOPIC_COLUMNS)
        return frame.astype({"topic": "int64", "similarity": "float64", "reassigned": "bool", "representative": "bool"})

    def suggestions(self) -> pd.DataFrame:
        """Every study in a mapped topic gets each of the topic's codes, with its best sentence for that code."""
        pairs = [(i, code, score, t) for t in self.topic_ids for code, score in self.mapped[t]
                 for i in np.flatnonzero(self.labels == t).tolist()]  # fmt: skip
        if not pairs:
            return _empty(SUGGESTION_COLUMNS, {"confidence": "float64", "topic": "int64", "evidence_score": "float64"})
        index = {code_id: k for k, code_id in enumerate(self.codes.ids)}
        targets = mapping.take(self.codes.vectors, [index[code] for _, code, _, _ in pairs])
        evidence = mapping.best_sentences([self.sentences[i] for i, _, _, _ in pairs], targets, self.space)
        category = dict(zip(self.codes.ids, self.codes.categories, strict=True))
        rows = [
            {"id": self.ids[i], "code": code, "category": category[code], "direction": "", "evidence": sentence,
             "method": "topic", "confidence": round(score, 4), "rule": f"topic {t}: {self.label(t)}", "topic": t,
             "evidence_score": round(sim, 4)}
            for (i, code, score, t), (sentence, sim) in zip(pairs, evidence, strict=True)
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=SUGGESTION_COLUMNS).sort_values(
            ["id", "code"], kind="stable", ignore_index=True
        )
        return frame.astype({"confidence": "float64", "topic": "int64", "evidence_score": "float64"})

    def emergent(self) -> pd.DataFrame:
        rows = []
        for index, topic in enumerate(self.topic_ids):
            if self.mapped[topic]:
                continue
            code, score = mapping.nearest_code(self.scores[index], self.codes.ids)
            row: dict[str, Any] = {
                "topic": topic,
                "label": self.label(topic),
                "size": int((self.labels == topic).sum()),
                "words": "; ".join(self.words[topic]),
                "nearest_code": code,
                "nearest_score": round(score, 4),
                "suggested_id": suggested_code_id(topic, code, self.words[topic]),
            }
            for k in range(N_REPRESENTATIVE):
                quote_id, quote = self.quotes[topic][k] if k < len(self.quotes[topic]) else ("", "")
                row[f"quote_{k + 1}"], row[f"quote_{k + 1}_id"] = quote, quote_id
            rows.append(row)
        frame = pd.DataFrame(rows, columns=EMERGENT_COLUMNS)
        return frame.astype({"topic": "int64", "size": "int64", "nearest_score": "float64"})


def suggested_code_id(topic: int, nearest: str, words: list[str]) -> str:
    """A valid codebook id for an emergent theme: the nearest code's category, 'emergent_<topic>_<top words>'."""
    category = nearest.split(".", 1)[0] if "." in nearest else "facilitators"
    slug = "_".join(re.sub(r"[^a-z0-9]+", "_", w.lower()).strip("_") for w in words[:2]).strip("_")
    return f"{category}.emergent_{topic}" + (f"_{slug}" if slug else "")


def _empty(columns: list[str], dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "object")) for c in columns})


def _skipped(status: str, backend: str, settings: dict[str, Any]) -> TopicResult:
    return TopicResult(
        status=status,
        topics=_empty(TOPIC_COLUMNS, {"topic": "int64", "size": "int64", "best_score": "float64", "emergent": "bool"}),
        study_topics=_empty(
            STUDY_TOPIC_COLUMNS,
            {"topic": "int64", "similarity": "float64", "reassigned": "bool", "representative": "bool"},
        ),
        suggestions=_empty(
            SUGGESTION_COLUMNS, {"confidence": "float64", "topic": "int64", "evidence_score": "float64"}
        ),
        emergent=_empty(EMERGENT_COLUMNS, {"topic": "int64", "size": "int64", "nearest_score": "float64"}),
        outlier_share_before=0.0,
        outlier_share_after=0.0,
        backend=backend,
        model=None,
        settings=settings,
    )
