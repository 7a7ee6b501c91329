"""Clustering without chaining (complete linkage over the pairwise verdicts).

Two clusters merge only when EVERY record of one matches EVERY record of the other, or lacks only
some evidence to (a 'maybe' without doubt: a typo too many, a missing page): a record that looks like
two different papers cannot pull them together. Reviewer decisions come first: a 'same'
pair is merged whatever the machine says, a 'different' pair is never in one cluster. Groups of an
existing corpus are never merged with each other by the machine (incremental mode).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from pipeline.dedupe.scoring import MATCH, MAYBE, Verdict

log = logging.getLogger(__name__)

REVIEWER_SAME = Verdict(MATCH, 1.0, "reviewer", "decision=same")


class ExistingGroups:
    """The groups of an existing corpus (incremental mode), as arrays: a group becomes a cluster only when a
    merge or a decision touches it, so a run over a million existing records does not walk them all."""

    def __init__(self, names: list[str], code: np.ndarray, active: np.ndarray) -> None:
        self.names = names
        self.code = code  # group of each existing row (rows 0..len(code)-1)
        self.active = active  # groups kept together (not split by a reviewer)
        self.order = np.argsort(code, kind="stable")
        self.starts = np.searchsorted(code[self.order], np.arange(len(names) + 1))
        self.seeded = np.zeros(len(names), dtype=bool)

    def rows(self, group: int) -> list[int]:
        return self.order[self.starts[group] : self.starts[group + 1]].tolist()

    def unseeded(self, row: int) -> int:
        """The active group of row not yet made a cluster, or -1."""
        if row >= len(self.code):
            return -1
        group = int(self.code[row])
        return group if self.active[group] and not self.seeded[group] else -1

    def pending(self) -> np.ndarray:
        """Active groups no merge or decision touched."""
        return self.active & ~self.seeded


@dataclass(slots=True)
class Clusters:
    """Union of records into clusters, with the complete-linkage check on every merge."""

    size: int
    verdict: Callable[[int, int], Verdict]
    cannot: set[tuple[int, int]] = field(default_factory=set)
    must: set[tuple[int, int]] = field(default_factory=set)
    owner: list[int] = field(init=False)
    # Clusters of two records or more (a record alone is its own cluster: a million singletons cost nothing).
    members: dict[int, list[int]] = field(init=False)
    locked: dict[int, str] = field(init=False)  # cluster -> existing group it holds
    # Matched pairs left apart: (i, j, why, the pair of rows that stood in the way or None).
    refused: list[tuple[int, int, str, tuple[int, int] | None]] = field(init=False)
    existing: ExistingGroups | None = None

    def __post_init__(self) -> None:
        self.owner = list(range(self.size))
        self.members = {}
        self.locked = {}
        self.refused = []

    def _key(self, i: int, j: int) -> tuple[int, int]:
        return (i, j) if i < j else (j, i)

    def pair_verdict(self, i: int, j: int) -> Verdict:
        key = self._key(i, j)
        if key in self.must:
            return REVIEWER_SAME
        return self.verdict(*key)

    def _seed(self, *rows: int) -> None:
        """Make the existing groups of these rows clusters (each the first time a merge or decision touches it)."""
        if self.existing is None:
            return
        for row in rows:
            group = self.existing.unseeded(row)
            if group >= 0:
                self.existing.seeded[group] = True
                self.seed_group(self.existing.rows(group), self.existing.names[group])

    def label(self, row: int) -> int:
        """The cluster of row (a group no merge touched counts as one cluster: size + its number)."""
        group = self.existing.unseeded(row) if self.existing is not None else -1
        return self.size + group if group >= 0 else self.owner[row]

    def seed_group(self, rows: list[int], group: str) -> None:
        """Put the records of one existing group together, unchecked (they were judged before)."""
        target = self.owner[rows[0]]
        for row in rows[1:]:
            self._union(target, self.owner[row])
        self.locked[self.owner[rows[0]]] = group

    def members_of(self, cluster: int) -> list[int]:
        return self.members.get(cluster) or [cluster]

    def clusters(self) -> Iterator[list[int]]:
        """The rows of every cluster, singletons included; not those of existing groups still pending
        (see ExistingGroups.pending)."""
        yield from self.members.values()
        pending = [] if self.existing is None else self.existing.pending()[self.existing.code].tolist()
        pending.extend([False] * (self.size - len(pending)))
        for row, owner in enumerate(self.owner):
            if owner == row and row not in self.members and not pending[row]:
                yield [row]

    def _union(self, a: int, b: int) -> int:
        if a == b:
            return a
        if len(self.members_of(a)) < len(self.members_of(b)):
            a, b = b, a
        rows_b = self.members.pop(b, None) or [b]
        for row in rows_b:
            self.owner[row] = a
        self.members.setdefault(a, [a]).extend(rows_b)
        if b in self.locked:
            self.locked[a] = self.locked.pop(b)
        return a

    def _separated(self, a: int, b: int) -> bool:
        if not self.cannot:
            return False
        rows_b = set(self.members_of(b))
        return any(self._key(x, y) in self.cannot for x in self.members_of(a) for y in rows_b)

    def join(self, i: int, j: int) -> bool:
        """A reviewer's 'same': merge unless it would put a reviewer's 'different' pair together."""
        self._seed(i, j)
        a, b = self.owner[i], self.owner[j]
        if a == b:
            return True
        if self._separated(a, b):
            log.warning(
                "reviewer decision 'same' for rows %d and %d ignored: it contradicts a 'different' decision", i, j
            )
            self.refused.append((i, j, "it contradicts a reviewer's 'different' decision", None))
            return False
        self._union(a, b)
        return True

    def try_merge(self, i: int, j: int) -> bool:
        """A machine match: merge only if every cross pair matches and no two existing groups meet."""
        self._seed(i, j)
        a, b = self.owner[i], self.owner[j]
        if a == b:
            return True
        if a in self.locked and b in self.locked and self.locked[a] != self.locked[b]:
            self.refused.append((i, j, "it would link two groups of the existing corpus", None))
            return False
        if self._separated(a, b):
            self.refused.append((i, j, "a reviewer marked a pair across the groups as different", None))
            return False
        for x in self.members_of(a):
            for y in self.members_of(b):
                if (x, y) == (i, j) or (y, x) == (i, j):
                    continue
                verdict = self.pair_verdict(x, y)
                if verdict.level < MAYBE or (verdict.level == MAYBE and verdict.doubt):
                    self.refused.append((i, j, "two of the records it would join do not match (no chaining)", (x, y)))
                    return False
        self._union(a, b)
        return True

    def labels(self) -> list[int]:
        return list(self.owner)


class Matches:
    """Matching pairs (i, j, score) in three compact arrays: a million records give about a million."""

    def __init__(self) -> None:
        self.left = array("l")
        self.right = array("l")
        self.score = array("d")

    def add(self, i: int, j: int, score: float) -> None:
        self.left.append(i)
        self.right.append(j)
        self.score.append(score)

    def __len__(self) -> int:
        return len(self.left)

    def strongest_first(self) -> Iterator[tuple[int, int]]:
        """The pairs by score (highest first), then i, then j."""
        left, right = np.frombuffer(self.left, dtype=np.int_), np.frombuffer(self.right, dtype=np.int_)
        order = np.lexsort((right, left, -np.frombuffer(self.score, dtype=np.float64)))
        return zip(left[order].tolist(), right[order].tolist(), strict=True)


def cluster(
    size: int,
    matches: Matches | Iterable[tuple[int, int, Verdict]],
    verdict: Callable[[int, int], Verdict],
    *,
    must: Iterable[tuple[int, int]] = (),
    cannot: Iterable[tuple[int, int]] = (),
    groups: ExistingGroups | Iterable[tuple[str, list[int]]] = (),
) -> Clusters:
    """Cluster `size` records from their matching pairs, strongest first.

    `groups`: existing groups kept together and never merged with each other: (name, rows) pairs, or
    ExistingGroups (made clusters only where a merge or decision touches them).
    """
    state = Clusters(size, verdict)
    state.cannot = {(min(i, j), max(i, j)) for i, j in cannot}
    state.must = {(min(i, j), max(i, j)) for i, j in must} - state.cannot
    if isinstance(groups, ExistingGroups):
        state.existing = groups
    else:
        for name, rows in groups:
            if rows:
                state.seed_group(rows, name)
    for i, j in sorted(state.must):
        state.join(i, j)
    if isinstance(matches, Matches):
        ordered: Iterable[tuple[int, int]] = matches.strongest_first()
    else:
        ordered = ((i, j) for i, j, _ in sorted(matches, key=lambda item: (-item[2].score, item[0], item[1])))
    for i, j in ordered:
        if (min(i, j), max(i, j)) not in state.cannot:
            state.try_merge(i, j)
    return state
