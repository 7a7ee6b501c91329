"""Clustering without chaining (complete linkage over the pairwise verdicts).

Two clusters merge only when EVERY record of one matches EVERY record of the other, or lacks only
some evidence to (a 'maybe' without doubt: a typo too many, a missing page): a record that looks like
two different papers cannot pull them together. Reviewer decisions come first: a 'same'
pair is merged whatever the machine says, a 'different' pair is never in one cluster. Groups of an
existing corpus are never merged with each other by the machine (incremental mode).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pipeline.dedupe.scoring import MATCH, MAYBE, Verdict

log = logging.getLogger(__name__)

REVIEWER_SAME = Verdict(MATCH, 1.0, "reviewer", "decision=same")


@dataclass(slots=True)
class Clusters:
    """Union of records into clusters, with the complete-linkage check on every merge."""

    size: int
    verdict: Callable[[int, int], Verdict]
    cannot: set[tuple[int, int]] = field(default_factory=set)
    must: set[tuple[int, int]] = field(default_factory=set)
    owner: list[int] = field(init=False)
    members: dict[int, list[int]] = field(init=False)
    locked: dict[int, str] = field(init=False)  # cluster -> existing group it holds
    # Matched pairs left apart: (i, j, why, the pair of rows that stood in the way or None).
    refused: list[tuple[int, int, str, tuple[int, int] | None]] = field(init=False)

    def __post_init__(self) -> None:
        self.owner = list(range(self.size))
        self.members = {i: [i] for i in range(self.size)}
        self.locked = {}
        self.refused = []

    def _key(self, i: int, j: int) -> tuple[int, int]:
        return (i, j) if i < j else (j, i)

    def pair_verdict(self, i: int, j: int) -> Verdict:
        key = self._key(i, j)
        if key in self.must:
            return REVIEWER_SAME
        return self.verdict(*key)

    def seed_group(self, rows: list[int], group: str) -> None:
        """Put the records of one existing group together, unchecked (they were judged before)."""
        target = self.owner[rows[0]]
        for row in rows[1:]:
            self._union(target, self.owner[row])
        self.locked[self.owner[rows[0]]] = group

    def _union(self, a: int, b: int) -> int:
        if a == b:
            return a
        if len(self.members[a]) < len(self.members[b]):
            a, b = b, a
        for row in self.members[b]:
            self.owner[row] = a
        self.members[a].extend(self.members.pop(b))
        if b in self.locked:
            self.locked[a] = self.locked.pop(b)
        return a

    def _separated(self, a: int, b: int) -> bool:
        rows_b = set(self.members[b])
        return any(self._key(x, y) in self.cannot for x in self.members[a] for y in rows_b)

    def join(self, i: int, j: int) -> bool:
        """A reviewer's 'same': merge unless it would put a reviewer's 'different' pair together."""
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
        a, b = self.owner[i], self.owner[j]
        if a == b:
            return True
        if a in self.locked and b in self.locked and self.locked[a] != self.locked[b]:
            self.refused.append((i, j, "it would link two groups of the existing corpus", None))
            return False
        if self._separated(a, b):
            self.refused.append((i, j, "a reviewer marked a pair across the groups as different", None))
            return False
        for x in self.members[a]:
            for y in self.members[b]:
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


def cluster(
    size: int,
    matches: Iterable[tuple[int, int, Verdict]],
    verdict: Callable[[int, int], Verdict],
    *,
    must: Iterable[tuple[int, int]] = (),
    cannot: Iterable[tuple[int, int]] = (),
    groups: Iterable[tuple[str, list[int]]] = (),
) -> Clusters:
    """Cluster `size` records from their matching pairs, strongest first.

    `groups`: existing groups (name, rows) kept together and never merged with each other.
    """
    state = Clusters(size, verdict)
    state.cannot = {(min(i, j), max(i, j)) for i, j in cannot}
    state.must = {(min(i, j), max(i, j)) for i, j in must} - state.cannot
    for name, rows in groups:
        if rows:
            state.seed_group(rows, name)
    for i, j in sorted(state.must):
        state.join(i, j)
    ordered = sorted(matches, key=lambda item: (-item[2].score, item[0], item[1]))
    for i, j, _ in ordered:
        if (min(i, j), max(i, j)) not in state.cannot:
            state.try_merge(i, j)
    return state
