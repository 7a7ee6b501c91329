"""Topics at scale: the capped fit sample, batch placement with the fitted model, the saved model that makes
incremental runs cheap, and the compact embedding cache (pipeline/topics/corpus.py, state.py, embeddings.py).

Outputs for corpora under the cap must stay what they were: tests/data/topics/before_cap/ holds the tables the
topics code wrote before the cap existed (pipeline/topics at commit 274fd64), for two real configurations."""

from __future__ import annotations

import logging
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.codebook import Codebook, codebook_from_dict, load_codebook
from pipeline.errors import ReviewError
from pipeline.topics import (
    TopicSettings,
    embed_texts,
    fit_topics,
    model_topics,
    write_topic_outputs,
)
from pipeline.topics import corpus as corpus_module
from pipeline.topics import embeddings as emb_module
from pipeline.topics import state as state_module
from pipeline.topics.embeddings import MODEL2VEC_DIRNAME, default_cache_dir, distill_model2vec, make_embedder

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "topics"
CODEBOOK = REPO / "codebook" / "school_to_school.yaml"
TABLES = ("topics.csv", "study_topics.csv", "topic_suggestions.csv", "emergent_themes.csv",
          "emergent_codes.yaml", "topics_summary.json")  # fmt: skip
# tfidf + KMeans with every topic mapped (threshold 0): suggestions for every study, in a fraction of a second
FAST = {"backend": "tfidf", "clustering": "kmeans", "map_threshold": 0.0}


@pytest.fixture(scope="module")
def codebook() -> Codebook:
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="module")
def digital_work() -> pd.DataFrame:
    """200 real information-systems abstracts (tests/data/topics/README.md)."""
    return pd.read_csv(DATA / "digital_work_200.csv", dtype=str)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An empty embedding cache that reuses the distilled model2vec model."""
    folder = tmp_path / "cache"
    folder.mkdir()
    (folder / MODEL2VEC_DIRNAME).symlink_to(distill_model2vec(default_cache_dir()))
    return folder


def tables(result, folder: Path) -> dict[str, bytes]:  # noqa: ANN001 - a TopicResult
    write_topic_outputs(result, folder, figures=False)
    return {name: (folder / name).read_bytes() for name in TABLES}


# ---------------------------------------------------------------- under the cap: as before


@pytest.mark.parametrize(
    ("name", "settings"),
    [("dw_tfidf_km_t0", FAST), ("dw_tfidf_s7", {"backend": "tfidf", "seed": 7})],
)
def test_under_the_cap_the_tables_are_the_ones_written_before_the_cap(
    name: str, settings: dict, codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    """Fitted whole, saved, then reused: every table is byte for byte what the code wrote before."""
    before = {n: (DATA / "before_cap" / name / n).read_bytes() for n in TABLES}
    first = fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **settings)
    assert first.run["model"] == "fitted" and "n_fit_studies" not in first.settings
    assert tables(first, tmp_path / "first") == before
    again = fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **settings)
    assert again.run["model"] == "reused" and again.run["placed_now"] == 0
    assert tables(again, tmp_path / "again") == before


def test_reused_model_writes_the_same_figures_page(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    first = fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **FAST)
    write_topic_outputs(first, tmp_path / "a")
    again = fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **FAST)
    assert again.run["model"] == "reused"
    write_topic_outputs(again, tmp_path / "b")
    page = (tmp_path / "a" / "topics_figures.html").read_bytes()
    assert len(page) > 1_000_000 and page == (tmp_path / "b" / "topics_figures.html").read_bytes()


# ---------------------------------------------------------------- the cap


def test_cap_fits_a_deterministic_sample_and_places_every_other_study(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    placed_batches: list[int] = []
    real_assign = corpus_module.assign_batch

    def spy(fitted, texts):  # noqa: ANN001, ANN202
        placed_batches.append(len(texts))
        return real_assign(fitted, texts)

    monkeypatch.setattr(corpus_module, "ASSIGN_BATCH", 50)
    monkeypatch.setattr(corpus_module, "assign_batch", spy)
    result = fit_topics(digital_work, codebook, max_fit_studies=60, **FAST)
    assert placed_batches == [50, 50, 40]  # memory: the sample plus one batch of 50
    assert len(result.documents) == 60 and result.settings["n_fit_studies"] == 60
    assert result.settings["n_studies"] == len(result.study_topics) == 200
    assert list(result.study_topics["id"]) == list(digital_work["id"])  # input order
    assert result.topics["size"].sum() == 200
    outside = digital_work.loc[~docs_of(digital_work).isin(set(result.documents)), "id"]
    assert len(outside) == 140 and set(outside) <= set(result.suggestions["id"])  # placed studies get codes too
    assert set(result.study_topics["topic"]) <= set(result.topics["topic"])

    shuffled = fit_topics(digital_work.sample(frac=1, random_state=3), codebook, max_fit_studies=60, **FAST)
    assert sorted(shuffled.documents) == sorted(result.documents)  # the sample does not depend on input order
    reseeded = fit_topics(digital_work, codebook, max_fit_studies=60, seed=43, **FAST)
    assert sorted(reseeded.documents) != sorted(result.documents)


def test_placement_does_not_depend_on_how_the_caller_batches_the_studies(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    settings = TopicSettings(max_fit_studies=60, **FAST)
    whole = model_topics(lambda: [digital_work], codebook, settings)
    pieces = model_topics(lambda: (digital_work[i : i + 7] for i in range(0, 200, 7)), codebook, settings)
    assert tables(whole, tmp_path / "whole") == tables(pieces, tmp_path / "pieces")


def test_hdbscan_model_places_studies_outside_the_sample_with_its_transform(
    codebook: Codebook, digital_work: pd.DataFrame
) -> None:
    """UMAP + HDBSCAN on a sample of 120: the others get HDBSCAN's approximate_predict, then the fit's outlier
    reassignment (the same similarity floor); every study ends up in the tables, in input order."""
    result = fit_topics(digital_work, codebook, backend="tfidf", seed=1, max_fit_studies=120)
    assert result.settings["clustering_used"] == "hdbscan" and result.settings["n_fit_studies"] == 120
    rows = result.study_topics
    assert list(rows["id"]) == list(digital_work["id"])
    outside = rows[~docs_of(digital_work).isin(set(result.documents)).to_numpy()]
    assert len(outside) == 80 and (outside["topic"] != -1).sum() >= 40
    assert rows["reassigned"].sum() == round((result.outlier_share_before - result.outlier_share_after) * 200)
    assert (outside.loc[outside["topic"] != -1, "similarity"] > 0).all()
    assert (outside.loc[outside["topic"] == -1, "similarity"] == 0).all()


def docs_of(frame: pd.DataFrame) -> pd.Series:
    """The texts the model sees: 'title. abstract', whitespace squashed."""
    title = frame["title"].map(lambda t: " ".join(str(t).split()).rstrip("."))
    return title + ". " + frame["abstract"].map(lambda a: " ".join(str(a).split()))


# ---------------------------------------------------------------- incremental


def test_new_studies_are_placed_with_the_saved_model_and_old_ones_keep_their_topic(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    first = fit_topics(digital_work.head(180), codebook, state_dir=state, **FAST)
    assert first.run["model"] == "fitted" and (state / "model.pkl").is_file() and (state / "studies.npz").is_file()
    placed: list[list[str]] = []
    real_assign = corpus_module.assign_batch

    def spy(fitted, texts):  # noqa: ANN001, ANN202
        placed.append(list(texts.ids))
        return real_assign(fitted, texts)

    monkeypatch.setattr(corpus_module, "assign_batch", spy)
    grown = fit_topics(digital_work, codebook, state_dir=state, **FAST)  # 20 of 200 new: 10 %, under 20 %
    assert grown.run["model"] == "reused" and grown.run["placed_now"] == 20
    assert placed == [list(digital_work["id"][180:])]  # only the new studies are embedded and placed
    old = first.study_topics.set_index("id")
    assert grown.study_topics.set_index("id").loc[old.index].equals(old)
    assert list(grown.topics["topic"]) == list(first.topics["topic"])  # topics keep their numbers and words
    assert list(grown.topics["words"]) == list(first.topics["words"])
    assert grown.topics["size"].sum() == 200 and set(digital_work["id"][180:]) <= set(grown.suggestions["id"])

    placed.clear()
    again = fit_topics(digital_work, codebook, state_dir=state, **FAST)
    assert again.run["placed_now"] == 0 and placed == []
    assert tables(again, tmp_path / "again") == tables(grown, tmp_path / "grown")


def test_refit_when_too_many_studies_are_new_or_settings_change_or_asked(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    fit_topics(digital_work.head(150), codebook, state_dir=state, **FAST)
    grown = fit_topics(digital_work, codebook, state_dir=state, **FAST)  # 50 of 200 new: 25 %
    assert grown.run["model"] == "fitted" and "25.0% of the studies are new" in grown.run["why"]
    assert fit_topics(digital_work, codebook, state_dir=state, **FAST).run["model"] == "reused"
    assert fit_topics(digital_work, codebook, state_dir=state, refit=True, **FAST).run["why"] == "asked to refit"
    assert fit_topics(digital_work, codebook, state_dir=state, seed=43, **FAST).run["model"] == "fitted"
    data = codebook_from_dict_copy()
    data["codes"][0]["definition"] += " Edited."
    edited = codebook_from_dict(data)
    assert fit_topics(digital_work, edited, state_dir=state, **FAST).run["model"] == "fitted"
    lenient = fit_topics(digital_work, edited, state_dir=state, refit_share=0.5, **FAST)
    assert lenient.run["model"] == "reused"  # refit_share is no part of the fingerprint; max_fit_studies is
    assert fit_topics(digital_work, edited, state_dir=state, max_fit_studies=199, **FAST).run["model"] == "fitted"


def codebook_from_dict_copy() -> dict:
    import yaml

    return yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))


def test_an_unreadable_or_mismatched_saved_model_is_refitted_with_a_log_line(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    fit_topics(digital_work, codebook, state_dir=state, **FAST)
    (state / "model.pkl").write_bytes(b"not a pickle")
    with caplog.at_level(logging.WARNING, logger="pipeline.topics.state"):
        result = fit_topics(digital_work, codebook, state_dir=state, **FAST)
    assert result.run["model"] == "fitted" and "cannot be read" in caplog.text
    saved = pickle.loads((state / "model.pkl").read_bytes())  # noqa: S301 - written by the test just now
    saved["fit_id"] = "another fit"
    (state / "model.pkl").write_bytes(pickle.dumps(saved))
    assert fit_topics(digital_work, codebook, state_dir=state, **FAST).run["model"] == "fitted"


def test_a_saved_model2vec_model_places_new_studies_as_the_model_in_memory_would(
    codebook: Codebook, digital_work: pd.DataFrame, cache: Path, tmp_path: Path
) -> None:
    """Saved, loaded by the next run and re-bound to its embedder, the model places the new studies exactly as
    the fitted model still in memory does."""
    from pipeline.topics import assign_batch
    from pipeline.topics.model import study_texts

    settings = {"backend": "model2vec", "clustering": "kmeans", "map_threshold": 0.2, "cache_dir": cache}
    first = fit_topics(digital_work.head(190), codebook, state_dir=tmp_path / "state", **settings)
    grown = fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **settings)
    assert grown.run["model"] == "reused" and grown.run["placed_now"] == 10
    expected = assign_batch(first.fitted, study_texts(digital_work.tail(10)))
    got = grown.study_topics.tail(10)
    assert list(got["topic"]) == expected.topics.tolist()
    assert list(got["similarity"]) == expected.similarity.tolist()
    suggested = grown.suggestions[grown.suggestions["id"].isin(digital_work["id"].tail(10))]
    assert sorted(zip(suggested["id"], suggested["code"], suggested["evidence"], strict=True)) == sorted(
        (expected.ids[p], code, evidence) for p, code, _, evidence, _ in expected.suggestions
    )


# ---------------------------------------------------------------- settings


def test_settings_are_checked_with_one_clear_sentence(codebook: Codebook, digital_work: pd.DataFrame) -> None:
    with pytest.raises(ReviewError, match="max_fit_studies is 2"):
        fit_topics(digital_work, codebook, max_fit_studies=2, **FAST)
    with pytest.raises(ReviewError, match="refit_share is 1.5"):
        fit_topics(digital_work, codebook, refit_share=1.5, **FAST)


def test_review_yaml_accepts_the_topic_scale_settings(tmp_path: Path) -> None:
    from pipeline.errors import ConfigError
    from pipeline.workspace import init_workspace, load_workspace

    ws = init_workspace(tmp_path / "ws")
    assert ws.config.topics.max_fit_studies == 20_000 and ws.config.topics.refit_share == 0.2
    config = ws.root / "review.yaml"
    config.write_text(config.read_text() + "topics:\n  max_fit_studies: 5000\n  refit_share: 0.1\n")
    assert load_workspace(ws.root).config.topics.max_fit_studies == 5000
    config.write_text(config.read_text().replace("refit_share: 0.1", "refit_share: 2"))
    with pytest.raises(ConfigError, match="refit_share"):
        load_workspace(ws.root)


# ---------------------------------------------------------------- the embedding cache


def test_model2vec_cache_keeps_float16_rows_that_read_back_bit_for_bit(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["Schools share staff in a federation.", "Headteachers build trust.", "Owls nest in snags."]
    fresh = embed_texts(texts, "model2vec", cache_dir=cache)
    with sqlite3.connect(cache / "embeddings.sqlite") as conn:
        rows = conn.execute("SELECT length(key), kind, length(vector) FROM vectors2").fetchall()
    assert rows == [(16, 2, 512)] * 3  # 16-byte keys, the model's float16 output: 512 bytes for 256 dims

    monkeypatch.setattr(emb_module._CachedNeural, "_encode", lambda self, t: pytest.fail("should be cached"))
    again = embed_texts(list(reversed(texts)), "model2vec", cache_dir=cache)
    assert np.array_equal(again[::-1], fresh) and again.dtype == np.float32


def test_sentences_are_not_cached_for_model2vec(cache: Path) -> None:
    embedder = make_embedder("model2vec", cache)
    vectors = embedder.embed(["A sentence to quote.", "Another one."], cache=False)
    assert vectors.shape == (2, 256) and not (cache / "embeddings.sqlite").exists()


def test_a_cache_of_the_first_format_is_moved_over_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first format: hex sha256 keys and normalised float32 rows in table `vectors`."""
    import hashlib

    embedder = make_embedder("model2vec", cache)
    text = "Partner schools pooled staff."
    old_vector = np.linspace(0.1, 1.0, 256, dtype=np.float32)
    old_vector /= np.linalg.norm(old_vector)
    with sqlite3.connect(cache / "embeddings.sqlite") as conn:
        conn.execute("CREATE TABLE vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        key = hashlib.sha256(f"{embedder.tag}\x1f{text}".encode()).hexdigest()
        conn.execute("INSERT INTO vectors VALUES (?, ?)", (key, old_vector.tobytes()))
    monkeypatch.setattr(emb_module._CachedNeural, "_encode", lambda self, t: pytest.fail("should be cached"))
    assert np.array_equal(embedder.embed([text])[0], old_vector)
    with sqlite3.connect(cache / "embeddings.sqlite") as conn:
        names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"vectors2"}


def test_saved_studies_file_is_compact(codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path) -> None:
    fit_topics(digital_work, codebook, state_dir=tmp_path / "state", **FAST)
    saved = state_module._read_studies(tmp_path / "state" / "studies.npz")
    assert len(saved) == 200 and saved.keys.dtype == np.dtype("S16") and saved.at_fit.all()
    assert len(saved.sug_code) >= 200  # every study's suggestions, as (code, sentence, score) numbers
    assert (tmp_path / "state" / "studies.npz").stat().st_size < 40_000


def test_a_fitted_model_pickles_for_workers_and_places_studies_the_same(
    codebook: Codebook, digital_work: pd.DataFrame, cache: Path
) -> None:
    """assign_batch is what a Dask worker would run: the FittedTopics it receives is a pickled copy."""
    from pipeline.topics import assign_batch
    from pipeline.topics.model import study_texts

    result = fit_topics(digital_work.head(150), codebook, backend="model2vec", clustering="kmeans",
                        map_threshold=0.2, cache_dir=cache)  # fmt: skip
    clone = pickle.loads(pickle.dumps(result.fitted))  # noqa: S301 - made here
    texts = study_texts(digital_work.tail(50))
    here, there = assign_batch(result.fitted, texts), assign_batch(clone, texts)
    assert here.topics.tolist() == there.topics.tolist() and here.suggestions == there.suggestions
    assert here.suggestions  # threshold 0.2: some topics map, so the evidence path ran
