"""Dedupe at scale on real benchmark records: hashed blocking gives the pairs of string keys, and an
incremental run with a saved DedupeIndex gives the result of a full run while computing features only
for the new records and comparing only pairs that touch them."""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from benchmarks.dedup_bench import load_set, pair_metrics
from pipeline.dedupe import DedupeIndex, deduplicate
from pipeline.dedupe import engine as dedupe_engine
from pipeline.dedupe.blocking import (
    BIG_BLOCK_WINDOW,
    MAX_BLOCK,
    NEIGHBOUR_WINDOW,
    BlockKeys,
    Blocks,
    candidate_pairs,
)
from pipeline.dedupe.engine import prepare_records
from pipeline.dedupe.features import Features
from pipeline.errors import ReviewError

GROUP_COLUMNS = ["record_id", "id", "duplicate_group", "keep"]


def split(name: str, share: float = 0.01, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A real benchmark set as an existing corpus and a random `share` of new records."""
    frame, _ = load_set(name)
    rng = np.random.default_rng(seed)
    is_new = np.zeros(len(frame), dtype=bool)
    is_new[rng.choice(len(frame), max(2, int(len(frame) * share)), replace=False)] = True
    return frame[~is_new].reset_index(drop=True), frame[is_new].reset_index(drop=True)


def partition(result: pd.DataFrame, ids: set[str] | None = None) -> set[frozenset[str]]:
    rows = result if ids is None else result[result["record_id"].isin(ids)]
    return {frozenset(members) for members in rows.groupby("duplicate_group")["record_id"].agg(list)}


def same_result(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    return a.equals(b) and a.attrs["dedupe_pairs"].equals(b.attrs["dedupe_pairs"])


def string_key_pairs(f: Features) -> set[tuple[int, int]]:
    """The blocking of the first release, on key strings in dicts: the reference the hashed blocks must equal."""
    doc_freq: Counter[str] = Counter()
    for title in f.title:
        doc_freq.update({w for w in title.core.split() if len(w) >= 4})
    blocks: dict[str, list[int]] = defaultdict(list)
    for i in range(f.size):
        title, core = f.title[i], f.title[i].core
        compact = core.replace(" ", "")
        words = {w for w in core.split() if len(w) >= 4}
        rare = " ".join(sorted(w for _, w in sorted((doc_freq[w], w) for w in words)[:2])) if len(words) >= 3 else ""
        surnames = f.authors[i].surnames
        keys = [
            "d" + f.doi[i] if f.doi[i] else "",
            "s" + title.notice + compact[:24] if len(compact) >= 10 else "",
            "e" + title.notice + compact[-24:] if len(compact) >= 30 else "",
            "m" + title.main.replace(" ", "") if title.main != core and len(title.main) >= 20 else "",
            "w" + rare if rare else "",
            f"a{surnames[0]}|{f.year[i]}" if surnames and f.year[i] else "",
            f"p{f.volume[i]}|{f.pages[i][0]}" if f.volume[i] and f.pages[i][0] else "",
            "x" + f.abstract[i][0][:80] if len(f.abstract[i][0]) >= 80 else "",
        ]
        for key in filter(None, keys):
            blocks[key].append(i)
    cores = [t.core for t in f.title]
    pairs: set[tuple[int, int]] = set()

    def window(ordered: list[int], size: int) -> None:
        for step in range(1, size + 1):
            pairs.update((min(a, b), max(a, b)) for a, b in zip(ordered, ordered[step:], strict=False) if a != b)

    for members in blocks.values():
        if len(members) <= MAX_BLOCK:
            pairs.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
        else:
            window(sorted(members, key=cores.__getitem__), BIG_BLOCK_WINDOW)
    window(sorted((i for i in range(f.size) if cores[i]), key=cores.__getitem__), NEIGHBOUR_WINDOW)
    return pairs


@pytest.fixture(scope="module")
def stroke() -> pd.DataFrame:
    return load_set("stroke")[0]


# --- blocking -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stroke", "diabetes"])
def test_hashed_blocks_give_exactly_the_pairs_of_string_keys(name: str) -> None:
    features = Features(prepare_records(load_set(name)[0]))
    pairs = {(int(i), int(j)) for i, j in candidate_pairs(features)}
    assert len(pairs) > features.size  # the sets have big blocks (common surnames) and small ones
    assert pairs == string_key_pairs(features)


def test_blocks_list_the_candidate_pairs_slice_by_slice_and_test_one_pair() -> None:
    features = Features(prepare_records(load_set("diabetes")[0]))
    keys = BlockKeys.build(features)
    every = keys.pair_codes()
    blocks = Blocks(keys)
    chunks = list(blocks.pair_chunks(rows_per_chunk=100))
    assert len(chunks) == -(-features.size // 100)
    assert np.array_equal(np.concatenate(chunks), every)
    n = features.size
    rng = np.random.default_rng(1)
    pairs = {(int(c // n), int(c % n)) for c in every[rng.choice(len(every), 300, replace=False)]}
    others = {(int(i), int(j)) for i, j in rng.integers(0, n, (3000, 2)) if i < j}
    expected = set(every.tolist())
    for i, j in pairs | others:
        assert blocks.is_candidate(i, j) == (i * n + j in expected)


def test_keys_extended_with_new_records_equal_keys_built_on_the_whole_corpus() -> None:
    old, new = split("diabetes", share=0.05)
    whole = Features(prepare_records(pd.concat([old, new], ignore_index=True)))
    built = BlockKeys.build(whole)
    grown = Features(prepare_records(old))
    keys = BlockKeys.build(grown)
    changed = grown.extend(prepare_records(new))
    keys.extend(grown, len(old), changed)
    for name in ("doi", "preprint", "meeting", "title", "authors"):
        assert getattr(grown, name) == getattr(whole, name)
    assert all(np.array_equal(keys.codes[k], built.codes[k]) for k in built.codes)
    assert np.array_equal(keys.order, built.order) and np.array_equal(keys.rare[:, :2], built.rare[:, :2])
    touched = np.arange(whole.size) >= len(old)
    assert np.array_equal(keys.pair_codes(touched), built.pair_codes(touched))


# --- incremental runs ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["stroke", "diabetes"])
def test_an_indexed_run_on_one_percent_new_records_gives_the_full_run_groups(name: str, tmp_path: Path) -> None:
    old, new = split(name)
    full = deduplicate(pd.concat([old, new], ignore_index=True))
    index = DedupeIndex()
    first = deduplicate(old, index=index)
    assert index.record_ids == first["record_id"].tolist()
    index.save(tmp_path / "dedupe.index")
    assert partition(full, set(old["record_id"])) == partition(first)  # the full run kept the existing groups
    result = deduplicate(new, existing=first[GROUP_COLUMNS], index=DedupeIndex.load(tmp_path / "dedupe.index"))
    assert partition(result) == partition(full)
    # The same result, reasons and pairs sheet as the incremental mode without an index (all fields given).
    existing = old.merge(first[["record_id", "duplicate_group", "keep"]], on="record_id")
    assert same_result(result, deduplicate(new, existing=existing))


def test_an_indexed_run_computes_features_and_comparisons_only_for_new_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = split("haematology", share=0.02)
    index = DedupeIndex()
    first = deduplicate(old, index=index)
    featured: list[int] = []
    compared: list[tuple[int, int]] = []
    add_chunk, compare = Features._add_chunk, dedupe_engine.compare

    def counted_chunk(self: Features, chunk: dict[str, list[Any]], pool: Any) -> list[str]:
        featured.append(len(chunk["title"]))
        return add_chunk(self, chunk, pool)

    def counted_compare(f: Features, i: int, j: int) -> object:
        compared.append((i, j))
        return compare(f, i, j)

    monkeypatch.setattr(Features, "_add_chunk", counted_chunk)
    monkeypatch.setattr(dedupe_engine, "compare", counted_compare)
    result = deduplicate(new, existing=first[GROUP_COLUMNS], index=index)
    assert sum(featured) == len(new)
    assert compared and all(max(i, j) >= len(old) for i, j in compared)
    assert len(index) == len(result) == len(old) + len(new)
    joined = result.iloc[len(old) :]
    assert (~joined["keep"]).any()  # some new records joined existing groups (their verdicts were reused)


def test_reviewer_decisions_give_the_same_result_with_and_without_the_index() -> None:
    old, new = split("stroke", share=0.02)
    first = deduplicate(old)
    merged = first[first["match_reason"] != ""].groupby("duplicate_group")["record_id"].agg(list)
    split_pair = next(members for members in merged if len(members) == 2)
    singles = first.loc[first["match_reason"] == "", "record_id"].tolist()
    decisions = pd.DataFrame(
        {
            "record_id_a": [split_pair[0], singles[0], new["record_id"].iloc[0]],
            "record_id_b": [split_pair[1], singles[1], singles[2]],
            "decision": ["different", "same", "same"],
        }
    )
    index = DedupeIndex()
    deduplicate(old, index=index)
    with_index = deduplicate(new, existing=first[GROUP_COLUMNS], decisions=decisions, index=index)
    existing = old.merge(first[["record_id", "duplicate_group", "keep"]], on="record_id")
    assert same_result(with_index, deduplicate(new, existing=existing, decisions=decisions))
    groups = with_index.set_index("record_id")["duplicate_group"]
    assert groups[split_pair[0]] != groups[split_pair[1]]
    assert groups[singles[0]] == groups[singles[1]] and groups[new["record_id"].iloc[0]] == groups[singles[2]]


def test_an_index_in_another_order_is_reordered(stroke: pd.DataFrame) -> None:
    index = DedupeIndex()
    first = deduplicate(stroke.iloc[:-10], index=index)
    existing = first[GROUP_COLUMNS].iloc[::-1].reset_index(drop=True)
    fields = existing.merge(stroke, on=["record_id", "id"])
    assert index.arrange(existing)["record_id"].tolist() == index.record_ids
    assert index.arrange(existing.iloc[1:]).equals(existing.iloc[1:])  # not the index's records: left as it is
    result = deduplicate(stroke.iloc[-10:], existing=existing, index=index)
    assert same_result(result, deduplicate(stroke.iloc[-10:], existing=fields))
    assert index.record_ids == result["record_id"].tolist()


# --- stale, foreign and broken index files --------------------------------------------------


def test_an_index_of_other_records_is_rebuilt_from_the_existing_fields_or_refused(
    stroke: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    index = DedupeIndex()
    deduplicate(stroke.iloc[:500], index=index)  # describes 500 records, not the corpus below
    old = stroke.iloc[:-10]
    first = deduplicate(old)
    existing = old.merge(first[["record_id", "duplicate_group", "keep"]], on="record_id")
    with caplog.at_level(logging.WARNING, logger="pipeline.dedupe.engine"):
        result = deduplicate(stroke.iloc[-10:], existing=existing, index=index)
    assert "rebuilding" in caplog.text
    assert same_result(result, deduplicate(stroke.iloc[-10:], existing=existing))
    assert index.record_ids == result["record_id"].tolist()
    stale = DedupeIndex()
    deduplicate(stroke.iloc[:500], index=stale)
    with pytest.raises(ReviewError, match="the index does not describe it"):
        deduplicate(stroke.iloc[-10:], existing=first[GROUP_COLUMNS], index=stale)


def _rewrite_header(path: Path, **changes: object) -> None:
    data = path.read_bytes()
    magic_end = data.index(b"\n") + 1
    header_end = data.index(b"\n", magic_end) + 1
    header = json.loads(data[magic_end:header_end])
    header.update(changes)
    path.write_bytes(data[:magic_end] + json.dumps(header).encode() + b"\n" + data[header_end:])


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: _rewrite_header(p, engine="0" * 20),  # made by another version of the engine
        lambda p: _rewrite_header(p, format=0),  # an older file format
        lambda p: _rewrite_header(p, records=3),  # a header that does not match the content
        lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),  # cut short
        lambda p: p.write_bytes(b"not an index"),
    ],
    ids=["engine", "format", "count", "truncated", "garbage"],
)
def test_a_stale_or_broken_index_file_loads_as_empty(
    damage: Callable[[Path], None], stroke: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "dedupe.index"
    index = DedupeIndex()
    deduplicate(stroke.iloc[:200], index=index)
    index.save(path)
    assert DedupeIndex.load(path).record_ids == index.record_ids
    assert len(DedupeIndex.load(path, context="cleaning rules v2")) == 0  # saved for another context
    damage(path)
    assert len(DedupeIndex.load(path)) == 0
    assert len(DedupeIndex.load(tmp_path / "missing.index")) == 0


def test_a_full_run_with_an_index_gives_the_result_of_a_run_without_one(stroke: pd.DataFrame) -> None:
    index = DedupeIndex()
    assert same_result(deduplicate(stroke, index=index), deduplicate(stroke))
    assert len(index) == len(stroke) and index.links is not None


def test_pair_metrics_count_the_pairs_of_two_labellings() -> None:
    predicted = np.array([0, 0, 0, 1, 2])
    truth = np.array([5, 5, 6, 6, 7])
    m = pair_metrics(predicted, truth)
    # predicted pairs (0,1) (0,2) (1,2); true pairs (0,1) (2,3): one in common
    assert (m["fp"], m["fn"]) == (2, 1) and m["precision"] == pytest.approx(1 / 3) and m["recall"] == 0.5


def test_saving_the_index_never_pickles_it_whole(stroke: pd.DataFrame, tmp_path: Path) -> None:
    """The pickler's memo (an entry per object written) holds one piece of the index at a time: the save's
    extra memory is well under that of one pickle of everything, and the index loads back the same."""
    import pickle
    import tracemalloc

    index = DedupeIndex()
    deduplicate(stroke, index=index)
    whole = {"record_ids": index.record_ids, "features": index.features, "keys": index.keys, "links": index.links}

    def peak_while(write: Callable[[], None]) -> int:
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            write()
            return tracemalloc.get_traced_memory()[1] - base
        finally:
            tracemalloc.stop()

    path = tmp_path / "dedupe.index"
    with (tmp_path / "whole.pickle").open("wb") as handle:
        one_pickle = peak_while(lambda: pickle.dump(whole, handle, protocol=pickle.HIGHEST_PROTOCOL))
    in_pieces = peak_while(lambda: index.save(path))
    assert in_pieces < 0.6 * one_pickle
    loaded = DedupeIndex.load(path)
    assert loaded.record_ids == index.record_ids and loaded.features.title == index.features.title
    assert loaded.features.venue_id == index.features.venue_id
    assert loaded.links is not None and index.links is not None
    assert loaded.links.group == index.links.group and np.array_equal(loaded.links.score, index.links.score)
    assert np.array_equal(loaded.keys.order, index.keys.order)
