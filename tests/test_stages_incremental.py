"""The flow's stage functions across runs: the topic model kept in the workspace's cache (placed, not refitted,
when few studies are new) and a review with no records yet (pipeline/stages.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import stages
from pipeline.codebook import Codebook, load_codebook
from pipeline.workspace import load_workspace

REPO = Path(__file__).resolve().parents[1]
TOPIC_DATA = REPO / "tests" / "data" / "topics" / "digital_work_200.csv"


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook(REPO / "codebook" / "school_to_school.yaml")


def _studies(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns topics_stage reads, for real abstracts (tests/data/topics/README.md)."""
    return pd.DataFrame({"study_id": frame["id"], "title": frame["title"], "abstract": frame["abstract"], "flags": ""})


def _tfidf_workspace(root: Path) -> object:
    config = yaml.safe_load((root / "review.yaml").read_text(encoding="utf-8"))
    config["topics"] = {"embedding": "tfidf", "refit_share": 0.2}
    (root / "review.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return load_workspace(root)


def test_topic_model_is_kept_and_only_new_studies_are_placed(workspace: Path, codebook: Codebook) -> None:
    real = pd.read_csv(TOPIC_DATA, dtype=str).fillna("")
    ws = _tfidf_workspace(workspace)
    first = stages.topics_stage(_studies(real.iloc[:190]), codebook, ws)
    assert first.run["model"] == "fitted"
    assert (ws.corpus_dir / "cache" / stages.TOPIC_STATE_DIR).is_dir()

    again = stages.topics_stage(_studies(real.iloc[:195]), codebook, ws)
    assert again.run["model"] == "reused"
    assert again.run["placed_now"] == 5 and again.run["from_saved_state"] == first.run["studies"]
    # the 190 studies keep the topics the fit gave them
    before = first.study_topics.set_index("id")["topic"]
    after = again.study_topics.set_index("id")["topic"].reindex(before.index)
    assert after.tolist() == before.tolist()


def test_coding_plan_of_an_empty_review_keeps_its_columns(codebook: Codebook) -> None:
    empty = stages.studies_stage(pd.DataFrame(), pd.DataFrame(columns=["record_id", "duplicate_group", "keep"]), codebook)
    plan = stages.plan_coding(empty, codebook, {})
    assert plan.todo.empty and list(plan.todo.columns) == list(empty.columns)


def test_topic_figures_are_drawn_once_per_fit(workspace: Path, codebook: Codebook) -> None:
    real = pd.read_csv(TOPIC_DATA, dtype=str).fillna("")
    ws = _tfidf_workspace(workspace)
    first = stages.topics_stage(_studies(real.iloc[:120]), codebook, ws)
    stages.write_topics_stage(ws, first)
    page = ws.outputs_dir / "topics_figures.html"
    drawn = page.read_bytes()
    (cached,) = (ws.corpus_dir / "cache" / stages.TOPIC_STATE_DIR).glob("figures-*.json")

    again = stages.topics_stage(_studies(real.iloc[:125]), codebook, ws)
    assert again.run["model"] == "reused"
    cached.write_text(cached.read_text(encoding="utf-8").replace("Topic hierarchy", "Kept hierarchy"), encoding="utf-8")
    stages.write_topics_stage(ws, again)
    assert b"Kept hierarchy" in page.read_bytes()  # taken from the cache, not drawn again

    cached.unlink()  # without the cache the page is drawn afresh, and only the outlier shares may differ
    stages.write_topics_stage(ws, again)
    fresh = page.read_text(encoding="utf-8")
    assert "Kept hierarchy" not in fresh and "Topic hierarchy" in fresh
    assert drawn.split(b"</p>", 1)[1] == fresh.encode("utf-8").split(b"</p>", 1)[1]


def test_topics_read_in_slices_equal_topics_read_whole(
    workspace: Path, codebook: Codebook, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pd.read_csv(TOPIC_DATA, dtype=str).fillna("")
    studies = _studies(real)
    studies.loc[3, "flags"] = "non_english:ru"  # set aside by the rules' skip check, in the middle of a slice
    ws = _tfidf_workspace(workspace)
    whole = stages.topics_stage(studies, codebook, ws)
    shutil.rmtree(ws.corpus_dir / "cache" / stages.TOPIC_STATE_DIR)
    monkeypatch.setattr(stages, "TOPIC_FRAME_ROWS", 7)
    sliced = stages.topics_stage(studies, codebook, ws)
    assert whole.run["model"] == sliced.run["model"] == "fitted"
    for table in ("study_topics", "topics", "suggestions"):
        pd.testing.assert_frame_equal(getattr(whole, table), getattr(sliced, table))
    assert studies.loc[3, "study_id"] not in set(whole.study_topics["id"])


def test_topics_in_a_child_give_the_suggestions_and_outputs_of_the_stage_in_process(
    workspace: Path, codebook: Codebook, tmp_path: Path
) -> None:
    from pipeline.study_table import StudyTable
    from pipeline.subprocess_stage import run_in_child

    real = pd.read_csv(TOPIC_DATA, dtype=str).fillna("")
    ws = _tfidf_workspace(workspace)
    table = StudyTable.write(_studies(real.iloc[:150]), tmp_path / "studies.parquet")
    (ws.outputs_dir / "topics.csv").parent.mkdir(parents=True, exist_ok=True)
    stale = stages.pending_path(ws, stages.TOPIC_OUTPUTS_DIR) / "left_by_a_failed_run.csv"
    stale.parent.mkdir(parents=True)
    stale.write_text("old", encoding="utf-8")

    light = run_in_child(stages.topics_pass, ws, table, codebook)
    assert light.model is None and light.documents == [] and light.study_topics.empty
    written = stages.publish_topic_outputs(ws)
    names = sorted(path.name for path in written)
    assert "left_by_a_failed_run.csv" not in names and {"topics.csv", "study_topics.csv", "topics_figures.html"} <= set(names)
    assert not any(stages.pending_path(ws, stages.TOPIC_OUTPUTS_DIR).iterdir())
    published = {name: (ws.outputs_dir / name).read_bytes() for name in names}

    shutil.rmtree(ws.corpus_dir / "cache" / stages.TOPIC_STATE_DIR)  # fitted again, in process this time
    whole = stages.topics_stage(table, codebook, ws)
    pd.testing.assert_frame_equal(light.suggestions, whole.suggestions)
    assert light.run["model"] == whole.run["model"] == "fitted" and len(whole.study_topics) > 140  # usable abstracts
    again = stages.write_topics_stage(ws, whole, tmp_path / "in_process")
    assert {path.name: path.read_bytes() for path in again} == published


def test_a_codebook_moved_to_another_folder_keeps_its_coding_cache_keys_and_topic_fingerprint(tmp_path: Path) -> None:
    from pipeline.topics import state

    source = REPO / "codebook" / "school_to_school.yaml"
    moved = tmp_path / "elsewhere" / "school_to_school.yaml"
    moved.parent.mkdir()
    shutil.copyfile(source, moved)
    here, there = load_codebook(source), load_codebook(moved)
    assert here.path != there.path and here == there
    studies = pd.DataFrame({"study_id": ["s1"], "title": ["Schools in partnership"], "abstract": ["A study."], "flags": [""]})
    assert stages.coding_cache_keys(studies, here) == stages.coding_cache_keys(studies, there)
    settings = {"embedder_tag": "tfidf", "seed": 1, "min_topic_size": 5, "clustering": "hdbscan", "threshold": 0.3,
                "max_fit_studies": 100}
    assert state.fingerprint(here, **settings) == state.fingerprint(there, **settings)
    edited = tmp_path / "edited.yaml"
    edited.write_text(source.read_text(encoding="utf-8").replace('version: "1.0"', 'version: "1.1"', 1), encoding="utf-8")
    changed = load_codebook(edited)
    assert changed.version != here.version
    assert state.fingerprint(changed, **settings) != state.fingerprint(here, **settings)
