"""The result of a dedupe run: one row per record, the pairs sheet, and the links an index keeps.

Existing groups no merge or decision touched (incremental runs) are copied as arrays from what the index
kept of them: only the clusters this run formed or changed are walked in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain, repeat

import numpy as np
import pandas as pd

from pipeline.dedupe.cluster import Clusters
from pipeline.dedupe.index import NO_LINK, Links
from pipeline.dedupe.scoring import CONFLICT, MATCH, MAYBE, NO, Verdict

RESULT_COLUMNS = ["record_id", "id", "duplicate_group", "keep", "match_reason"]
PAIR_COLUMNS = ["record_id_a", "record_id_b", "status", "level", "score", "reason", "decision"]


@dataclass(slots=True)
class Outcome:
    """What the clustering decided, and what the run knows of the existing rows."""

    state: Clusters
    ids: list[str]  # record_id of every row
    own: pd.Series  # the records' own ids, as reviewers see them
    new: np.ndarray  # rows judged in this run (new records, members of split groups)
    old_groups: np.ndarray  # existing group name of each existing row (object array)
    keeps: np.ndarray  # the existing canonical flags, False for new rows
    kept: Links | None  # the index's links of the existing rows
    valid: np.ndarray  # existing rows whose kept link still holds (same group and flag, nothing changed)
    completeness: Callable[[int], float]


@dataclass(slots=True)
class Assembled:
    result: pd.DataFrame
    level: np.ndarray  # each row's link to its canonical record (NO_LINK for canonical rows)
    score: np.ndarray
    canonical: np.ndarray  # the canonical row of each row's group
    # The result's duplicate_group and match_reason as the Python strings they were made from (the group names
    # are the record ids' own objects): the index keeps these, not a second copy read back from the frame.
    group: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    reason: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))


def assemble(out: Outcome) -> Assembled:
    size = len(out.ids)
    group = np.empty(size, dtype=object)
    keep = np.zeros(size, dtype=bool)
    reason = np.full(size, "", dtype=object)
    done = Assembled(pd.DataFrame(), np.full(size, NO_LINK, dtype=np.int8), np.zeros(size), np.arange(size))
    frozen = _copy_frozen_groups(out, group, keep, reason, done)
    for rows in _clusters(out, frozen):
        _judge_cluster(out, rows, group, keep, reason, done)
    columns = {"record_id": out.ids, "id": out.own, "duplicate_group": group.tolist(), "keep": keep.tolist()}
    done.result = pd.DataFrame({**columns, "match_reason": reason.tolist()}, columns=RESULT_COLUMNS)
    done.group, done.reason = group, reason
    return done


def _copy_frozen_groups(
    out: Outcome, group: np.ndarray, keep: np.ndarray, reason: np.ndarray, done: Assembled
) -> np.ndarray:
    """Existing groups no merge touched whose kept links all hold: their rows as the index kept them.
    Returns which existing groups were copied."""
    existing = out.state.existing
    if existing is None or out.kept is None:
        return np.zeros(0, dtype=bool)
    code = existing.code
    count = len(existing.names)
    broken = np.bincount(code, weights=(~out.valid[: len(code)]).astype(float), minlength=count) > 0
    one_keep = np.bincount(code, weights=out.keeps[: len(code)].astype(float), minlength=count) == 1
    frozen = existing.pending() & ~broken & one_keep
    rows = np.flatnonzero(frozen[code])
    group[rows] = out.old_groups[rows]
    keep[rows] = out.keeps[rows]
    reason[rows] = np.asarray(out.kept.reason, dtype=object)[rows]
    done.level[rows] = out.kept.level[rows]
    done.score[rows] = out.kept.score[rows]
    canonical_of_group = np.zeros(len(existing.names), dtype=np.int64)
    keepers = rows[out.keeps[rows]]
    canonical_of_group[code[keepers]] = keepers
    done.canonical[rows] = canonical_of_group[code[rows]]
    return frozen


def _clusters(out: Outcome, frozen: np.ndarray) -> Iterator[list[int]]:
    """Every cluster to judge: those the clustering formed, and untouched groups whose links did not hold."""
    state = out.state
    existing = state.existing
    if existing is None:
        return state.clusters()
    stale = existing.pending() & ~(frozen if len(frozen) else np.zeros(len(existing.names), dtype=bool))
    return chain(state.clusters(), (existing.rows(g) for g in np.flatnonzero(stale).tolist()))


def _judge_cluster(
    out: Outcome, rows: list[int], group: np.ndarray, keep: np.ndarray, reason: np.ndarray, done: Assembled
) -> None:
    if len(rows) == 1:  # most records: no comparison needed
        row = rows[0]
        group[row] = out.ids[row] if out.new[row] else str(out.old_groups[row])
        keep[row] = True
        return
    rows = sorted(rows)
    canonical = _canonical(out, rows)
    old = [r for r in rows if not out.new[r]]
    # An existing group keeps its name; a new group is named after its canonical record.
    name = str(out.old_groups[min(old, key=lambda r: (not out.keeps[r], r))]) if old else out.ids[canonical]
    group[rows] = name
    keep[canonical] = True
    done.canonical[rows] = canonical
    verdicts = {row: _link(out, row, canonical) for row in rows if row != canonical}
    for row, verdict in verdicts.items():
        reason[row] = verdict.reason
        done.level[row], done.score[row] = verdict.level, verdict.score
    strongest = max(verdicts.values(), key=lambda v: (v.level, v.score))
    reason[canonical] = f"canonical of {len(rows)} records; {strongest.reason}"


def _canonical(out: Outcome, rows: list[int]) -> int:
    """The existing canonical record if the group has one, else the most complete (then the first) record."""
    old_keep = [r for r in rows if not out.new[r] and out.keeps[r]]
    if old_keep:
        return min(old_keep)
    return max(rows, key=lambda r: (out.completeness(r), -r))


def _link(out: Outcome, row: int, canonical: int) -> Verdict:
    """The verdict linking row to its group's canonical record: the index's, when neither record changed."""
    kept = out.kept
    if (
        kept is not None
        and out.valid[row]
        and out.valid[canonical]
        and out.old_groups[row] == out.old_groups[canonical]
        and kept.level[row] != NO_LINK
    ):
        # Verdict(level, score, rule=reason) reads back as the same level, score and reason.
        return Verdict(int(kept.level[row]), float(kept.score[row]), kept.reason[row], "")
    return out.state.pair_verdict(row, canonical)


def pairs_sheet(out: Outcome, done: Assembled, cache: dict[int, Verdict], decided: pd.DataFrame | None) -> pd.DataFrame:
    """Every merge (member vs canonical) and every uncertain pair, for the duplicates sheet."""
    ids, state, size = out.ids, out.state, len(out.ids)
    merged = np.flatnonzero(done.level != NO_LINK)
    record_ids = np.asarray(ids, dtype=object)
    rows: list[tuple[str, str, str, str, float, str]] = list(
        zip(
            record_ids[done.canonical[merged]].tolist(),
            record_ids[merged].tolist(),
            repeat("merged"),
            [_level(level) for level in done.level[merged].tolist()],
            [round(score, 3) for score in done.score[merged].tolist()],
            done.result["match_reason"].to_numpy(dtype=object)[merged].tolist(),
        )
    )
    shown: set[tuple[int, int]] = set()
    for i, j, why, blocker in state.refused:
        key = (min(i, j), max(i, j))
        if state.label(i) != state.label(j) and key not in shown:
            v = state.pair_verdict(*key)
            if blocker is not None:
                why = f"{why}: {out.own.iloc[blocker[0]]} vs {out.own.iloc[blocker[1]]}"
            rows.append(
                (ids[key[0]], ids[key[1]], "maybe", _level(v), round(v.score, 3), f"{v.reason} (not merged: {why})")
            )
            shown.add(key)
    for code, v in cache.items():
        i, j = divmod(code, size)
        if v.level < MAYBE or state.label(i) == state.label(j) or (i, j) in shown:
            continue
        rows.append((ids[i], ids[j], "maybe", _level(v), round(v.score, 3), v.reason))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS[:-1]).drop_duplicates(["record_id_a", "record_id_b", "status"])
    pairs["decision"] = _known_decisions(pairs, decided)
    return pairs.reset_index(drop=True)


def kept_links(done: Assembled) -> Links:
    """What an index keeps of this result for the next run."""
    return Links(
        done.group.tolist(),
        done.result["keep"].to_numpy(dtype=bool),
        done.level,
        done.score,
        done.reason.tolist(),
    )


def _level(verdict: Verdict | int) -> str:
    level = verdict if isinstance(verdict, int) else verdict.level
    return {MATCH: "match", MAYBE: "maybe", NO: "no", CONFLICT: "conflict"}[level]


def _known_decisions(pairs: pd.DataFrame, decided: pd.DataFrame | None) -> list[str]:
    if decided is None or decided.empty or pairs.empty:
        return [""] * len(pairs)
    lookup: dict[frozenset[str], str] = {}
    for a, b, decision in decided[["record_id_a", "record_id_b", "decision"]].itertuples(index=False):
        lookup[frozenset((a, b))] = decision
    return [lookup.get(frozenset((a, b)), "") for a, b in zip(pairs["record_id_a"], pairs["record_id_b"], strict=True)]


__all__ = ["PAIR_COLUMNS", "RESULT_COLUMNS", "Assembled", "Outcome", "assemble", "kept_links", "pairs_sheet"]
