"""DedupeIndex: what deduplication knows about an already-deduplicated corpus, saved between runs.

It holds, for every record of the corpus (in the order of the result that made it): the record_id, the
normalised features, the blocking keys, and the record's link to its group's canonical record (verdict level,
score and reason). With it, `deduplicate(new, existing=groups, index=index)` computes features only for the
new records, compares only pairs that touch them, and keeps the verdicts of the groups they leave alone.

The file is written atomically, and starts with a header naming its format, the dedupe engine it was made
by (a fingerprint of this package's code and the libraries whose behaviour it depends on), the caller's
context (e.g. the cleaning rules' version) and the record count. `DedupeIndex.load` returns an empty index
(and logs why) for a missing, unreadable, older-format, other-engine or other-context file; `deduplicate`
rebuilds an index that does not describe exactly the existing records (by record_id) from their fields.

A caller saves the index only once the result it describes is committed: a run that dies before leaves the
previous index, which describes the previous corpus exactly; one that dies between commit and save leaves
an index that no longer covers the corpus, rebuilt (never trusted) on the next run.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import rapidfuzz

from pipeline.dedupe.blocking import BlockKeys
from pipeline.dedupe.features import Features
from pipeline.io import atomic_write

log = logging.getLogger(__name__)

INDEX_FORMAT = 2  # 2: the state as a sequence of pickles, one per piece
_MAGIC = b"living-review dedupe index\n"
NO_LINK = -9  # level of a record that is its group's canonical record (or alone)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: features are millions of small acyclic objects, and each full
    collection would walk them all (a third of an incremental run's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@lru_cache(maxsize=1)
def engine_version() -> str:
    """A fingerprint of the dedupe code and of the library behaviour its features and key hashes depend on."""
    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), *package.glob("*.yaml")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for version in (rapidfuzz.__version__, pd.__version__, np.__version__):
        digest.update(version.encode() + b"\0")
    return digest.hexdigest()[:20]


@dataclass(slots=True)
class Links:
    """Each record's place in the last result: its group, whether it is the canonical record, and the
    verdict that links it to the canonical record (NO_LINK for a canonical record)."""

    group: list[str] = field(default_factory=list)
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    level: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    reason: list[str] = field(default_factory=list)


class DedupeIndex:
    """Features, blocking keys and group links of a deduplicated corpus; see the module docstring.

    Pass one to `deduplicate(..., index=index)`: it is brought up to date in place (it then describes every
    record of the result, in the result's order), ready to `save` once the run's result is committed.
    """

    def __init__(self) -> None:
        self.record_ids: list[str] = []
        self.features = Features()
        self.keys = BlockKeys()
        self.links: Links | None = None

    @property
    def size(self) -> int:
        return len(self.record_ids)

    def __len__(self) -> int:
        return self.size

    def covers(self, record_ids: Iterable[str]) -> bool:
        """Does the index describe exactly these records (in any order)?"""
        ids = list(record_ids)
        return ids == self.record_ids or (len(ids) == self.size and set(ids) == set(self.record_ids))

    def arrange(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (one row per record_id) in the index's order when it holds exactly the index's records (pass
        the existing corpus so: `deduplicate` then uses the index as it is); otherwise `frame` unchanged."""
        ids = [str(rid) for rid in frame["record_id"].tolist()]
        if ids == self.record_ids or not self.covers(ids):
            return frame
        position = {rid: row for row, rid in enumerate(self.record_ids)}
        order = np.argsort(np.fromiter((position[rid] for rid in ids), dtype=np.int64, count=len(ids)))
        return frame.iloc[order].reset_index(drop=True)

    def abstract_keys_of(self, record_ids: Iterable[str]) -> dict[str, tuple[str, bool]]:
        """The abstract feature (features.abstract_keys) of each of these records the index holds: a record never
        changes once stored, so an update need not read and fold the abstracts of the corpus again."""
        wanted = set(record_ids)
        abstracts = self.features.abstract
        return {rid: abstracts[row] for row, rid in enumerate(self.record_ids) if rid in wanted}

    def clear(self) -> None:
        self.assign([], Features(), BlockKeys(), None)

    def assign(self, record_ids: list[str], features: Features, keys: BlockKeys, links: Links | None) -> None:
        """Describe these records (rows of `features` and `keys`, in this order)."""
        self.record_ids, self.features, self.keys, self.links = record_ids, features, keys, links

    def reorder(self, record_ids: list[str]) -> None:
        """Put the records in the order of `record_ids` (the same set; see `covers`): the features are kept,
        the blocking keys rebuilt, and the group links dropped (this run recomputes them)."""
        if record_ids == self.record_ids:
            return
        position = {rid: row for row, rid in enumerate(self.record_ids)}
        features = self.features.take([position[rid] for rid in record_ids])
        # The links are dropped: a group's reason names its strongest link, ties going to the first row.
        self.assign(list(record_ids), features, BlockKeys.build(features), None)

    # --- files ----------------------------------------------------------------------------

    def save(self, path: str | Path, *, context: str = "") -> None:
        """Write the index to `path` atomically (a reader sees the old file or the new one, never half of one).

        `context`: whatever else the records' fields depend on (e.g. the cleaning rules' version); `load`
        with another context gives an empty index.
        """
        header = {"format": INDEX_FORMAT, "engine": engine_version(), "records": self.size, "context": context}
        with atomic_write(path, "wb") as handle:
            handle.write(_MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n")
            for piece in self._pieces():
                # A pickle per piece: a pickler's memo holds an entry for every object it wrote, and one pickle of
                # the whole index held them all at once (a million records: +0.45 GB at the save, the dedupe
                # child's peak). The record ids and their links stay together: they share their strings.
                pickle.dump(piece, handle, protocol=pickle.HIGHEST_PROTOCOL)
            pickle.dump((_END, None), handle, protocol=pickle.HIGHEST_PROTOCOL)

    def _pieces(self) -> Iterator[tuple[str, object]]:
        yield "record_ids+links", (self.record_ids, self.links)
        for name, value in self.features.__getstate__().items():
            yield _FEATURE + name, value
        yield "keys", self.keys

    @classmethod
    def load(cls, path: str | Path, *, context: str = "") -> DedupeIndex:
        """The index saved at `path`; an empty index (logged, never an error) when the file is missing,
        unreadable, of another format, made by another version of the dedupe engine, or saved with
        another `context`."""
        path = Path(path)
        index = cls()
        if not path.is_file():
            log.info("dedupe index %s does not exist yet: it will be built", path)
            return index
        try:
            with path.open("rb") as handle:
                header = _read_header(handle)
                why = _stale(header, context)
                if why:
                    log.info("dedupe index %s %s: it will be rebuilt", path, why)
                    return index
                with paused_gc():
                    pieces = _read_pieces(handle)
            record_ids, links = pieces["record_ids+links"]
            features = Features.__new__(Features)
            features.__setstate__({name[len(_FEATURE):]: v for name, v in pieces.items() if name.startswith(_FEATURE)})
            index.assign(record_ids, features, pieces["keys"], links)
            consistent = index._consistent(int(header["records"]))  # type: ignore[call-overload]
        except Exception as error:  # a cache: whatever is wrong with the file, it is rebuilt, never trusted
            log.warning("dedupe index %s cannot be read (%s): it will be rebuilt", path, error)
            return cls()
        if not consistent:
            log.warning("dedupe index %s is inconsistent: it will be rebuilt", path)
            return cls()
        return index

    def _consistent(self, records: int) -> bool:
        n = self.size
        lengths = {self.features.size, self.keys.size, len(self.features.title), len(self.keys.order)}
        links_ok = self.links is None or {len(self.links.group), len(self.links.keep), len(self.links.reason)} == {n}
        return records == n and lengths == {n} and len(set(self.record_ids)) == n and links_ok


_FEATURE = "features."
_END = "end"


def _read_pieces(handle: BinaryIO) -> dict[str, Any]:
    """The (name, value) pickles `save` wrote, up to its end marker."""
    pieces: dict[str, Any] = {}
    while True:
        name, value = pickle.load(handle)
        if name == _END:
            return pieces
        pieces[name] = value


def _read_header(handle: BinaryIO) -> dict[str, object]:
    if handle.read(len(_MAGIC)) != _MAGIC:
        raise ValueError("it is not a dedupe index")
    header = json.loads(handle.readline())
    if not isinstance(header, dict):
        raise ValueError("its header is not a JSON object")
    return header


def _stale(header: dict[str, object], context: str) -> str:
    if header.get("format") != INDEX_FORMAT:
        return f"has format {header.get('format')!r}, not {INDEX_FORMAT}"
    if header.get("engine") != engine_version():
        return "was made by another version of the dedupe engine"
    if header.get("context", "") != context:
        return f"was saved for context {header.get('context')!r}, not {context!r}"
    if not isinstance(header.get("records"), int):
        return "has no record count"
    return ""


__all__ = ["INDEX_FORMAT", "NO_LINK", "DedupeIndex", "Links", "engine_version", "paused_gc"]
