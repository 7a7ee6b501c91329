"""The saved topic model of a workspace: what an incremental run needs to assign new studies without refitting.

Two files in the folder the caller names (e.g. the workspace's `.review/topics/`):

    model.pkl    the FittedTopics (BERTopic with its UMAP + HDBSCAN or PCA + KMeans, the TF-IDF vocabulary of the
                 topic -> code mapping, code vectors, topic words, centroids, quotes, the fit sample's texts for
                 the figures), with a fingerprint of everything that shaped it; rewritten only when refitted.
    studies.npz  one row per study text the model has placed, keyed by its content (doc_key): topic, outlier
                 before reassignment, similarity to the centroid, placed at fit time or later, and the code
                 suggestions as (code, sentence index, evidence score); rewritten when studies were added.

Both carry the fit's id, so a studies file left from another fit is never read with the wrong model. Each file
is written to a temporary name and renamed; a run killed between the two leaves a model without its studies
file, which the next run treats as no saved model (it refits). A model saved by other library versions, or one
that cannot be read, is refitted too, with one log line saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from pipeline.codebook import Codebook
from pipeline.io import atomic_write
from pipeline.topics import mapping
from pipeline.topics.embeddings import Embedder, make_embedder
from pipeline.topics.model import FittedTopics, StudyAssignments, attach_embedder

log = logging.getLogger(__name__)

STATE_VERSION = 1  # bump when what is saved, or how a saved model is used, changes
MODEL_FILE = "model.pkl"
STUDIES_FILE = "studies.npz"
_LIBRARIES = ("bertopic", "umap-learn", "hdbscan", "scikit-learn", "numpy", "model2vec")


@dataclass
class SavedStudies:
    """studies.npz in memory: rows sorted by key; suggestions as CSR-like runs per row (indptr)."""

    fit_id: str
    keys: np.ndarray  # S16, sorted
    topics: np.ndarray  # int64
    initial_outlier: np.ndarray  # bool
    similarity: np.ndarray  # float64
    at_fit: np.ndarray  # bool: placed by the run that fitted the model
    indptr: np.ndarray  # int64, len(keys) + 1
    sug_code: np.ndarray  # int32: index into FittedTopics.codes.ids
    sug_sentence: np.ndarray  # int32: index into the study's sentences, -1 when it has none
    sug_score: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, keys: list[bytes]) -> np.ndarray:
        """Row of each key, -1 where it is not saved."""
        if not len(self.keys) or not keys:
            return np.full(len(keys), -1, dtype=np.int64)
        wanted = np.array(keys, dtype="S16")
        rows = np.searchsorted(self.keys, wanted)
        rows = np.minimum(rows, len(self.keys) - 1)
        return np.where(self.keys[rows] == wanted, rows, -1).astype(np.int64)


@dataclass
class TopicState:
    fingerprint: str
    fit_id: str
    fitted: FittedTopics
    studies: SavedStudies


def fingerprint(
    codebook: Codebook,
    *,
    embedder_tag: str,
    seed: int,
    min_topic_size: int,
    clustering: str,
    threshold: float,
    max_fit_studies: int,
) -> str:
    """A hash of everything that shapes a fit: a change to any of these refits the model."""
    parts = {
        "state_version": STATE_VERSION,
        "embedder": embedder_tag,
        "seed": seed,
        "min_topic_size": min_topic_size,
        "clustering": clustering,
        "map_threshold": threshold,
        "max_fit_studies": max_fit_studies,
        "codebook": codebook.fingerprint(),
        "libraries": {name: _version(name) for name in _LIBRARIES},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()


def embedder_tag(embedder: Embedder) -> str:
    """The backend and, for a neural one, the fingerprint of its weights."""
    return str(getattr(embedder, "tag", embedder.backend))


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ""


# ---------------------------------------------------------------- reading


def load_state(folder: Path, expected_fingerprint: str, cache_dir: Path | None, seed: int) -> TopicState | None:
    """The saved model, if there is one fitted with the same settings, codebook and libraries; else None."""
    model_path, studies_path = folder / MODEL_FILE, folder / STUDIES_FILE
    if not model_path.is_file():
        return None
    try:
        with model_path.open("rb") as handle:
            saved = pickle.load(handle)  # noqa: S301 - the workspace's own file, written by save_model
        if saved.get("fingerprint") != expected_fingerprint:
            log.info("topics: the saved model was fitted with other settings, codebook or libraries: refitting")
            return None
        studies = _read_studies(studies_path) if studies_path.is_file() else None
    except Exception as exc:  # noqa: BLE001 - an unreadable saved model is refitted, never fatal
        log.warning("topics: the saved model in %s cannot be read (%s): refitting", folder, exc)
        return None
    if studies is None or studies.fit_id != saved["fit_id"]:
        log.info("topics: the saved model has no matching studies file: refitting")
        return None
    fitted = _rebind(saved["fitted"], cache_dir, seed)
    return TopicState(saved["fingerprint"], saved["fit_id"], fitted, studies)


def _read_studies(path: Path) -> SavedStudies:
    with np.load(path, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    fit_id = bytes(arrays.pop("fit_id")).decode("ascii")
    return SavedStudies(fit_id=fit_id, **arrays)


def _rebind(fitted: FittedTopics, cache_dir: Path | None, seed: int) -> FittedTopics:
    """Neural embedders are saved without their network and cache: attach this run's."""
    if fitted.backend != "tfidf":
        embedder = make_embedder(fitted.backend, cache_dir, seed=seed)
        fitted = replace(fitted, embedder=embedder, space=mapping.Space(embedder, fitted.space.lexical))
    attach_embedder(fitted.model, fitted.embedder)
    return fitted


# ---------------------------------------------------------------- writing


def fit_id_for(fingerprint_: str, keys: list[bytes]) -> str:
    """Names a fit by its settings and its sample, so studies files of different fits never mix."""
    digest = hashlib.sha256(fingerprint_.encode("ascii"))
    for key in sorted(keys):
        digest.update(key)
    return digest.hexdigest()[:24]


def save_model(folder: Path, fingerprint_: str, fit_id: str, fitted: FittedTopics) -> None:
    """model.pkl, atomically; the BERTopic model's embedder and a neural network are left out."""
    model = fitted.model
    detached = model.embedding_model
    model.embedding_model = None
    try:
        payload = {"version": STATE_VERSION, "fingerprint": fingerprint_, "fit_id": fit_id, "fitted": fitted}
        with atomic_write(folder / MODEL_FILE, "wb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        model.embedding_model = detached


def save_studies(folder: Path, studies: SavedStudies) -> None:
    arrays = {name: getattr(studies, name) for name in SavedStudies.__dataclass_fields__ if name != "fit_id"}
    with atomic_write(folder / STUDIES_FILE, "wb") as handle:
        np.savez(handle, fit_id=np.frombuffer(studies.fit_id.encode("ascii"), dtype=np.uint8), **arrays)


def merge_studies(
    saved: SavedStudies | None,
    fit_id: str,
    placed: StudyAssignments,
    code_index: dict[str, int],
    *,
    at_fit: bool,
) -> SavedStudies:
    """The saved rows plus the studies placed in this run that they lack (first row per key wins)."""
    new = _rows_of(placed, code_index, at_fit=at_fit)
    if saved is not None and len(saved):
        new = _without(new, saved.lookup(list(new["keys"])) >= 0)
        new = _concat(_rows_of_saved(saved), new)
    order = np.argsort(new["keys"], kind="stable")
    keys = new["keys"][order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    order = order[first]
    counts = new["counts"][order]
    starts = new["starts"][order]
    picks = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts, strict=True)]) if len(order) else []
    picks = np.asarray(picks, dtype=np.int64)
    return SavedStudies(
        fit_id=fit_id,
        keys=new["keys"][order],
        topics=new["topics"][order],
        initial_outlier=new["initial_outlier"][order],
        similarity=new["similarity"][order],
        at_fit=new["at_fit"][order],
        indptr=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        sug_code=new["sug_code"][picks],
        sug_sentence=new["sug_sentence"][picks],
        sug_score=new["sug_score"][picks],
    )


def _rows_of(placed: StudyAssignments, code_index: dict[str, int], *, at_fit: bool) -> dict[str, np.ndarray]:
    n = len(placed)
    by_position: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]
    for position, code, sentence, _, score in placed.suggestions:
        by_position[position].append((code_index[code], sentence, score))
    counts = np.array([len(s) for s in by_position], dtype=np.int64)
    flat = [s for suggestions in by_position for s in suggestions]
    return {
        "keys": np.array(placed.keys, dtype="S16"),
        "topics": np.asarray(placed.topics, dtype=np.int64),
        "initial_outlier": np.asarray(placed.initial_outlier, dtype=bool),
        "similarity": np.asarray(placed.similarity, dtype=np.float64),
        "at_fit": np.full(n, at_fit, dtype=bool),
        "counts": counts,
        "starts": np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if n else counts,
        "sug_code": np.array([c for c, _, _ in flat], dtype=np.int32),
        "sug_sentence": np.array([k for _, k, _ in flat], dtype=np.int32),
        "sug_score": np.array([s for _, _, s in flat], dtype=np.float64),
    }


def _rows_of_saved(saved: SavedStudies) -> dict[str, np.ndarray]:
    counts = np.diff(saved.indptr)
    return {
        "keys": saved.keys,
        "topics": saved.topics,
        "initial_outlier": saved.initial_outlier,
        "similarity": saved.similarity,
        "at_fit": saved.at_fit,
        "counts": counts,
        "starts": saved.indptr[:-1],
        "sug_code": saved.sug_code,
        "sug_sentence": saved.sug_sentence,
        "sug_score": saved.sug_score,
    }


_ROW_FIELDS = ("keys", "topics", "initial_outlier", "similarity", "at_fit", "counts", "starts")
_SUGGESTION_FIELDS = ("sug_code", "sug_sentence", "sug_score")


def _without(rows: dict[str, np.ndarray], drop: np.ndarray) -> dict[str, np.ndarray]:
    """Rows minus the dropped ones (their suggestions stay in the flat arrays, unreferenced)."""
    keep = ~drop
    return {name: (rows[name][keep] if name in _ROW_FIELDS else rows[name]) for name in rows}


def _concat(first: dict[str, np.ndarray], second: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    offset = len(first["sug_code"])
    out = {name: np.concatenate([first[name], second[name]]) for name in _ROW_FIELDS + _SUGGESTION_FIELDS}
    out["starts"] = np.concatenate([first["starts"], second["starts"] + offset]).astype(np.int64)
    return out
