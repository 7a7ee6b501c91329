"""The gold adjudications of benchmarks/gold_adjudications.csv: well formed, naming real records of the
real benchmark sets, and each one changing the published gold (a correction that changes nothing is a typo)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks.dedup_bench import (
    ADJUDICATION_COLUMNS,
    ADJUDICATIONS,
    RULES,
    VERDICTS,
    adjudicated_gold,
    gold_pairs,
    load_adjudications,
)
from pipeline.errors import InputFileError

BIB_DEDUPE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dedup-benchmarks" / "bib-dedupe"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(ADJUDICATIONS, dtype=str, keep_default_na=False)


def test_columns_and_values_are_valid(table: pd.DataFrame) -> None:
    assert list(table.columns) == ADJUDICATION_COLUMNS
    assert len(table) > 0
    assert set(table["verdict"]) <= set(VERDICTS)
    assert set(table["rule"]) <= set(RULES)
    # a 'duplicate' verdict only corrects a plain gold error; every issue-3 rule splits a pair
    assert set(table.loc[table["verdict"] == "duplicate", "rule"]) == {"gold_error"}
    assert (table["reason"].str.len() > 40).all()
    assert (table["id_a"] != table["id_b"]).all()


def test_every_id_exists_in_its_set(table: pd.DataFrame) -> None:
    for name, rows in table.groupby("set"):
        records = pd.read_csv(BIB_DEDUPE / name / "records_pre_merged.csv", dtype=str, keep_default_na=False)
        missing = (set(rows["id_a"]) | set(rows["id_b"])) - set(records["ID"])
        assert not missing, f"{name}: {sorted(missing)}"


def test_every_adjudication_changes_the_published_gold(table: pd.DataFrame) -> None:
    for name, rows in table.groupby("set"):
        gold = gold_pairs(BIB_DEDUPE / name / "merged_record_ids.csv")
        for a, b, verdict in zip(rows["id_a"], rows["id_b"], rows["verdict"]):
            in_gold = (min(a, b), max(a, b)) in gold
            assert in_gold == (verdict == "not_duplicate"), f"{name} {a} {b} {verdict}"


def test_adjudicated_gold_applies_the_verdicts() -> None:
    adjudications = load_adjudications()
    gold = gold_pairs(BIB_DEDUPE / "haematology" / "merged_record_ids.csv")
    corrected, count = adjudicated_gold("haematology", gold, adjudications)
    assert count == int((adjudications["set"] == "haematology").sum())
    assert ("id_0000009", "id_0000039") in gold and ("id_0000009", "id_0000039") not in corrected
    assert ("id_0000001", "id_0000002") not in gold and ("id_0000001", "id_0000002") in corrected
    assert ("id_0000008", "id_0000009") in corrected  # the letter and its multiple-letters record stay merged
    assert adjudicated_gold("stroke", gold, adjudications) == (gold, 0)


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("haematology,id_0000001,id_0000002,duplicate,typo,a reason", "rule"),
        ("haematology,id_0000001,id_0000002,same,gold_error,a reason", "verdict"),
        ("nosuchset,id_0000001,id_0000002,duplicate,gold_error,a reason", "set"),
        ("haematology,id_0000001,id_0000001,duplicate,gold_error,a reason", "id_b"),
        ("haematology,id_0000001,id_0000002,duplicate,gold_error,", "reason"),
    ],
)
def test_bad_rows_raise_a_typed_error(tmp_path: Path, line: str, field: str) -> None:
    path = tmp_path / "adjudications.csv"
    path.write_text(",".join(ADJUDICATION_COLUMNS) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(InputFileError) as caught:
        load_adjudications(path)
    assert caught.value.row == 2 and caught.value.field == field


def test_a_pair_listed_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "adjudications.csv"
    row = "haematology,{},{},duplicate,gold_error,a reason"
    pairs = [row.format("id_0000001", "id_0000002"), row.format("id_0000002", "id_0000001")]
    lines = [",".join(ADJUDICATION_COLUMNS), *pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputFileError, match="listed twice"):
        load_adjudications(path)
