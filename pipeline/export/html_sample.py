"""The sampled evidence map (pipeline.export.html_map, for reviews of more than FULL_MAP_MAX_STUDIES studies):
which studies the page embeds, and every count the page shows, computed for all the studies.

Which studies: for each code, the first `per_cell` studies (in matrix order: oldest first, then title, then id) of
its 'All' cell and of each of its cells in each facet; the page embeds those (study, code) pairs with all their
quotes. Deterministic, and bounded by per_cell x codes x (facet values + 1) whatever the number of studies.

The counts: the page's filters choose a method (rule / topic / reviewer, or any) and a direction (supporting /
contrasting / mixed, or any) and count, per cell, the studies with at least one assignment that passes both. Each
(code, study) gets a 12-bit mask of the (method, direction) pairs it has; a filter is a mask too, and a study counts
when the two overlap. The totals line also depends on the category filter. Search cannot be counted ahead: it
searches the quotes the page holds (the page says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.synth import DIRECTIONS, FACETS, METHODS, Matrix

_LEVELS = len(DIRECTIONS) + 1  # direction codes: 0 = none, then DIRECTIONS (pipeline.synth)


@dataclass(frozen=True)
class Sample:
    """The rows a sampled map embeds, in matrix order."""

    per_cell: int
    study_ranks: np.ndarray  # display positions of the embedded studies
    long_rows: np.ndarray  # long-form positions of the embedded quotes

    def data(self, matrix: Matrix, long_csv: str) -> dict[str, Any]:
        """The 'sample' entry of the page's data: counts for every study, and what the page says about the rest."""
        rows = matrix.code_rows()
        rows = rows[rows["code"] < len(matrix.codes)]
        pairs = _pair_masks(rows)
        counts = {facet: _facet_counts(matrix, pairs, facet) for facet in FACETS}
        return {
            "per_cell": self.per_cell,
            "studies": matrix.n_studies,
            "csv": long_csv,
            "counts": counts,
            "all": _all_counts(pairs),
            "totals": _totals(matrix, rows),
            "note": _note(matrix, self, long_csv),
        }


def sample_rows(matrix: Matrix, per_cell: int) -> Sample:
    """The first `per_cell` studies of every cell (each facet's and the 'All' column), with their quotes."""
    rows = matrix.code_rows()
    rows = rows[rows["code"] < len(matrix.codes)]
    pairs = rows[["code", "study"]].drop_duplicates().sort_values(["code", "study"], kind="stable")
    chosen = [pairs.groupby("code", sort=False).head(per_cell)]
    for facet in FACETS:
        cells = pairs.merge(matrix.facet_pairs(facet), on="study").sort_values(["code", "value", "study"],
                                                                                kind="stable")
        chosen.append(cells.groupby(["code", "value"], sort=False).head(per_cell)[["code", "study"]])
    picked = pd.concat(chosen, ignore_index=True).drop_duplicates()
    keys = rows["study"].to_numpy() * (len(matrix.codes) + 1) + rows["code"].to_numpy()
    wanted = picked["study"].to_numpy() * (len(matrix.codes) + 1) + picked["code"].to_numpy()
    long_rows = rows.index.to_numpy()[np.isin(keys, wanted)]
    return Sample(per_cell, np.unique(picked["study"].to_numpy()), np.sort(long_rows))


def combo_key(method: str, direction: str) -> str:
    """How the page names a choice of filters: 'rule|supporting', '|mixed', 'reviewer|', '|' (no filter)."""
    return f"{method}|{direction}"


def _combos() -> list[tuple[str, int]]:
    """(key, mask of the (method, direction) bits that pass) for every choice of the two filters."""
    combos = []
    for m_name, methods in [("", range(len(METHODS)))] + [(m, [i]) for i, m in enumerate(METHODS)]:
        for d_name, directions in [("", range(_LEVELS))] + [(d, [i + 1]) for i, d in enumerate(DIRECTIONS)]:
            mask = 0
            for m in methods:
                for d in directions:
                    mask |= 1 << (m * _LEVELS + d)
            combos.append((combo_key(m_name, d_name), mask))
    return combos


def _bits(rows: pd.DataFrame) -> np.ndarray:
    """Each assignment's (method, direction) pair as one bit."""
    return np.left_shift(1, rows["method"].to_numpy(np.int64) * _LEVELS + rows["direction"].to_numpy(np.int64))


def _runs(key: np.ndarray) -> np.ndarray:
    """Where each run of equal keys starts (the long form is sorted by study, then code)."""
    if not len(key):
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, key[1:] != key[:-1]])


def _pair_masks(rows: pd.DataFrame) -> pd.DataFrame:
    """(code, study, mask): the (method, direction) pairs each study's assignments of a code have."""
    code, study = rows["code"].to_numpy(), rows["study"].to_numpy()
    starts = _runs(study * (int(code.max(initial=0)) + 1) + code)
    mask = np.bitwise_or.reduceat(_bits(rows), starts) if len(starts) else np.empty(0, dtype=np.int64)
    return pd.DataFrame({"code": code[starts], "study": study[starts], "mask": mask})


def _facet_counts(matrix: Matrix, pairs: pd.DataFrame, facet: str) -> dict[str, list[list[int]]]:
    """For each filter choice: [code, value index, studies] for every non-empty cell of the facet."""
    values = list(matrix.facet_values.get(facet, []))
    joined = pairs.merge(matrix.facet_pairs(facet), on="study")
    value_index = joined["value"].to_numpy()
    keep = value_index >= 0
    cell = joined["code"].to_numpy()[keep] * max(1, len(values)) + value_index[keep]
    masks = joined["mask"].to_numpy()[keep]
    out = {}
    for key, mask in _combos():
        counts = np.bincount(cell, weights=(masks & mask) != 0, minlength=len(matrix.codes) * max(1, len(values)))
        found = np.flatnonzero(counts)
        out[key] = [[int(i // len(values)), int(i % len(values)), int(counts[i])] for i in found]
    return out


def _all_counts(pairs: pd.DataFrame) -> dict[str, list[list[int]]]:
    """For each filter choice: [code, studies] for the 'All' column."""
    out = {}
    for key, mask in _combos():
        passing = pairs.loc[(pairs["mask"].to_numpy() & mask) != 0, "code"]
        counts = passing.value_counts().sort_index()
        out[key] = [[int(code), int(n)] for code, n in counts.items()]
    return out


def _totals(matrix: Matrix, rows: pd.DataFrame) -> dict[str, list[int]]:
    """For each category choice ('' = all) and filter choice: [assignments, studies] that pass them."""
    category_of = matrix.codes["category"].to_numpy(dtype=object)[rows["code"].to_numpy()]
    bits, study = _bits(rows), rows["study"].to_numpy()
    out = {}
    for category in [""] + list(dict.fromkeys(matrix.codes["category"])):
        chosen = np.ones(len(rows), dtype=bool) if not category else category_of == category
        starts = _runs(study[chosen])
        per_study = np.bitwise_or.reduceat(bits[chosen], starts) if len(starts) else np.empty(0, dtype=np.int64)
        for key, mask in _combos():
            n_rows = int(((bits[chosen] & mask) != 0).sum())
            n_studies = int(((per_study & mask) != 0).sum())
            out[f"{category}|{key}"] = [n_rows, n_studies]
    return out


def _note(matrix: Matrix, sample: Sample, long_csv: str) -> str:
    return (
        f"{matrix.n_studies:,} studies are too many for one page: the heatmap counts every study, but a cell lists "
        f"only its first {sample.per_cell} studies (oldest first) with their quotes; this page holds "
        f"{len(sample.study_ranks):,} studies and {len(sample.long_rows):,} of the {matrix.n_assignments:,} code "
        f"assignments, and no abstracts. {long_csv} has every study and quote (the Studies sheet of "
        "evidence_matrix.xlsx has the abstracts). Search looks only at the quotes this page holds."
    )
