"""Candidate pairs: only records that share a blocking key are compared, so cost grows about n log n.

Keys (each catches duplicates the others miss):
  doi                       the normalised DOI
  title start / title end   the first / last 24 letters of the title (a typo at one end keeps the other)
  main title                the title without its subtitle
  rare words                the two rarest title words (word order, inserted words)
  first author + year       titles in another language, missing or garbled titles
  volume + first page       the bibliographic address
  abstract start            the first 80 letters of the abstract (records without titles, truncated copies)
  sorted neighbourhood      each title against the next few in alphabetical order
A key shared by more than `MAX_BLOCK` records (generic titles, common surnames) is not compared
all-against-all: its records are sorted by title and each is compared with its next neighbours only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator

import numpy as np

from pipeline.dedupe.scoring import Features

MAX_BLOCK = 40
BIG_BLOCK_WINDOW = 8
NEIGHBOUR_WINDOW = 2


def _keys(f: Features, doc_freq: Counter[str]) -> Iterator[tuple[str, int]]:
    rare_cache: dict[str, str] = {}
    for i in range(f.size):
        title = f.title[i]
        core = title.core
        compact = core.replace(" ", "")
        if f.doi[i]:
            yield "d" + f.doi[i], i
        if len(compact) >= 10:
            yield "s" + title.notice + compact[:24], i
        if len(compact) >= 30:
            yield "e" + title.notice + compact[-24:], i
        if title.main != core and len(title.main) >= 20:
            yield "m" + title.main.replace(" ", ""), i
        rare = rare_cache.get(core)
        if rare is None:
            rare = rare_cache[core] = _rare_words(core, doc_freq)
        if rare:
            yield "w" + rare, i
        surnames = f.authors[i].surnames
        if surnames and f.year[i]:
            yield f"a{surnames[0]}|{f.year[i]}", i
        if f.volume[i] and f.pages[i][0]:
            yield f"p{f.volume[i]}|{f.pages[i][0]}", i
        abstract = f.abstract[i][0]
        if len(abstract) >= 80:
            yield "x" + abstract[:80], i


def _rare_words(core: str, doc_freq: Counter[str]) -> str:
    words = {w for w in core.split() if len(w) >= 4}
    if len(words) < 3:
        return ""
    rarest = sorted((doc_freq[w], w) for w in words)[:2]
    return " ".join(sorted(w for _, w in rarest))


class _PairCodes:
    """Candidate pairs as int64 codes i * size + j (i < j), gathered block by block with numpy."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.chunks: list[np.ndarray] = []
        self._triu: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def all_pairs(self, members: list[int]) -> None:
        k = len(members)
        if k not in self._triu:
            self._triu[k] = np.triu_indices(k, 1)
        rows, cols = self._triu[k]
        block = np.asarray(members, dtype=np.int64)
        self.add(block[rows], block[cols])

    def windows(self, ordered: list[int], window: int) -> None:
        """Each record with the next `window` records of an ordering (sorted neighbourhood)."""
        block = np.asarray(ordered, dtype=np.int64)
        for step in range(1, window + 1):
            if step < len(block):
                self.add(block[:-step], block[step:])

    def add(self, left: np.ndarray, right: np.ndarray) -> None:
        low, high = np.minimum(left, right), np.maximum(left, right)
        keep = low != high
        self.chunks.append(low[keep] * self.size + high[keep])

    def unique(self) -> np.ndarray:
        if not self.chunks:
            return np.empty((0, 2), dtype=np.int64)
        codes = np.sort(np.concatenate(self.chunks), kind="stable")
        if len(codes):
            codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
        return np.stack([codes // self.size, codes % self.size], axis=1)


def candidate_pairs(f: Features, *, new: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j) row-position pairs with i < j, as an (m, 2) int64 array, ordered by i then j.

    `new`: a boolean mask; when given, pairs of two old records (both False) are left out
    (incremental mode: old pairs were judged before).
    """
    doc_freq: Counter[str] = Counter()
    for title in f.title:
        doc_freq.update({w for w in title.core.split() if len(w) >= 4})
    blocks: dict[str, list[int]] = defaultdict(list)
    for key, i in _keys(f, doc_freq):
        blocks[key].append(i)
    cores = [t.core for t in f.title]
    codes = _PairCodes(f.size)
    for members in blocks.values():
        if len(members) <= 1:
            continue
        if len(members) <= MAX_BLOCK:
            codes.all_pairs(members)
        else:  # a generic title or a common surname: neighbours in title order only
            codes.windows(sorted(members, key=cores.__getitem__), BIG_BLOCK_WINDOW)
    titled = sorted((i for i in range(f.size) if cores[i]), key=cores.__getitem__)
    codes.windows(titled, NEIGHBOUR_WINDOW)
    result = codes.unique()
    if new is not None and len(result):
        result = result[new[result[:, 0]] | new[result[:, 1]]]
    return result
