"""deduplicate(): records -> one row per record with its duplicate group, canonical flag and reason."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.dedupe.assemble import RESULT_COLUMNS, Outcome, assemble, kept_links, pairs_sheet
from pipeline.dedupe.blocking import BlockKeys, CandidatePairs
from pipeline.dedupe.cluster import Clusters, ExistingGroups, Matches, cluster
from pipeline.dedupe.decisions import SAME, check_decisions
from pipeline.dedupe.features import FEATURE_COLUMNS, FEATURE_INPUTS, Features
from pipeline.dedupe.index import DedupeIndex, Links, paused_gc
from pipeline.dedupe.normalise import clear_record_caches
from pipeline.dedupe.scoring import MATCH, MAYBE, NO, Verdict, compare
from pipeline.errors import ReviewError

log = logging.getLogger(__name__)

PAIRS_ATTR = "dedupe_pairs"
_NO_VERDICT = Verdict(NO, 0.0, "different", "")
_GROUP_COLUMNS = ["duplicate_group", "keep"]


@dataclass(slots=True)
class _Corpus:
    """Features and blocking keys of every row, and what an index kept of the existing rows."""

    features: Features
    keys: BlockKeys
    changed: list[int]  # existing rows whose DOI features the new records changed
    links: Links | None  # the index's links of the existing rows (None: recompute them)


@dataclass(slots=True)
class _Run:
    features: Features
    candidates: CandidatePairs
    # Verdicts of MAYBE or better, and those looked up since, by pair code i * size + j (i < j).
    cache: dict[int, Verdict]

    def verdict(self, i: int, j: int) -> Verdict:
        if i > j:
            i, j = j, i
        code = i * self.features.size + j
        found = self.cache.get(code)
        if found is None:
            # Candidate pairs judged NO were not kept (most pairs are): their verdict reads as plain 'different'.
            found = compare(self.features, i, j)
            if found.level == NO and self.candidates.contains(i, j):
                found = _NO_VERDICT
            self.cache[code] = found
        return found


def deduplicate(
    records: pd.DataFrame,
    *,
    decisions: pd.DataFrame | None = None,
    existing: pd.DataFrame | None = None,
    index: DedupeIndex | None = None,
) -> pd.DataFrame:
    """Group the records that are the same work.

    Returns one row per record (existing records first when `existing` is given) with record_id, id,
    duplicate_group (the record_id of the group's first canonical record; stable for existing groups),
    keep (the group's canonical, most complete record) and match_reason (empty for singletons).
    The pairs behind the result (merges and 'maybe' pairs) are in `result.attrs['dedupe_pairs']`.

    `index` (a DedupeIndex, possibly empty) makes runs incremental: when it describes exactly the `existing`
    records, `existing` needs only record_id, id, duplicate_group and keep, only the new records' features
    are computed and only pairs touching them compared. Otherwise it is rebuilt from `existing`'s fields.
    Either way it is updated in place to describe every record of the result.
    """
    with paused_gc():
        return _deduplicate(records, decisions, existing, index)


def _deduplicate(
    records: pd.DataFrame,
    decisions: pd.DataFrame | None,
    existing: pd.DataFrame | None,
    index: DedupeIndex | None,
) -> pd.DataFrame:
    fresh = prepare_records(records, "records", columns=FEATURE_INPUTS)
    old = _prepare_existing(existing)
    if old is not None:
        fresh = _only_new(fresh, old)
    decided = check_decisions(decisions) if decisions is not None and len(decisions) else None
    corpus = _corpus(fresh, old, index)
    clear_record_caches()
    frame, new = _combine(fresh, old)
    ids = frame["record_id"].tolist()
    must, cannot = _decision_pairs(decided, ids)
    groups = _existing_groups(frame, new, cannot)
    candidates = CandidatePairs(corpus.keys, None if new.all() else new)
    run = _Run(corpus.features, candidates, {})
    matches = _score(run)
    log.info("dedupe: %d records, %d candidate pairs, %d matches", len(frame), candidates.count, len(matches))
    state = cluster(len(frame), matches, run.verdict, must=must, cannot=cannot, groups=groups or ())
    del matches  # in the clusters now
    out = _outcome(state, frame, ids, new, old, corpus, must)
    done = assemble(out)
    result = done.result
    result.attrs[PAIRS_ATTR] = pairs_sheet(out, done, run.cache, decided)
    run.cache.clear()  # every verdict shown is in the pairs now: the index's links are made without them
    if index is not None:
        index.assign(ids, corpus.features, corpus.keys, kept_links(done))
    return result


def _outcome(
    state: Clusters,
    frame: pd.DataFrame,
    ids: list[str],
    new: np.ndarray,
    old: pd.DataFrame | None,
    corpus: _Corpus,
    must: list[tuple[int, int]],
) -> Outcome:
    size = len(frame)
    old_groups = np.full(size, "", dtype=object)
    keeps = np.zeros(size, dtype=bool)
    if old is not None:
        old_groups[: len(old)] = old["duplicate_group"].tolist()
        keeps[: len(old)] = _flags(old["keep"])
    valid = _valid_links(corpus, old_groups, keeps, new, must)
    return Outcome(state, ids, frame["id"], new, old_groups, keeps, corpus.links, valid, corpus.features.completeness)


def _valid_links(
    corpus: _Corpus, old_groups: np.ndarray, keeps: np.ndarray, new: np.ndarray, must: list[tuple[int, int]]
) -> np.ndarray:
    """Existing rows whose link to their canonical record, as the index kept it, this run cannot have changed:
    same group (of the same size) and canonical flag as then, no feature changed, no reviewer 'same' on the row."""
    valid = np.zeros(len(old_groups), dtype=bool)
    links = corpus.links
    if links is None:
        return valid
    n = len(links.group)
    stored = np.asarray(links.group, dtype=object)
    valid[:n] = (stored == old_groups[:n]) & (links.keep == keeps[:n]) & ~new[:n]
    valid[:n] &= _group_sizes(stored) == _group_sizes(old_groups[:n])
    touched = [r for r in {*corpus.changed, *(r for pair in must for r in pair)} if r < n]
    valid[touched] = False
    return valid


def _group_sizes(names: np.ndarray) -> np.ndarray:
    codes = pd.factorize(names)[0]
    return np.bincount(codes)[codes] if len(codes) else codes


def _flags(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column.dtype) and not column.isna().any():
        return column.to_numpy(dtype=bool)
    return np.fromiter((_truthy(v) for v in column.tolist()), dtype=bool, count=len(column))


# --- input --------------------------------------------------------------------------------


def prepare_records(records: pd.DataFrame, what: str = "records", columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A positional copy with string record_id and id columns (made from positions when missing).

    `columns`: keep only these (those present) besides record_id and id; a million records need no more.
    """
    if not isinstance(records, pd.DataFrame):
        raise ReviewError(
            f"deduplicate needs a pandas DataFrame of {what}, not {type(records).__name__}; "
            "build it with records_to_frame."
        )
    if columns is not None:
        wanted = ["record_id", "id", *columns]
        records = records[[c for c in dict.fromkeys(wanted) if c in records.columns]]
    frame = records.reset_index(drop=True).copy()
    if "id" not in frame.columns:
        log.warning("%s have no 'id' column: using their positions (1, 2, ...) as ids", what)
        frame["id"] = [str(pos) for pos in range(1, len(frame) + 1)]
    frame["id"] = [v or str(pos) for pos, v in enumerate(_cells(frame["id"]), start=1)]
    if "record_id" not in frame.columns:
        frame["record_id"] = ""
    ids = _cells(frame["record_id"])
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


def _cells(column: pd.Series) -> list[str]:
    """The column's values as stripped strings ('' for missing ones)."""
    if pd.api.types.is_string_dtype(column.dtype) and column.dtype != object:
        return [v.strip() for v in column.fillna("").tolist()]
    return [_cell(v) for v in column.tolist()]


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return ""
    return str(value).strip()


def _prepare_existing(existing: pd.DataFrame | None) -> pd.DataFrame | None:
    if existing is None or len(existing) == 0:
        return None
    old = prepare_records(existing, "existing records", columns=[*_GROUP_COLUMNS, *FEATURE_INPUTS])
    for column in _GROUP_COLUMNS:
        if column not in old.columns:
            raise ReviewError(
                f"The existing corpus has no {column!r} column; pass the result of an earlier deduplicate run."
            )
    ids = old["record_id"].tolist()
    old["duplicate_group"] = [v or rid for v, rid in zip(_cells(old["duplicate_group"]), ids, strict=True)]
    return old


def _only_new(fresh: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """The records that are not in the existing corpus already."""
    known = set(old["record_id"].tolist())
    keep = np.fromiter((rid not in known for rid in fresh["record_id"].tolist()), dtype=bool, count=len(fresh))
    if not keep.all():
        log.info("dedupe: %d records are already in the existing corpus", int((~keep).sum()))
        fresh = fresh[keep].reset_index(drop=True)
    return fresh


def _combine(fresh: pd.DataFrame, old: pd.DataFrame | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The ids (and existing groups) of every row, existing rows first; and which rows are new."""
    ids = ["record_id", "id"]
    if old is None:
        return fresh[ids], np.ones(len(fresh), dtype=bool)
    combined = pd.concat([old[ids + _GROUP_COLUMNS], fresh[ids]], ignore_index=True, sort=False)
    new = np.zeros(len(combined), dtype=bool)
    new[len(old) :] = True
    return combined, new


def _corpus(fresh: pd.DataFrame, old: pd.DataFrame | None, index: DedupeIndex | None) -> _Corpus:
    """Features and keys of existing + new rows: from the index when it describes the existing records."""
    old_ids = old["record_id"].tolist() if old is not None else []
    if index is not None and old is not None and index.size and index.covers(old_ids):
        index.reorder(old_ids)
        features, keys = index.features, index.keys
        start = features.size
        changed = features.extend(fresh)
        keys.extend(features, start, changed)
        log.info("dedupe: index of %d existing records used; features computed for %d new ones", start, len(fresh))
        return _Corpus(features, keys, changed, index.links)
    if old is None:
        features = Features(fresh)
        return _Corpus(features, BlockKeys.build(features), [], None)
    if not any(column in old.columns for column in FEATURE_COLUMNS):
        problem = (
            "has no fields to compare"
            if index is None
            else "has only ids and groups, and the index does not describe it"
        )
        raise ReviewError(
            f"The existing corpus {problem}; pass its records' fields ({', '.join(FEATURE_COLUMNS)}) as well."
        )
    if index is not None and index.size:
        log.warning("dedupe index does not describe the %d existing records: rebuilding it from their fields", len(old))
    features = Features(old)
    features.extend(fresh)
    return _Corpus(features, BlockKeys.build(features), [], None)


def _decision_pairs(
    decided: pd.DataFrame | None, ids: list[str]
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    must: list[tuple[int, int]] = []
    cannot: list[tuple[int, int]] = []
    if decided is None:
        return must, cannot
    positions = {rid: pos for pos, rid in enumerate(ids)}
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


def _existing_groups(frame: pd.DataFrame, new: np.ndarray, cannot: list[tuple[int, int]]) -> ExistingGroups | None:
    """Existing groups to keep together; a group a reviewer has since split is re-judged from scratch."""
    if new.all():
        return None
    count = int((~new).sum())  # the existing rows come first
    code, names = pd.factorize(frame["duplicate_group"].iloc[:count].to_numpy(dtype=object))
    active = np.ones(len(names), dtype=bool)
    for i, j in cannot:
        if i < count and j < count and code[i] == code[j]:
            active[code[i]] = False
    split = ~active[code]
    new[:count] |= split  # its members are compared again, like new records
    return ExistingGroups([str(name) for name in names], code.astype(np.int64), active)


# --- scoring and output -------------------------------------------------------------------


def _score(run: _Run) -> Matches:
    """Compare every candidate pair; keep the verdicts of MAYBE or better (the rest are recomputed if needed)."""
    matches = Matches()
    cache = run.cache
    features = run.features
    shared: dict[Verdict, Verdict] = {}  # equal verdicts share one object: a few thousand for 100,000 records
    for chunk in run.candidates.chunks():
        for code, (i, j) in zip(chunk.tolist(), run.candidates.decode(chunk), strict=True):
            verdict = compare(features, i, j)
            if verdict.level >= MAYBE:
                cache[code] = verdict = shared.setdefault(verdict, verdict)
                if verdict.level == MATCH:
                    matches.add(i, j, verdict.score)
    return matches


def _truthy(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"true", "1", "yes", "y", "t"}


__all__ = ["PAIRS_ATTR", "RESULT_COLUMNS", "deduplicate", "prepare_records"]
