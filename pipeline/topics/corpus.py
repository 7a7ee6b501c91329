"""Topics for a whole corpus, in bounded memory, and cheaply again when a few studies are new.

1. Cap. The model is fitted on at most `max_fit_studies` studies: all of them when the corpus is that small
   (then everything is exactly as a fit on the whole corpus), else a deterministic sample: the studies whose
   sha256(seed, content key) is smallest. The same seed and texts give the same sample whatever the input
   order, and a study added later enters the sample only if its hash beats the current ones, so samples of a
   growing corpus overlap as much as they can. Every other study gets its topic from the fitted model
   (BERTopic's transform: UMAP's, then HDBSCAN's approximate_predict, or PCA + KMeans), then the same outlier
   reassignment as the fit, in batches of ASSIGN_BATCH studies. Memory: the sample, one batch, and a few
   numbers per study (plus the result tables, which list every study); never all texts or embeddings.
2. Incremental. With a `state_dir` the fitted model and every study's placement are saved (pipeline/topics/
   state.py). A later run embeds and places only the studies whose text the saved model has not seen, and
   refits when the share of studies not in the corpus when the model was fitted exceeds `refit_share`, when
   the codebook, backend, its weights, seed, settings or libraries changed, or when asked (`refit=True`).
   Topic words, quotes and the topic -> code mapping are the fit's until the next refit: a weekly update
   adds studies to known topics instead of renumbering them.

Either way the tables cover every study, and the same inputs and saved state give the same bytes.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook
from pipeline.errors import ReviewError
from pipeline.topics import mapping, state
from pipeline.topics.embeddings import TORCH_BACKENDS, make_embedder
from pipeline.topics.model import (
    DEFAULT_BACKEND,
    MIN_STUDIES,
    FittedTopics,
    StudyAssignments,
    StudyTexts,
    TopicResult,
    assign_batch,
    check_settings,
    doc_key,
    fit_sample,
    has_text,
    raw_text,
    study_rows,
)
from pipeline.topics.tables import compose_result, skipped_result

log = logging.getLogger(__name__)

DEFAULT_MAX_FIT_STUDIES = 20_000  # UMAP + HDBSCAN on 20k abstracts: ~1-2 min and ~1.5 GB here; topics are stable
DEFAULT_REFIT_SHARE = 0.2
ASSIGN_BATCH = 5_000  # studies placed per transform; at most 10,000 (UMAP's transform changes its epochs above)

Batches = Callable[[], Iterable[pd.DataFrame]]  # called once per pass; each call yields the same studies again
Advance = Callable[[int], None]


@dataclass(frozen=True)
class TopicSettings:
    """How topics are modelled (review.yaml `topics:` plus what tests and benchmarks vary)."""

    backend: str = DEFAULT_BACKEND
    seed: int = 42
    min_topic_size: int = 5
    clustering: str = "hdbscan"
    map_threshold: float | None = None  # None: the backend's calibrated threshold (mapping.MAP_THRESHOLDS)
    max_fit_studies: int = DEFAULT_MAX_FIT_STUDIES
    refit_share: float = DEFAULT_REFIT_SHARE

    @property
    def threshold(self) -> float:
        return mapping.MAP_THRESHOLDS[self.backend] if self.map_threshold is None else float(self.map_threshold)

    def check(self) -> None:
        check_settings(self.backend, self.clustering, self.min_topic_size)
        if self.max_fit_studies < MIN_STUDIES:
            raise ReviewError(
                f"topics.max_fit_studies is {self.max_fit_studies}: set it in review.yaml to {MIN_STUDIES} or more."
            )
        if not 0.0 <= self.refit_share <= 1.0:
            raise ReviewError(f"topics.refit_share is {self.refit_share}: set it in review.yaml between 0 and 1.")


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
    max_fit_studies: int = DEFAULT_MAX_FIT_STUDIES,
    refit_share: float = DEFAULT_REFIT_SHARE,
    state_dir: Path | None = None,
    refit: bool = False,
) -> TopicResult:
    """Topics over the studies (columns id, title, abstract), mapped to codes, with suggestions (method 'topic').

    The same studies, codebook and settings (and saved state, with `state_dir`) give the same tables, byte
    for byte, on the same platform. See model_topics for the cap and the saved state.
    """
    settings = TopicSettings(backend, seed, min_topic_size, clustering, map_threshold, max_fit_studies, refit_share)
    return model_topics(lambda: [studies], codebook, settings, cache_dir=cache_dir, state_dir=state_dir, refit=refit)


def model_topics(
    batches: Batches,
    codebook: Codebook,
    settings: TopicSettings,
    *,
    cache_dir: Path | None = None,
    state_dir: Path | None = None,
    refit: bool = False,
    progress: Advance | None = None,
) -> TopicResult:
    """Topics for a corpus given as batches of studies; `batches()` is called for each pass and must give the
    same frames each time: scan, then (when refitting) the sample's texts, then placement.

    `progress(n)` is called as studies are placed. With `state_dir`, the model and the placements are saved
    there at the end (atomically) for the next run.
    """
    with _one_thread(settings.backend):
        run = TopicRun.start(batches, codebook, settings, cache_dir=cache_dir, state_dir=state_dir, refit=refit)
        if run.skipped is not None:
            return run.skipped
        if progress is not None:
            progress(int(run.placed_now.sum()))  # the fit sample
        for positions, texts in run.to_place(batches, progress):
            run.add(positions, assign_batch(run.fitted, texts))
            if progress is not None:
                progress(len(positions))
        return run.finish()


def _one_thread(backend: str) -> Any:
    """One BLAS/OpenMP thread while topics are modelled. With more, sums are split differently and the SVD, UMAP
    and HDBSCAN results differ in the last bits, which is enough to change the topics (45 against 44 on a real
    6.7k-study corpus) between machines, runners and settings of OMP_NUM_THREADS. threadpoolctl limits only the
    libraries already loaded, so the ones the model loads are imported first (torch only for the backend that
    embeds with it)."""
    from pipeline.light_imports import import_bertopic

    import_bertopic(with_torch=backend in TORCH_BACKENDS)  # scipy, scikit-learn, UMAP, HDBSCAN and their BLAS / OpenMP
    import scipy.linalg  # noqa: F401
    import sklearn.decomposition  # noqa: F401
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


# ---------------------------------------------------------------- one run, step by step


@dataclass
class _Scan:
    """Pass 1: every study's id and content key, which rows of each batch have text, and which studies form
    the fit sample (their texts are read by a further pass, and only when the model is refitted)."""

    ids: list[str] = field(default_factory=list)
    keys: list[bytes] = field(default_factory=list)
    rows: list[np.ndarray] = field(default_factory=list)  # per batch: row numbers of the studies with text
    heap: list[tuple[int, int]] = field(default_factory=list)  # (-rank, -position): the largest kept on top

    def sample_positions(self) -> list[int]:
        return sorted(-position for _, position in self.heap)


@dataclass
class TopicRun:
    """A run's state between its steps: `start` (scan, then fit or load), `to_place` + `add` (the batches to
    place, mappable over workers: assign_batch is a pure function of the FittedTopics and the texts), `finish`."""

    settings: TopicSettings
    state_dir: Path | None
    fingerprint: str
    ids: list[str]
    keys: list[bytes]
    fitted: FittedTopics | None = None
    saved: state.SavedStudies | None = None  # placements kept from earlier runs (reuse), None after a refit
    fit_id: str = ""
    refitted: bool = False
    topics: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    initial_outlier: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    suggestions: list[tuple[int, str, int, str, float]] = field(default_factory=list)
    placed_now: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # placed in this run
    known: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # placed by any means so far
    batch_rows: list[np.ndarray] = field(default_factory=list)  # from the scan: per batch, rows with text
    skipped: TopicResult | None = None
    info: dict[str, Any] = field(default_factory=dict)
    _cache_dir: Path | None = None
    _started: float = 0.0

    # ------------------------------------------------ start

    @classmethod
    def start(
        cls,
        batches: Batches,
        codebook: Codebook,
        settings: TopicSettings,
        *,
        cache_dir: Path | None = None,
        state_dir: Path | None = None,
        refit: bool = False,
    ) -> TopicRun:
        """Scan the corpus; reuse the saved model if it is still good, else fit on the (capped) sample."""
        settings.check()
        started = time.perf_counter()
        scan = _scan(batches, settings)
        n = len(scan.ids)
        tag = state.embedder_tag(make_embedder(settings.backend, cache_dir, seed=settings.seed))
        fingerprint = state.fingerprint(
            codebook, embedder_tag=tag, seed=settings.seed, min_topic_size=settings.min_topic_size,
            clustering=settings.clustering, threshold=settings.threshold, max_fit_studies=settings.max_fit_studies,
        )  # fmt: skip
        run = cls(settings, state_dir, fingerprint, scan.ids, scan.keys, batch_rows=scan.rows, _cache_dir=cache_dir,
                  _started=started)  # fmt: skip
        run._reset_arrays(n)
        if n < MIN_STUDIES:
            run._skip(n)
            return run
        saved = None if refit or state_dir is None else state.load_state(state_dir, fingerprint, cache_dir, settings.seed)
        reason = "asked to refit" if refit else run._refit_reason(saved)
        if reason:
            run._fit(batches, scan, codebook, reason)
        else:
            assert saved is not None
            run._reuse(saved)
        return run

    def _reset_arrays(self, n: int) -> None:
        self.topics = np.full(n, -1, dtype=np.int64)
        self.initial_outlier = np.zeros(n, dtype=bool)
        self.similarity = np.zeros(n, dtype=np.float64)
        self.placed_now = np.zeros(n, dtype=bool)
        self.known = np.zeros(n, dtype=bool)

    def _skip(self, n: int) -> None:
        s = self.settings
        settings = {"backend": s.backend, "seed": s.seed, "min_topic_size": s.min_topic_size,
                    "clustering": s.clustering, "map_threshold": s.threshold, "n_studies": n}  # fmt: skip
        status = f"skipped: {n} studies with text, topic modelling needs at least {MIN_STUDIES}"
        log.warning("topics skipped: %d studies with text (at least %d needed)", n, MIN_STUDIES)
        self.info = {"model": "none", "studies": n}
        self.skipped = skipped_result(status, s.backend, settings, self.info)

    def _refit_reason(self, saved: state.TopicState | None) -> str:
        if self.state_dir is None:
            return "no state folder"
        if saved is None:
            return "no usable saved model"
        rows = saved.studies.lookup(self.keys)
        seen_at_fit = saved.studies.at_fit[np.maximum(rows, 0)] if len(saved.studies) else np.zeros(len(rows), bool)
        unseen = int(((rows < 0) | ~seen_at_fit).sum())
        share = unseen / max(len(self.keys), 1)
        self.info["unseen_share"] = round(share, 4)
        if share > self.settings.refit_share:
            return f"{share:.1%} of the studies are new since the model was fitted (refit_share {self.settings.refit_share:.0%})"
        return ""

    def _fit(self, batches: Batches, scan: _Scan, codebook: Codebook, reason: str) -> None:
        s = self.settings
        positions = scan.sample_positions()
        sample = _gather(batches, scan, positions)
        log.info("topics: fitting on %d of %d studies (%s)", len(sample), len(self.ids), reason)
        fitted_and_placed = fit_sample(
            sample, codebook, backend=s.backend, seed=s.seed, min_topic_size=s.min_topic_size,
            cache_dir=self._cache_dir, clustering=s.clustering, threshold=s.threshold,
        )  # fmt: skip
        assert fitted_and_placed is not None  # the sample has at least MIN_STUDIES studies
        self.fitted, placed = fitted_and_placed
        self.refitted = True
        self.fit_id = state.fit_id_for(self.fingerprint, [self.keys[p] for p in positions])
        self.info.update(model="fitted", why=reason, fitted_on=len(sample))
        self.add(positions, placed)

    def _reuse(self, saved: state.TopicState) -> None:
        self.fitted, self.saved, self.fit_id = saved.fitted, saved.studies, saved.fit_id
        self.info.update(model="reused", fitted_on=int(saved.fitted.settings["n_studies"]))
        log.info("topics: reusing the saved model (%.1f%% of the studies are new since it was fitted)",
                 100 * self.info.get("unseen_share", 0.0))  # fmt: skip

    # ------------------------------------------------ placing

    def to_place(self, batches: Batches, progress: Advance | None = None) -> Iterator[tuple[list[int], StudyTexts]]:
        """Pass 2: take saved placements where the saved model knows a study's text; yield the rest in chunks
        of ASSIGN_BATCH studies, in input order, as (positions, texts) for assign_batch."""
        pending_positions: list[int] = []
        pending: list[StudyTexts] = []
        start = 0
        for frame, rows in zip(batches(), self.batch_rows, strict=True):  # the same batches as the scan's
            positions = np.arange(start, start + len(rows))
            todo = positions[~self.known[positions]]
            if self.saved is not None and len(todo):
                todo = self._take_saved(frame, rows, start, todo, progress)
            if len(todo):
                pending_positions += todo.tolist()
                pending.append(_texts_at(frame, rows, todo - start, self.ids, self.keys, todo))
            start += len(rows)
            while len(pending_positions) >= ASSIGN_BATCH:
                chunk, pending = _split(pending, ASSIGN_BATCH)
                yield pending_positions[:ASSIGN_BATCH], chunk
                pending_positions = pending_positions[ASSIGN_BATCH:]
        if pending_positions:
            chunk, _ = _split(pending, len(pending_positions))
            yield pending_positions, chunk

    def _take_saved(
        self, frame: pd.DataFrame, rows: np.ndarray, start: int, todo: np.ndarray, progress: Advance | None
    ) -> np.ndarray:
        """Fill the studies the saved state knows; return the positions still to place. Only studies with saved
        suggestions are read again (their evidence sentence is quoted from their text)."""
        assert self.saved is not None and self.fitted is not None
        saved = self.saved
        found = saved.lookup([self.keys[p] for p in todo.tolist()])
        hit = found >= 0
        at, rows_found = todo[hit], found[hit]
        self.topics[at] = saved.topics[rows_found]
        self.initial_outlier[at] = saved.initial_outlier[rows_found]
        self.similarity[at] = saved.similarity[rows_found]
        self.known[at] = True
        counts = saved.indptr[rows_found + 1] - saved.indptr[rows_found]
        quoted = at[counts > 0]
        if len(quoted):
            texts = _texts_at(frame, rows, quoted - start, self.ids, self.keys, quoted)
            codes = self.fitted.codes.ids
            for i, (p, row) in enumerate(zip(quoted.tolist(), rows_found[counts > 0].tolist(), strict=True)):
                for s in range(int(saved.indptr[row]), int(saved.indptr[row + 1])):
                    k = int(saved.sug_sentence[s])
                    evidence = texts.sentences(i)[k] if k >= 0 else ""
                    self.suggestions.append((p, codes[int(saved.sug_code[s])], k, evidence, float(saved.sug_score[s])))
        if progress is not None and len(at):
            progress(len(at))
        return todo[~hit]

    def add(self, positions: list[int], placed: StudyAssignments) -> None:
        """Record the placements of the studies at these positions (from fit_sample or assign_batch)."""
        index = np.asarray(positions, dtype=np.int64)
        self.topics[index] = placed.topics
        self.initial_outlier[index] = placed.initial_outlier
        self.similarity[index] = placed.similarity
        self.placed_now[index] = True
        self.known[index] = True
        self.suggestions += [(positions[pos], *rest) for pos, *rest in placed.suggestions]

    # ------------------------------------------------ finish

    def finish(self) -> TopicResult:
        """The tables of every study; the saved state updated when anything was placed in this run."""
        assert self.fitted is not None
        if not self.known.all():
            raise RuntimeError(f"{int((~self.known).sum())} studies were never placed: call add() for every batch")
        studies = StudyAssignments(
            self.ids, self.keys, self.topics, self.initial_outlier, self.similarity, self.suggestions
        )
        self.info.update(
            studies=len(self.ids),
            placed_now=int(self.placed_now.sum()),
            from_saved_state=int(len(self.ids) - self.placed_now.sum()),
            seconds=round(time.perf_counter() - self._started, 1),
            fit_id=self.fit_id,
        )
        if self.state_dir is not None:
            self._save(studies)
        log.info("topics: %s", ", ".join(f"{k} {v}" for k, v in self.info.items()))
        return compose_result(self.fitted, studies, dict(self.info))

    def _save(self, studies: StudyAssignments) -> None:
        assert self.state_dir is not None and self.fitted is not None
        if not self.refitted and not self.placed_now.any():
            return
        placed = _subset(studies, np.flatnonzero(self.placed_now))
        code_index = {code: k for k, code in enumerate(self.fitted.codes.ids)}
        merged = state.merge_studies(
            None if self.refitted else self.saved, self.fit_id, placed, code_index, at_fit=self.refitted
        )
        if self.refitted:
            state.save_model(self.state_dir, self.fingerprint, self.fit_id, self.fitted)
        state.save_studies(self.state_dir, merged)


# ---------------------------------------------------------------- helpers


def _scan(batches: Batches, settings: TopicSettings) -> _Scan:
    """Ids and content keys of every study with text, and the sample: the max_fit_studies smallest
    sha256(seed, key), ties by position. Nothing is cleaned here: keys are of the text as given."""
    scan = _Scan()
    salt = f"{settings.seed}\x1f".encode()
    seen: set[str] = set()
    for frame in batches():
        rows: list[int] = []
        for row, (study_id, raw_title, raw_abstract) in enumerate(study_rows(frame, seen)):
            if not has_text(raw_title, raw_abstract):
                continue
            rows.append(row)
            position, key = len(scan.ids), doc_key(raw_title, raw_abstract)
            scan.ids.append(study_id)
            scan.keys.append(key)
            rank = int.from_bytes(hashlib.sha256(salt + key).digest()[:8], "big")
            item = (-rank, -position)
            if len(scan.heap) < settings.max_fit_studies:
                heapq.heappush(scan.heap, item)
            elif item > scan.heap[0]:  # smaller (rank, position) than the largest kept
                heapq.heapreplace(scan.heap, item)
        scan.rows.append(np.asarray(rows, dtype=np.int64))
    return scan


def _gather(batches: Batches, scan: _Scan, positions: list[int]) -> StudyTexts:
    """The cleaned texts of the studies at these (sorted) positions: one more pass over the batches."""
    wanted = np.asarray(positions, dtype=np.int64)
    parts: list[StudyTexts] = []
    start = 0
    for frame, rows in zip(batches(), scan.rows, strict=True):
        here = wanted[(wanted >= start) & (wanted < start + len(rows))]
        if len(here):
            parts.append(_texts_at(frame, rows, here - start, scan.ids, scan.keys, here))
        start += len(rows)
    return StudyTexts.concat(parts)


def _texts_at(
    frame: pd.DataFrame, rows: np.ndarray, within: np.ndarray, ids: list[str], keys: list[bytes], positions: np.ndarray
) -> StudyTexts:
    """The cleaned texts of some studies of a batch: `within` indexes the batch's rows with text."""
    picked = rows[within]
    titles = frame["title"].iloc[picked].tolist() if "title" in frame.columns else [None] * len(picked)
    abstracts = frame["abstract"].iloc[picked].tolist()
    texts = StudyTexts()
    for p, title, abstract in zip(positions.tolist(), titles, abstracts, strict=True):
        texts.append(ids[p], raw_text(title), raw_text(abstract), keys[p])
    return texts


def _split(parts: list[StudyTexts], n: int) -> tuple[StudyTexts, list[StudyTexts]]:
    """The first n studies of the parts as one StudyTexts, and the parts left."""
    taken: list[StudyTexts] = []
    count = 0
    while count < n:
        part = parts.pop(0)
        need = n - count
        if len(part) <= need:
            taken.append(part)
            count += len(part)
        else:
            taken.append(part.take(range(need)))
            parts.insert(0, part.take(range(need, len(part))))
            count = n
    return StudyTexts.concat(taken), parts


def _subset(studies: StudyAssignments, rows: np.ndarray) -> StudyAssignments:
    remap = {int(r): k for k, r in enumerate(rows.tolist())}
    return StudyAssignments(
        [studies.ids[r] for r in rows.tolist()],
        [studies.keys[r] for r in rows.tolist()],
        studies.topics[rows],
        studies.initial_outlier[rows],
        studies.similarity[rows],
        [(remap[p], *rest) for p, *rest in studies.suggestions if p in remap],
    )
