"""deduplicate(): records -> one row per record with its duplicate group, canonical flag and reason."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.dedupe.blocking import candidate_pairs
from pipeline.dedupe.cluster import Clusters, cluster
from pipeline.dedupe.decisions import SAME, check_decisions
from pipeline.dedupe.scoring import CONFLICT, MATCH, MAYBE, NO, Features, Verdict, compare
from pipeline.errors import ReviewError

log = logging.getLogger(__name__)

RESULT_COLUMNS = ["record_id", "id", "duplicate_group", "keep", "match_reason"]
PAIR_COLUMNS = ["record_id_a", "record_id_b", "status", "level", "score", "reason", "decision"]
PAIRS_ATTR = "dedupe_pairs"
_NO_VERDICT = Verdict(NO, 0.0, "different", "")


@dataclass(slots=True)
class _Run:
    frame: pd.DataFrame  # existing rows first, then new rows; positional index
    features: Features
    new: np.ndarray  # True for rows not in the existing corpus
    cache: dict[tuple[int, int], Verdict]

    def verdict(self, i: int, j: int) -> Verdict:
        key = (i, j) if i < j else (j, i)
        found = self.cache.get(key)
        if found is None:
            found = compare(self.features, *key)
            self.cache[key] = found
        return found


def deduplicate(
    records: pd.DataFrame, *, decisions: pd.DataFrame | None = None, existing: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Group the records that are the same work.

    Returns one row per record (existing records first when `existing` is given) with record_id, id,
    duplicate_group (the record_id of the group's first canonical record; stable for existing groups),
    keep (the group's canonical, most complete record) and match_reason (empty for singletons).
    The pairs behind the result (merges and 'maybe' pairs) are in `result.attrs['dedupe_pairs']`.
    """
    frame, new = _combine(prepare_records(records, "records"), existing)
    decided = check_decisions(decisions) if decisions is not None and len(decisions) else None
    positions = {rid: pos for pos, rid in enumerate(frame["record_id"])}
    must, cannot = _decision_pairs(decided, positions)
    groups = _existing_groups(frame, new, cannot)
    run = _Run(frame, Features(frame), new, {})
    pairs = candidate_pairs(run.features, new=None if new.all() else new)
    matches = _score(run, pairs)
    log.info("dedupe: %d records, %d candidate pairs, %d matches", len(frame), len(pairs), len(matches))
    state = cluster(len(frame), matches, run.verdict, must=must, cannot=cannot, groups=groups)
    result = _result(run, state)
    result.attrs[PAIRS_ATTR] = _pairs(run, state, result, decided)
    return result


# --- input --------------------------------------------------------------------------------


def prepare_records(records: pd.DataFrame, what: str = "records") -> pd.DataFrame:
    """A positional copy with string record_id and id columns (made from positions when missing)."""
    if not isinstance(records, pd.DataFrame):
        raise ReviewError(
            f"deduplicate needs a pandas DataFrame of {what}, not {type(records).__name__}; "
            "build it with records_to_frame."
        )
    frame = records.reset_index(drop=True).copy()
    if "id" not in frame.columns:
        log.warning("%s have no 'id' column: using their positions (1, 2, ...) as ids", what)
        frame["id"] = [str(pos) for pos in range(1, len(frame) + 1)]
    frame["id"] = [_cell(v) or str(pos) for pos, v in enumerate(frame["id"].tolist(), start=1)]
    if "record_id" not in frame.columns:
        frame["record_id"] = ""
    ids = [_cell(v) for v in frame["record_id"].tolist()]
    if not all(ids):
        prefix = "existing-" if what == "existing records" else ""
        ids = [rid or f"{prefix}row-{pos}" for pos, rid in enumerate(ids, start=1)]
    frame["record_id"] = ids
    duplicated = frame["record_id"].duplicated()
    if duplicated.any():
        example = frame.loc[duplicated.idxmax(), "record_id"]
        raise ReviewError(
            f"{int(duplicated.sum())} of the {what} repeat a record_id (e.g. {example!r}); "
            "give every record its own record_id."
        )
    return frame


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


def _combine(frame: pd.DataFrame, existing: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    if existing is None or len(existing) == 0:
        return frame, np.ones(len(frame), dtype=bool)
    old = prepare_records(existing, "existing records")
    for column in ("duplicate_group", "keep"):
        if column not in old.columns:
            raise ReviewError(
                f"The existing corpus has no {column!r} column; pass the result of an earlier deduplicate run."
            )
    old["duplicate_group"] = [_cell(v) or rid for v, rid in zip(old["duplicate_group"], old["record_id"], strict=True)]
    fresh = frame[~frame["record_id"].isin(set(old["record_id"]))]
    if len(fresh) < len(frame):
        log.info("dedupe: %d records are already in the existing corpus", len(frame) - len(fresh))
    combined = pd.concat([old, fresh], ignore_index=True, sort=False)
    new = np.zeros(len(combined), dtype=bool)
    new[len(old) :] = True
    return combined, new


def _decision_pairs(
    decided: pd.DataFrame | None, positions: dict[str, int]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    must: list[tuple[int, int]] = []
    cannot: list[tuple[int, int]] = []
    if decided is None:
        return must, cannot
    unknown = 0
    for a, b, decision in decided[["record_id_a", "record_id_b", "decision"]].itertuples(index=False):
        if a not in positions or b not in positions:
            unknown += 1
            continue
        pair = (positions[a], positions[b])
        (must if decision == SAME else cannot).append(pair)
    if unknown:
        log.info("dedupe: %d decisions name records that are not in this run (kept for later runs)", unknown)
    return must, cannot


def _existing_groups(
    frame: pd.DataFrame, new: np.ndarray, cannot: list[tuple[int, int]]
) -> list[tuple[str, list[int]]]:
    """Existing groups to keep together; a group a reviewer has since split is re-judged from scratch."""
    if new.all():
        return []
    old = frame.loc[~new]
    groups = old.groupby("duplicate_group", sort=False).indices
    group_of = frame["duplicate_group"].tolist()
    split = {group_of[i] for i, j in cannot if not new[i] and not new[j] and group_of[i] == group_of[j]}
    kept: list[tuple[str, list[int]]] = []
    for name, rows in groups.items():
        if name in split:
            new[rows] = True  # its members are compared again, like new records
        else:
            kept.append((str(name), [int(r) for r in rows]))
    return kept


# --- scoring and output -------------------------------------------------------------------


def _score(run: _Run, pairs: np.ndarray) -> list[tuple[int, int, Verdict]]:
    matches: list[tuple[int, int, Verdict]] = []
    cache = run.cache
    features = run.features
    for i, j in zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True):
        verdict = compare(features, i, j)
        if verdict.level != NO:
            cache[(i, j)] = verdict
            if verdict.level == MATCH:
                matches.append((i, j, verdict))
        else:
            cache[(i, j)] = _NO_VERDICT
    return matches


def _canonical(run: _Run, rows: list[int], keeps: list[bool]) -> int:
    """The existing canonical record if the group has one, else the most complete (then the first) record."""
    old_keep = [r for r in rows if not run.new[r] and keeps[r]]
    if old_keep:
        return min(old_keep)
    return max(rows, key=lambda r: (run.features.completeness(r), -r))


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"true", "1", "yes", "y", "t"}


def _result(run: _Run, state: Clusters) -> pd.DataFrame:
    frame = run.frame
    record_ids = frame["record_id"].tolist()
    old_groups = frame["duplicate_group"].tolist() if "duplicate_group" in frame.columns else [""] * len(frame)
    keeps = [_truthy(v) for v in frame["keep"].tolist()] if "keep" in frame.columns else [False] * len(frame)
    group = [""] * len(frame)
    keep = [False] * len(frame)
    reason = [""] * len(frame)
    for rows in state.members.values():
        rows = sorted(rows)
        canonical = _canonical(run, rows, keeps)
        old = [r for r in rows if not run.new[r]]
        # An existing group keeps its name; a new group is named after its canonical record.
        name = str(old_groups[min(old, key=lambda r: (not keeps[r], r))]) if old else record_ids[canonical]
        for row in rows:
            group[row] = name
        keep[canonical] = True
        if len(rows) > 1:
            links = {row: state.pair_verdict(row, canonical) for row in rows if row != canonical}
            for row, verdict in links.items():
                reason[row] = verdict.reason
            strongest = max(links.values(), key=lambda v: (v.level, v.score))
            reason[canonical] = f"canonical of {len(rows)} records; {strongest.reason}"
    return pd.DataFrame(
        {
            "record_id": record_ids,
            "id": frame["id"].tolist(),
            "duplicate_group": group,
            "keep": keep,
            "match_reason": reason,
        },
        columns=RESULT_COLUMNS,
    )


def _pairs(run: _Run, state: Clusters, result: pd.DataFrame, decided: pd.DataFrame | None) -> pd.DataFrame:
    """Every merge (member vs canonical) and every uncertain pair, for the duplicates sheet."""
    ids = run.frame["record_id"].tolist()
    own = run.frame["id"].tolist()  # what reviewers see in the sheet
    labels = state.labels()
    keep = result["keep"].tolist()
    canonical_of = {labels[r]: r for r in range(len(labels)) if keep[r]}
    rows: list[tuple[str, str, str, str, float, str]] = []
    for r in range(len(labels)):
        c = canonical_of.get(labels[r], r)
        if c != r:
            v = state.pair_verdict(r, c)
            rows.append((ids[c], ids[r], "merged", _level(v), round(v.score, 3), v.reason))
    shown: set[tuple[int, int]] = set()
    for i, j, why, blocker in state.refused:
        key = (min(i, j), max(i, j))
        if labels[i] != labels[j] and key not in shown:
            v = state.pair_verdict(*key)
            if blocker is not None:
                why = f"{why}: {own[blocker[0]]} vs {own[blocker[1]]}"
            rows.append(
                (ids[key[0]], ids[key[1]], "maybe", _level(v), round(v.score, 3), f"{v.reason} (not merged: {why})")
            )
            shown.add(key)
    for (i, j), v in run.cache.items():
        if labels[i] == labels[j] or v.level < MAYBE or (i, j) in shown:
            continue
        rows.append((ids[i], ids[j], "maybe", _level(v), round(v.score, 3), v.reason))
    pairs = pd.DataFrame(rows, columns=PAIR_COLUMNS[:-1]).drop_duplicates(["record_id_a", "record_id_b", "status"])
    pairs["decision"] = _known_decisions(pairs, decided)
    return pairs.reset_index(drop=True)


def _level(verdict: Verdict) -> str:
    return {MATCH: "match", MAYBE: "maybe", NO: "no", CONFLICT: "conflict"}[verdict.level]


def _known_decisions(pairs: pd.DataFrame, decided: pd.DataFrame | None) -> list[str]:
    if decided is None or decided.empty or pairs.empty:
        return [""] * len(pairs)
    lookup: dict[frozenset[str], str] = {}
    for a, b, decision in decided[["record_id_a", "record_id_b", "decision"]].itertuples(index=False):
        lookup[frozenset((a, b))] = decision
    return [lookup.get(frozenset((a, b)), "") for a, b in zip(pairs["record_id_a"], pairs["record_id_b"], strict=True)]


__all__ = ["PAIRS_ATTR", "RESULT_COLUMNS", "deduplicate", "prepare_records"]
