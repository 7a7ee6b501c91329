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

Keys are kept as 64-bit hashes, one array per kind of key (a million records: 64 MB, no key strings), so
blocks are found by sorting integers. `BlockKeys.extend` adds records and updates what they change in
the earlier records' keys (title word frequencies, container DOIs, the title order), so the pairs touching
new records are exactly those a run over the whole corpus would compare.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from pipeline.dedupe.features import Features

MAX_BLOCK = 40
BIG_BLOCK_WINDOW = 8
NEIGHBOUR_WINDOW = 2
KEY_KINDS = ("d", "s", "e", "m", "w", "a", "p", "x")
_RARE_MIN_WORDS = 3
_RARE_WORD_LENGTH = 4
_CHUNK = 50_000
_CODES_CHUNK = 100_000


def _hash(keys: list[str]) -> np.ndarray:
    """Stable 64-bit hashes of key strings (the same in every process); 0 for ''."""
    values = np.asarray(keys, dtype=object)
    try:
        codes = pd.util.hash_array(values, categorize=True)
    except UnicodeEncodeError:  # a lone surrogate: hash the bytes that keep it
        values = np.asarray([k.encode("utf-8", "surrogatepass") for k in keys], dtype=object)
        codes = pd.util.hash_array(values, categorize=True)
    empty = np.fromiter((not k for k in keys), dtype=bool, count=len(keys))
    codes[(codes == 0) & ~empty] = 1
    codes[empty] = 0
    return codes


def _title_words(core: str) -> set[str]:
    return {w for w in core.split() if len(w) >= _RARE_WORD_LENGTH}


class _Vocabulary:
    """How many records' titles hold each word (words of 4+ letters), and each record's two rarest words."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.words: list[str] = []
        self.counts: list[int] = []

    def count(self, cores: Iterable[str]) -> set[int]:
        """Count the words of these titles; returns the ids whose count changed."""
        changed: set[int] = set()
        ids, counts = self.ids, self.counts
        for core in cores:
            for word in _title_words(core):
                wid = ids.get(word)
                if wid is None:
                    wid = ids[word] = len(self.words)
                    self.words.append(word)
                    counts.append(0)
                counts[wid] += 1
                changed.add(wid)
        return changed

    def rarest(self, core: str) -> tuple[int, int, int]:
        """Ids of the two rarest words (by count, then spelling; in spelling order), and the count of the
        next rarest word; (-1, -1, 0) for titles of fewer than 3 such words."""
        words = _title_words(core)
        if len(words) < _RARE_MIN_WORDS:
            return -1, -1, 0
        ids, counts = self.ids, self.counts
        first, second, third = sorted((counts[ids[w]], w) for w in words)[:3]
        a, b = ids[first[1]], ids[second[1]]
        return (a, b, third[0]) if first[1] <= second[1] else (b, a, third[0])

    def key(self, pair: tuple[int, int]) -> str:
        return "" if pair[0] < 0 else "w" + self.words[pair[0]] + " " + self.words[pair[1]]


def _key_strings(f: Features, rows: Iterable[int], rare: list[str]) -> dict[str, list[str]]:
    """The key strings of each kind for these rows ('' where a record has no key of that kind)."""
    keys: dict[str, list[str]] = {kind: [] for kind in KEY_KINDS}
    keys["w"] = rare
    for i in rows:
        title = f.title[i]
        core = title.core
        compact = core.replace(" ", "")
        keys["d"].append("d" + f.doi[i] if f.doi[i] else "")
        keys["s"].append("s" + title.notice + compact[:24] if len(compact) >= 10 else "")
        keys["e"].append("e" + title.notice + compact[-24:] if len(compact) >= 30 else "")
        main = title.main
        keys["m"].append("m" + main.replace(" ", "") if main != core and len(main) >= 20 else "")
        surnames = f.authors[i].surnames
        keys["a"].append(f"a{surnames[0]}|{f.year[i]}" if surnames and f.year[i] else "")
        keys["p"].append(f"p{f.volume[i]}|{f.pages[i][0]}" if f.volume[i] and f.pages[i][0] else "")
        abstract = f.abstract[i][0]
        keys["x"].append("x" + abstract[:80] if len(abstract) >= 80 else "")
    return keys


class BlockKeys:
    """Blocking keys of every record (64-bit hashes), the title word counts behind the rare-word key,
    and the records in title order (for sorted neighbourhoods)."""

    def __init__(self) -> None:
        self.size = 0
        self.codes: dict[str, np.ndarray] = {kind: np.zeros(0, dtype=np.uint64) for kind in KEY_KINDS}
        self.vocabulary = _Vocabulary()
        # Per row: ids of its two rarest title words (-1: none), and the count of its third rarest when chosen.
        self.rare = np.zeros((0, 3), dtype=np.int32)
        self.order = np.zeros(0, dtype=np.int64)  # rows sorted by (title core, row)
        self.titled = np.zeros(0, dtype=bool)

    @classmethod
    def build(cls, f: Features) -> BlockKeys:
        keys = cls()
        keys.extend(f, 0, [])
        return keys

    # --- adding records -------------------------------------------------------------------

    def extend(self, f: Features, start: int, changed_dois: Iterable[int] = ()) -> None:
        """Take in rows start..f.size-1 of `f` (new records) and update the earlier rows' keys they change:
        rare words whose counts grew, DOIs that became (or stopped being) container DOIs (`changed_dois`)."""
        if start != self.size:
            raise ValueError(f"blocking keys hold {self.size} records; new rows must start there, not at {start}")
        new = range(start, f.size)
        grown = self.vocabulary.count(f.title[i].core for i in new)
        self.rare = np.concatenate([self.rare, np.zeros((len(new), 3), dtype=np.int32)])
        affected = self._rare_changed(start, grown)
        self.size = f.size
        self._set_rare(f, [*affected.tolist(), *new])
        self._add_codes(f, new)
        self._update(f, "d", changed_dois)
        self._update(f, "w", affected.tolist())
        self.titled = np.concatenate([self.titled, np.fromiter((bool(f.title[i].core) for i in new), bool, len(new))])
        self.order = self._merged_order(f, start)

    def _rare_changed(self, start: int, grown: set[int]) -> np.ndarray:
        """Earlier rows whose two rarest title words may have changed now that the `grown` words are commoner.

        A row's pair stands while both its words stay rarer than the row's third rarest word was when the pair
        was chosen (counts only grow): only rows where a grown word of the pair reached that count are redone.
        """
        rare = self.rare[:start]
        touched = np.flatnonzero(np.isin(rare[:, :2], np.fromiter(grown, dtype=np.int32, count=len(grown))).any(axis=1))
        counts = np.asarray(self.vocabulary.counts, dtype=np.int64)
        highest = np.maximum(counts[rare[touched, 0]], counts[rare[touched, 1]])
        return touched[highest >= rare[touched, 2]]

    def _set_rare(self, f: Features, rows: list[int]) -> None:
        if not rows:
            return
        cache: dict[str, tuple[int, int, int]] = {}
        found = []
        for row in rows:
            core = f.title[row].core
            rare = cache.get(core)
            if rare is None:
                rare = cache[core] = self.vocabulary.rarest(core)
            found.append(rare)
        self.rare[np.asarray(rows, dtype=np.int64)] = np.asarray(found, dtype=np.int32)

    def _rare_keys(self, rows: Iterable[int]) -> list[str]:
        """The rare-word key strings of these rows ('' for none)."""
        selected = self.rare[np.fromiter(rows, dtype=np.int64), :2].tolist()
        return [self.vocabulary.key((a, b)) for a, b in selected]

    def _add_codes(self, f: Features, rows: range) -> None:
        parts: dict[str, list[np.ndarray]] = {kind: [self.codes[kind]] for kind in KEY_KINDS}
        for begin in range(rows.start, rows.stop, _CHUNK):
            chunk = range(begin, min(begin + _CHUNK, rows.stop))  # key strings of a chunk at a time
            strings = _key_strings(f, chunk, self._rare_keys(chunk))
            for kind in KEY_KINDS:
                parts[kind].append(_hash(strings[kind]))
        self.codes = {kind: np.concatenate(parts[kind]) for kind in KEY_KINDS}

    def _update(self, f: Features, kind: str, rows: Iterable[int]) -> None:
        """New codes of one kind (the DOI or rare-word key) for earlier rows."""
        rows = sorted(rows)
        if not rows:
            return
        if kind == "w":
            strings = self._rare_keys(rows)
        else:
            strings = ["d" + f.doi[row] if f.doi[row] else "" for row in rows]
        self.codes[kind][np.asarray(rows, dtype=np.int64)] = _hash(strings)

    def _merged_order(self, f: Features, start: int) -> np.ndarray:
        """Rows by (title core, row): the earlier order with the new rows inserted where they belong."""
        if start == 0:
            cores = [t.core for t in f.title]
            return np.asarray(sorted(range(f.size), key=cores.__getitem__), dtype=np.int64)
        new = sorted(range(start, f.size), key=lambda r: f.title[r].core)
        old = self.order
        # Ties go after the earlier rows: new rows have higher row numbers.
        positions = [bisect.bisect_right(old, f.title[row].core, key=lambda r: f.title[r].core) for row in new]
        return np.insert(old, positions, np.asarray(new, dtype=np.int64))

    # --- pairs ----------------------------------------------------------------------------

    def pair_codes(self, touched: np.ndarray | None = None) -> np.ndarray:
        """Sorted unique candidate pairs as codes i * size + j (i < j).

        `touched`: a boolean mask; when given, only pairs with at least one touched record are returned
        (incremental mode: pairs of two untouched records were judged before).
        """
        n = self.size
        rank = np.empty(n, dtype=np.int64)
        rank[self.order] = np.arange(n, dtype=np.int64)
        found: list[np.ndarray] = []
        for kind in KEY_KINDS:
            rows = self._block_rows(self.codes[kind], touched)
            if len(rows) > 1:
                found.extend(_block_pairs(rows, self.codes[kind][rows], rank[rows], n, touched))
        titled = self.order[self.titled[self.order]]
        found.extend(_window_codes(titled, NEIGHBOUR_WINDOW, n, touched))
        if not found:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(found))

    @staticmethod
    def _block_rows(codes: np.ndarray, touched: np.ndarray | None) -> np.ndarray:
        if touched is None:
            return np.flatnonzero(codes)
        wanted = np.unique(codes[touched])
        wanted = wanted[wanted != 0]
        return np.flatnonzero(np.isin(codes, wanted)) if len(wanted) else np.zeros(0, dtype=np.int64)


class _KindBlocks:
    """The blocks of one kind of key: rows sorted by (key, title order), only blocks of two records or more."""

    def __init__(self, codes: np.ndarray, rank: np.ndarray) -> None:
        rows = np.flatnonzero(codes)
        rows = rows[np.lexsort((rank[rows], codes[rows]))]
        sorted_codes = codes[rows]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = sorted_codes[1:] != sorted_codes[:-1]
        block = np.cumsum(first) - 1
        sizes = np.bincount(block, minlength=1)
        shared = sizes[block] > 1  # a key no other record has gives no pair
        self.rows = rows[shared].astype(np.int32)
        first = first[shared]
        self.block = (np.cumsum(first) - 1).astype(np.int32)  # block of each position
        self.starts = np.flatnonzero(first).astype(np.int32)
        self.sizes = np.diff(np.append(self.starts, len(self.rows))).astype(np.int32)
        self.position = np.full(len(codes), -1, dtype=np.int32)  # position of each row (-1: in no block)
        self.position[self.rows] = np.arange(len(self.rows), dtype=np.int32)

    def partners(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, partner) for every pair these rows are in: all of a small block, neighbours in a big one."""
        at = self.position[rows]
        rows, at = rows[at >= 0], at[at >= 0]
        block = self.block[at]
        start, size = self.starts[block].astype(np.int64), self.sizes[block].astype(np.int64)
        small = size <= MAX_BLOCK
        count = size[small]
        offsets = np.arange(int(count.sum()), dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
        left = [np.repeat(rows[small], count)]
        right = [self.rows[np.repeat(start[small], count) + offsets]]
        big_rows, big_at = rows[~small], at[~small].astype(np.int64)
        big_start, big_end = start[~small], start[~small] + size[~small]
        for step in range(1, BIG_BLOCK_WINDOW + 1):
            for other in (big_at - step, big_at + step):
                inside = (other >= big_start) & (other < big_end)
                left.append(big_rows[inside])
                right.append(self.rows[other[inside]])
        return np.concatenate(left), np.concatenate(right)

    def paired(self, i: int, j: int) -> bool:
        a, b = int(self.position[i]), int(self.position[j])
        if a < 0 or b < 0 or self.block[a] != self.block[b]:
            return False
        return bool(self.sizes[self.block[a]] <= MAX_BLOCK) or abs(a - b) <= BIG_BLOCK_WINDOW


class Blocks:
    """Every block as sorted arrays (a million records: ~130 MB), to list the candidate pairs a slice of rows
    at a time (never all at once: a million records give tens of millions) and to tell whether one pair is a
    candidate."""

    def __init__(self, keys: BlockKeys) -> None:
        n = self.size = keys.size
        rank = np.empty(n, dtype=np.int64)
        rank[keys.order] = np.arange(n, dtype=np.int64)
        self.kinds = [_KindBlocks(keys.codes[kind], rank) for kind in KEY_KINDS]
        titled = keys.order[keys.titled[keys.order]]
        self.titled = titled.astype(np.int32)
        self.title_position = np.full(n, -1, dtype=np.int32)
        self.title_position[titled] = np.arange(len(titled), dtype=np.int32)

    def pair_chunks(self, rows_per_chunk: int = 20_000) -> Iterator[np.ndarray]:
        """Sorted unique candidate pair codes i * size + j (i < j), for i in one slice of rows after another:
        together, the candidate pairs in order."""
        n = self.size
        for begin in range(0, n, rows_per_chunk):
            rows = np.arange(begin, min(begin + rows_per_chunk, n), dtype=np.int64)
            found = []
            for kind in self.kinds:
                left, right = kind.partners(rows)
                found.append(_later(left, right, n))
            at = self.title_position[rows].astype(np.int64)
            for step in range(1, NEIGHBOUR_WINDOW + 1):
                for other in (at - step, at + step):
                    inside = (at >= 0) & (other >= 0) & (other < len(self.titled))
                    found.append(_later(rows[inside], self.titled[other[inside]].astype(np.int64), n))
            yield np.unique(np.concatenate(found))

    def is_candidate(self, i: int, j: int) -> bool:
        if any(kind.paired(i, j) for kind in self.kinds):
            return True
        a, b = int(self.title_position[i]), int(self.title_position[j])
        return a >= 0 and b >= 0 and abs(a - b) <= NEIGHBOUR_WINDOW


class CandidatePairs:
    """The candidate pairs, listed in order chunk by chunk, and a test for one pair.

    A whole corpus: from the blocks, a slice of rows at a time (a million records give tens of millions of
    pairs). Only the pairs touching some rows (incremental): few, kept in one array.
    """

    def __init__(self, keys: BlockKeys, touched: np.ndarray | None) -> None:
        self.size = keys.size
        self.count = 0
        self.blocks = Blocks(keys) if touched is None else None
        self.codes = keys.pair_codes(touched) if touched is not None else np.zeros(0, dtype=np.int64)

    def chunks(self) -> Iterator[np.ndarray]:
        if self.blocks is None:
            parts: Iterable[np.ndarray] = (
                self.codes[begin : begin + _CODES_CHUNK] for begin in range(0, len(self.codes), _CODES_CHUNK)
            )
        else:
            parts = self.blocks.pair_chunks()
        for part in parts:
            self.count += len(part)
            yield part

    def decode(self, codes: np.ndarray) -> Iterator[tuple[int, int]]:
        return zip((codes // self.size).tolist(), (codes % self.size).tolist(), strict=True)

    def contains(self, i: int, j: int) -> bool:
        if self.blocks is not None:
            return self.blocks.is_candidate(i, j)
        code = i * self.size + j
        at = int(np.searchsorted(self.codes, code))
        return at < len(self.codes) and int(self.codes[at]) == code


def _later(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    """Codes of the pairs whose partner comes after the row (each pair is listed from its first row)."""
    right = right.astype(np.int64)
    keep = right > left
    return left[keep] * n + right[keep]


def _encode(left: np.ndarray, right: np.ndarray, n: int, touched: np.ndarray | None) -> np.ndarray:
    low, high = np.minimum(left, right), np.maximum(left, right)
    keep = low != high
    if touched is not None:
        keep &= touched[low] | touched[high]
    return np.unique(low[keep] * n + high[keep])


def _block_pairs(
    rows: np.ndarray, codes: np.ndarray, rank: np.ndarray, n: int, touched: np.ndarray | None
) -> list[np.ndarray]:
    """All pairs within small blocks; within big blocks, each record with its next ones in title order."""
    by_block = np.lexsort((rank, codes))
    rows, codes = rows[by_block], codes[by_block]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    sizes = np.diff(np.append(starts, len(codes)))
    found: list[np.ndarray] = []
    for k in np.unique(sizes[(sizes > 1) & (sizes <= MAX_BLOCK)]).tolist():
        members = rows[starts[sizes == k][:, None] + np.arange(k)]
        left, right = np.triu_indices(k, 1)
        found.append(_encode(members[:, left].ravel(), members[:, right].ravel(), n, touched))
    big = sizes > MAX_BLOCK
    if big.any():
        block = np.repeat(np.arange(len(starts)), sizes)
        for step in range(1, BIG_BLOCK_WINDOW + 1):
            here = np.flatnonzero(big[block[:-step]] & (block[:-step] == block[step:]))
            found.append(_encode(rows[here], rows[here + step], n, touched))
    return found


def _window_codes(ordered: np.ndarray, window: int, n: int, touched: np.ndarray | None) -> list[np.ndarray]:
    """Each record with the next `window` records of an ordering (sorted neighbourhood)."""
    steps = range(1, min(window, len(ordered) - 1) + 1)
    return [_encode(ordered[:-step], ordered[step:], n, touched) for step in steps]


def decode(codes: np.ndarray, n: int) -> np.ndarray:
    """Pair codes -> an (m, 2) array of row positions."""
    return np.stack([codes // n, codes % n], axis=1) if len(codes) else np.empty((0, 2), dtype=np.int64)


def candidate_pairs(f: Features, *, new: np.ndarray | None = None) -> np.ndarray:
    """Unique (i, j) row-position pairs with i < j, as an (m, 2) int64 array, ordered by i then j.

    `new`: a boolean mask; when given, pairs of two old records (both False) are left out
    (incremental mode: old pairs were judged before).
    """
    keys = BlockKeys.build(f)
    touched = None if new is None else np.asarray(new, dtype=bool)
    return decode(keys.pair_codes(touched), f.size)


__all__ = [
    "BIG_BLOCK_WINDOW",
    "KEY_KINDS",
    "MAX_BLOCK",
    "NEIGHBOUR_WINDOW",
    "BlockKeys",
    "Blocks",
    "CandidatePairs",
    "candidate_pairs",
    "decode",
]
