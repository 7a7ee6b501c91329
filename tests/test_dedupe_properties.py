"""Properties of the dedupe stage that must hold for any input (hypothesis), built from real records."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.dedupe import deduplicate
from pipeline.dedupe import normalise as nz
from pipeline.dedupe.engine import prepare_records
from pipeline.dedupe.scoring import MATCH, MAYBE, Features, compare

DATA = Path(__file__).parent / "data" / "dedupe"
# Traps (notices, generic titles) and versions of one work (meeting abstracts, retitled, republished).
_FILES = ("trap_records.csv", "version_records.csv")
_TRAPS = pd.concat(
    [pd.read_csv(DATA / name, dtype=str, keep_default_na=False) for name in _FILES], ignore_index=True
).fillna("")
POOL = [
    {
        "title": row["title"],
        "authors": "; ".join(a.strip() for a in row["author"].split(" and ") if a.strip()),
        "year": int(row["year"]) if row["year"].isdigit() else None,
        "venue": row["journal"] or row["booktitle"],
        "volume": row["volume"],
        "issue": row["number"],
        "pages": row["pages"],
        "doi": row["doi"],
        "abstract": row["abstract"],
    }
    for row in _TRAPS.to_dict("records")
]
SETTINGS = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
TEXT_SETTINGS = settings(max_examples=200, database=None)


@st.composite
def record(draw: st.DrawFn) -> dict[str, object]:
    """A real record, sometimes damaged the way exports damage records."""
    row = dict(draw(st.sampled_from(POOL)))
    if draw(st.booleans()):
        row["title"] = str(row["title"]).upper()
    if draw(st.integers(0, 3)) == 0:
        row["doi"] = ""
    if draw(st.integers(0, 3)) == 0:
        row["pages"] = ""
    if draw(st.integers(0, 5)) == 0:
        row["title"] = ""
    if draw(st.integers(0, 5)) == 0:
        row["year"] = None
    return row


def frame_of(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    frame["id"] = [f"x{n}" for n in range(len(frame))]
    frame["record_id"] = [f"r{n}" for n in range(len(frame))]
    frame["year"] = pd.array(frame["year"], dtype="Int64")
    return frame


@TEXT_SETTINGS
@given(st.text(max_size=80))
def test_doi_normalisation_is_idempotent(raw: str) -> None:
    once = nz.normalise_doi(raw)
    assert nz.normalise_doi(once) == once
    assert once == "" or once.startswith("10.")


@TEXT_SETTINGS
@given(st.text(max_size=200))
def test_any_title_gives_a_key_without_error(raw: str) -> None:
    key = nz.title_key(raw)
    assert key.notice in {"", "correction", "retraction", "comment", "reply", "companion"}
    assert key.core == key.core.strip() and "  " not in key.core


@TEXT_SETTINGS
@given(st.text(max_size=120))
def test_any_author_string_gives_folded_surnames(raw: str) -> None:
    for surname in nz.normalise_authors(raw):
        assert surname and " " not in surname


@SETTINGS
@given(st.lists(record(), min_size=1, max_size=14))
def test_groups_have_one_canonical_record_and_no_chained_pair(rows: list[dict[str, object]]) -> None:
    frame = frame_of(rows)
    result = deduplicate(frame)
    assert result["record_id"].tolist() == frame["record_id"].tolist()
    assert (result.groupby("duplicate_group")["keep"].sum() == 1).all()
    assert set(result["duplicate_group"]) <= set(result["record_id"])
    features = Features(prepare_records(frame))
    for rows_of_group in result.groupby("duplicate_group").indices.values():
        for i, j in combinations(sorted(rows_of_group), 2):
            verdict = compare(features, int(i), int(j))
            assert verdict.level == MATCH or (verdict.level == MAYBE and not verdict.doubt)
    again = deduplicate(frame)
    assert again.equals(result)  # deterministic


@SETTINGS
@given(st.lists(record(), min_size=1, max_size=8), st.lists(record(), min_size=1, max_size=6))
def test_incremental_runs_keep_existing_groups_apart_and_named(
    old_rows: list[dict[str, object]], new_rows: list[dict[str, object]]
) -> None:
    old = frame_of(old_rows)
    first = deduplicate(old)
    existing = old.merge(first[["record_id", "duplicate_group", "keep"]], on="record_id")
    new = frame_of(new_rows)
    new["record_id"] = "n" + new["record_id"]
    new["id"] = "n" + new["id"]
    result = deduplicate(new, existing=existing)
    assert len(result) == len(old) + len(new)
    before = dict(zip(first["record_id"], first["duplicate_group"], strict=True))
    after = dict(zip(result["record_id"], result["duplicate_group"], strict=True))
    assert all(after[r] == g for r, g in before.items())  # existing groups keep members and names
    old_groups_per_group = (
        result[result["record_id"].isin(before)]
        .groupby("duplicate_group")["record_id"]
        .apply(lambda ids: len({before[r] for r in ids}))
    )
    assert (old_groups_per_group == 1).all()  # no two existing groups were merged
