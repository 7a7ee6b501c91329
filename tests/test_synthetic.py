"""Synthetic corpora (benchmarks/synthetic.py): real formats the readers take back, truth that matches, determinism,
the 1% update, pairwise scoring; and the harness's stage table (benchmarks/run_all.py)."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import run_all, synthetic
from pipeline.errors import ReviewError
from pipeline.ingest import read_file
from pipeline.records import records_to_frame

from .conftest import DATA, SHARED

POOL_FILES = [
    DATA / "exports" / "ris" / "litsearchr_scopus.ris",
    DATA / "exports" / "medline" / "metaknowledge_medline_test.medline",
    DATA / "exports" / "csv" / "litsearchr_borealis_scopus.csv",
]
RECORDS = 600


@pytest.fixture(scope="module")
def pool() -> synthetic.Pool:
    return synthetic.load_pool(POOL_FILES, SHARED)


@pytest.fixture(scope="module")
def corpus(pool: synthetic.Pool, tmp_path_factory: pytest.TempPathFactory) -> synthetic.CorpusSummary:
    return synthetic.generate_corpus(tmp_path_factory.mktemp("corpus"), RECORDS, seed=3, shard_size=100, pool=pool)


@pytest.fixture(scope="module")
def records_by_key(corpus: synthetic.CorpusSummary) -> dict[tuple[str, str], object]:
    found = {}
    for path in sorted((corpus.folder / synthetic.FILES_DIR).iterdir()):
        for record in read_file(path):
            found[(path.name, record.id)] = record
    return found


def test_every_file_reads_back_as_its_format_with_the_truth(
    corpus: synthetic.CorpusSummary, records_by_key: dict
) -> None:
    truth = synthetic.read_truth([corpus.truth])
    assert len(records_by_key) == RECORDS == len(truth)
    assert set(records_by_key) == set(truth)
    formats = Counter(record.source_format for record in records_by_key.values())
    assert set(formats) == {"csv", "ris", "bibtex", "medline"}
    assert max(corpus.files.values()) <= 100 and sum(corpus.files.values()) == RECORDS
    assert all(record.title and record.authors and record.year for record in records_by_key.values())


def test_originals_carry_their_works_fields(
    pool: synthetic.Pool, corpus: synthetic.CorpusSummary, records_by_key: dict
) -> None:
    factory = synthetic.WorkFactory(pool, seed=3, on_topic_share=0.3)
    roles = _roles(corpus.truth)
    checked = 0
    for key, work_index in synthetic.read_truth([corpus.truth]).items():
        if roles[key] != "original":
            continue
        work, record = factory.work(work_index), records_by_key[key]
        assert record.title == work.title
        assert record.doi == work.doi
        assert record.abstract == work.abstract
        checked += 1
    assert checked == corpus.works


def test_copies_are_perturbed_and_mostly_in_another_format(
    corpus: synthetic.CorpusSummary, records_by_key: dict
) -> None:
    truth, roles = synthetic.read_truth([corpus.truth]), _roles(corpus.truth)
    assert corpus.copies == RECORDS - corpus.works == sum(role == "copy" for role in roles.values())
    original_of = {work: key for key, work in truth.items() if roles[key] == "original"}
    changed = Counter()
    for key, work in truth.items():
        if roles[key] == "copy" and work in original_of:
            copy, original = records_by_key[key], records_by_key[original_of[work]]
            changed["format"] += copy.source_format != original.source_format
            changed["title"] += copy.title != original.title
            changed["doi dropped"] += bool(original.doi) and not copy.doi
            changed["cut abstract"] += copy.abstract.endswith("...") and not original.abstract.endswith("...")
            changed["pairs"] += 1
    assert changed["pairs"] > 50
    assert changed["format"] > 0.7 * changed["pairs"]
    assert changed["title"] > 0.2 * changed["pairs"]
    assert changed["doi dropped"] > 0 and changed["cut abstract"] > 0


def test_about_a_third_of_the_records_are_on_topic(corpus: synthetic.CorpusSummary, records_by_key: dict) -> None:
    on_topic = sum("school" in record.abstract.lower() for record in records_by_key.values())
    assert 0.2 * RECORDS < corpus.on_topic_records < 0.4 * RECORDS
    assert on_topic >= corpus.on_topic_records * 0.8  # cut or dropped abstracts may lose the word


def test_the_same_seed_gives_the_same_bytes(
    pool: synthetic.Pool, corpus: synthetic.CorpusSummary, tmp_path: Path
) -> None:
    again = synthetic.generate_corpus(tmp_path / "again", RECORDS, seed=3, shard_size=100, pool=pool)
    other = synthetic.generate_corpus(tmp_path / "other", RECORDS, seed=4, shard_size=100, pool=pool)
    assert _digest(again.folder) == _digest(corpus.folder)
    assert _digest(other.folder) != _digest(corpus.folder)


def test_the_deduplicator_finds_the_copies(corpus: synthetic.CorpusSummary, records_by_key: dict) -> None:
    from pipeline.dedupe import deduplicate

    keys = list(records_by_key)
    frame = records_to_frame(records_by_key[key] for key in keys)
    frame["record_id"] = [f"{file_name}|{own_id}" for file_name, own_id in keys]
    groups = deduplicate(frame)
    predicted = [(*rid.split("|", 1), group) for rid, group in zip(groups["record_id"], groups["duplicate_group"])]
    scores = synthetic.pair_scores(synthetic.read_truth([corpus.truth]), predicted)
    assert scores["records"] == RECORDS and scores["true_pairs"] > 50
    assert scores["f1"] > 0.9


def test_an_update_holds_new_works_and_copies_of_old_ones(
    pool: synthetic.Pool, corpus: synthetic.CorpusSummary, tmp_path: Path
) -> None:
    update = synthetic.generate_update(corpus.folder, tmp_path / "update", share=0.05, pool=pool)
    assert update.records == 30 and update.works == 15 and update.copies == 15
    truth = synthetic.read_truth([update.truth])
    roles = _roles(update.truth)
    assert all((work >= corpus.works) == (roles[key] == "original") for key, work in truth.items())
    corpus_ids = {own_id for _, own_id in synthetic.read_truth([corpus.truth])}
    assert not corpus_ids & {own_id for _, own_id in truth}
    (name,) = update.files
    assert len(list(read_file(update.folder / synthetic.FILES_DIR / name))) == 30


def test_an_update_from_another_pool_is_refused(corpus: synthetic.CorpusSummary, tmp_path: Path) -> None:
    other = synthetic.load_pool(POOL_FILES[:2], SHARED)
    with pytest.raises(ReviewError, match="regenerate the corpus"):
        synthetic.generate_update(corpus.folder, tmp_path / "update", pool=other)


def test_pair_scores_count_pairs_from_group_sizes() -> None:
    truth = {("f", str(i)): work for i, work in enumerate([0, 0, 0, 1, 1, 2])}
    # groups: {0,1} {2} {3,4,5}: pairs predicted 1 + 3 = 4, true 3 + 1 = 4, right 1 + 1 = 2
    predicted = [("f", "0", "a"), ("f", "1", "a"), ("f", "2", "b"), ("f", "3", "c"), ("f", "4", "c"), ("f", "5", "c"),
                 ("seed.txt", "1", "z")]
    scores = synthetic.pair_scores(truth, predicted)
    assert (scores["records"], scores["true_pairs"], scores["predicted_pairs"]) == (6, 4, 4)
    assert scores["precision"] == scores["recall"] == scores["f1"] == 0.5
    assert (scores["false_pairs"], scores["missed_pairs"]) == (2, 2)


def test_a_bad_record_count_is_one_clear_error(pool: synthetic.Pool, tmp_path: Path) -> None:
    with pytest.raises(ReviewError, match="at least one record"):
        synthetic.generate_corpus(tmp_path, 0, pool=pool)


def test_the_harness_prefers_the_flows_own_stage_table(tmp_path: Path) -> None:
    stages = [{"stage": "dedupe", "records": 10, "seconds": 1.0, "cpu_seconds": 1.0, "records_per_second": 10.0,
               "peak_rss_mb": 100.0}]
    assert run_all.stage_table({"stages": stages}, tmp_path) == (stages, "run_summary")
    assert run_all.stage_table({}, tmp_path) == ([], "none")  # no stages and no Prefect database


def _roles(truth_path: Path) -> dict[tuple[str, str], str]:
    import csv

    with open(truth_path, encoding="utf-8", newline="") as handle:
        return {(row["file"], row["own_id"]): row["role"] for row in csv.DictReader(handle)}


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((folder / synthetic.FILES_DIR).iterdir()) + [folder / synthetic.TRUTH_NAME]:
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def test_prefect_tasks_mapped_over_batches_count_from_first_start_to_last_end() -> None:
    import datetime as dt

    def at(second: float) -> dt.datetime:
        return dt.datetime(2026, 1, 1) + dt.timedelta(seconds=second)

    timings = [("ingest", at(0), at(1)), ("code_batch", at(2), at(5)), ("code_batch", at(2), at(7.5)),
               ("export", at(9), at(9.5))]
    rows = run_all.task_spans(timings)
    assert [(row["stage"], row["seconds"]) for row in rows] == [
        ("ingest", 1.0), ("code_batch x2 (first start to last end)", 5.5), ("export", 0.5)
    ]
    assert run_all._covered_seconds(timings) == 7.0  # 1 + 5.5 + 0.5: overlapping batches counted once


def test_report_says_whether_runners_wrote_the_same_outputs(tmp_path: Path) -> None:
    for runner, text in (("default", "a"), ("dask", "b")):
        (tmp_path / runner).mkdir()
        (tmp_path / runner / "matrix.csv").write_text("same", encoding="utf-8")
        (tmp_path / runner / "map.html").write_text(text, encoding="utf-8")
        (tmp_path / runner / "run_summary.json").write_text(runner, encoding="utf-8")
    digests = {runner: run_all.output_digests(tmp_path / runner) for runner in ("default", "dask")}
    assert set(digests["default"]) == {"matrix.csv", "map.html"}  # the run summary holds times: left out
    run = run_all.RunMeasure(1.0, 1.0, 1.0, [{"stage": "code", "cpu_seconds": 2.0}], "run_summary")
    results = [run_all.SizeResult(10, r, 0.1, run, None, 0, None, digests[r]) for r in ("default", "dask")]
    assert run_all.runner_rows(results)[-1] == "| 10 | default, dask | 2 | no: map.html |"
    results[1].outputs = dict(digests["default"])
    assert run_all.runner_rows(results)[-1] == "| 10 | default, dask | 2 | yes |"
    assert run_all.record_stage_cpu(run) == 2.0
