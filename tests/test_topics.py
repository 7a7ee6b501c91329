"""Topic models: offline embeddings and their cache, reproducible topics, mapping to codes, emergent themes,
suggestions, small-corpus fallback and offline figures (pipeline/topics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.codebook import Codebook, codebook_from_dict, load_codebook
from pipeline.errors import ReviewError
from pipeline.topics import (
    distill_model2vec,
    embed_texts,
    emergent_codes_yaml,
    fit_topics,
    mapping,
    write_topic_outputs,
)
from pipeline.topics import embeddings as emb_module
from pipeline.topics.embeddings import MODEL2VEC_DIRNAME, default_cache_dir, make_embedder

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "topics"
CODEBOOK = REPO / "codebook" / "school_to_school.yaml"


@pytest.fixture(scope="session")
def codebook() -> Codebook:
    return load_codebook(CODEBOOK)


@pytest.fixture(scope="session")
def digital_work() -> pd.DataFrame:
    """200 real information-systems abstracts: off-topic for the school-to-school codebook."""
    return pd.read_csv(DATA / "digital_work_200.csv", dtype=str)


@pytest.fixture(scope="session")
def model2vec_dir() -> Path:
    """The distilled model: from REVIEW_CACHE_DIR or the default cache, distilled there once if missing."""
    return distill_model2vec(default_cache_dir())


@pytest.fixture
def cache(tmp_path: Path, model2vec_dir: Path) -> Path:
    """A fresh embedding cache that reuses the distilled model (the embeddings start empty)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / MODEL2VEC_DIRNAME).symlink_to(model2vec_dir)
    return cache


def seed_studies() -> pd.DataFrame:
    """The bundled seeds corpus, read by the project's own ingest readers (40 records, most truncated copies)."""
    from pipeline.ingest import detect_format, open_source, read_source
    from pipeline.records import records_to_frame

    records = []
    for path in sorted((REPO / "corpus" / "seeds").glob("*.txt")):
        source = open_source(path)
        records.extend(read_source(source, detect_format(source)))
    frame = records_to_frame(records)  # each seed file numbers its own records: record_id is the unique key
    # most records are truncated copies of another: keep one per opening, as deduplication would
    frame = frame.assign(opening=frame["abstract"].str[:60]).drop_duplicates("opening")
    return frame[["record_id", "title", "abstract"]].rename(columns={"record_id": "id"}).reset_index(drop=True)


def output_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ---------------------------------------------------------------- embeddings


def test_tfidf_embeds_normalised_rows_and_separates_topics() -> None:
    texts = [
        "Schools collaborate in federations to share staff and raise standards.",
        "Headteachers of partner schools built trust through joint practice development.",
        "Black-backed woodpeckers nest in burned conifer forests after wildfire.",
        "Post-fire salvage logging reduced woodpecker nest densities in burned forests.",
    ]
    vectors = embed_texts(texts, "tfidf")
    assert vectors.shape[0] == 4 and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[2, 3] > sims[2, 0] and sims[0, 1] > sims[0, 3]


def test_minilm_embeds_offline_from_the_packaged_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    texts = [
        "Schools in the federation shared teachers and resources.",
        "Partner schools pooled staff and facilities in a federation.",
        "Woodpeckers forage on beetle larvae in burned trees.",
        "Trust between headteachers enabled the partnership.",
        "Wildfire changed the bird community of the pine forest.",
    ]
    vectors = embed_texts(texts, "minilm", cache_dir=tmp_path)
    assert vectors.shape == (5, 384)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.5 > sims[0, 2]
    assert (tmp_path / "embeddings.sqlite").is_file()


def test_model2vec_embeds_offline_with_the_distilled_model(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = [
        "Schools collaborate to raise standards.",
        "Partner schools work together to improve.",
        "Owls nest in snags.",
    ]
    vectors = embed_texts(texts, "model2vec", cache_dir=cache)
    assert vectors.shape == (3, 256)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])


def test_cache_embeds_only_new_texts(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    first = embed_texts(["Schools share staff.", "Leaders build trust."], "model2vec", cache_dir=cache)
    calls: list[list[str]] = []
    original = emb_module._CachedNeural._encode

    def spy(self: emb_module._CachedNeural, texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return original(self, texts)

    monkeypatch.setattr(emb_module._CachedNeural, "_encode", spy)
    again = embed_texts(["Leaders build trust.", "Schools share staff.", "A new study."], "model2vec", cache_dir=cache)
    assert calls == [["A new study."]]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[1], first[0])


def test_distill_model2vec_runs_once_and_caches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    made: list[Path] = []

    class FakeModel:
        def save_pretrained(self, folder: str) -> None:
            (Path(folder) / "model.safetensors").write_bytes(b"weights")

    def fake_distill(base: Path) -> FakeModel:
        made.append(base)
        return FakeModel()

    monkeypatch.setattr(emb_module, "_distill", fake_distill)
    first = distill_model2vec(tmp_path)
    second = distill_model2vec(tmp_path)
    assert first == second == tmp_path / MODEL2VEC_DIRNAME
    assert len(made) == 1 and made[0] == emb_module.minilm_path()
    assert [p.name for p in tmp_path.iterdir()] == [MODEL2VEC_DIRNAME]  # no temporary folder left behind


def test_default_cache_dir_follows_review_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REVIEW_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("REVIEW_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "living-review"


def test_unknown_backend_and_bad_table_are_clear_errors(codebook: Codebook) -> None:
    with pytest.raises(ReviewError, match="one of model2vec, minilm, tfidf"):
        embed_texts(["a"], "word2vec")
    with pytest.raises(ReviewError, match="no 'abstract' column"):
        fit_topics(pd.DataFrame({"id": ["1"], "title": ["t"]}), codebook, backend="tfidf")
    with pytest.raises(ReviewError, match="id '1' twice"):
        fit_topics(pd.DataFrame({"id": ["1", "1"], "abstract": ["a", "b"]}), codebook, backend="tfidf")


# ---------------------------------------------------------------- reproducibility and outliers


def test_default_pipeline_is_byte_identical_and_reduces_outliers(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    """UMAP + HDBSCAN with fixed seeds, run twice: the same files, byte for byte."""
    first = fit_topics(digital_work, codebook, backend="tfidf", seed=7)
    second = fit_topics(digital_work, codebook, backend="tfidf", seed=7)
    write_topic_outputs(first, tmp_path / "a", figures=False)  # the figures' bytes: test_figures_...
    write_topic_outputs(second, tmp_path / "b", figures=False)
    assert first.status == "ok"
    assert output_bytes(tmp_path / "a") == output_bytes(tmp_path / "b")
    assert 0 < first.outlier_share_before and first.outlier_share_after <= first.outlier_share_before
    moved = first.study_topics[first.study_topics["reassigned"]]
    assert len(moved) == round((first.outlier_share_before - first.outlier_share_after) * len(digital_work))
    assert (moved["topic"] != -1).all()


def test_one_dominant_hdbscan_topic_falls_back_to_kmeans(
    codebook: Codebook, digital_work: pd.DataFrame, cache: Path
) -> None:
    """model2vec + UMAP + HDBSCAN put 192 of these 200 abstracts in one topic: not a useful set of topics."""
    result = fit_topics(digital_work, codebook, backend="model2vec", cache_dir=cache)
    assert result.status.startswith("fallback: HDBSCAN put ") and "of the studies in one topic" in result.status
    assert result.settings["clustering_used"] == "kmeans"
    assert result.topics["size"].max() <= len(digital_work) / 2


def test_kmeans_is_reproducible_and_has_no_outliers(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    first = fit_topics(digital_work, codebook, backend="tfidf", clustering="kmeans")
    second = fit_topics(digital_work, codebook, backend="tfidf", clustering="kmeans")
    pd.testing.assert_frame_equal(first.topics, second.topics)
    pd.testing.assert_frame_equal(first.study_topics, second.study_topics)
    assert first.outlier_share_before == first.outlier_share_after == 0.0
    assert first.topics["size"].sum() == len(digital_work) and len(first.topics) >= 2


# ---------------------------------------------------------------- mapping, emergent themes, suggestions


@pytest.mark.parametrize("backend", ["tfidf", "model2vec"])
def test_topic_built_from_a_codes_examples_maps_to_that_code(backend: str, codebook: Codebook, cache: Path) -> None:
    corpus = [e.text for c in codebook.codes for e in c.examples]
    embedder = make_embedder(backend, cache).fit(corpus, extra=mapping.codebook_texts(codebook))
    space = mapping.make_space(embedder, corpus, codebook)
    codes = mapping.code_vectors(codebook, space)
    wanted = [
        "facilitators.trust_relationships",
        "barriers.competition",
        "benefits.student_outcomes",
        "reasons.isolation",
    ]
    for code_id in wanted:
        code = codebook.code(code_id)
        topic = mapping.topic_vectors([(list(code.seed_words), [e.text for e in code.examples])], space)
        scores = mapping.score_matrix(topic, codes, space)[0]
        mapped = mapping.mapped_codes(scores, codes.ids, mapping.MAP_THRESHOLDS[backend])
        assert mapped and mapped[0][0] == code_id, (code_id, mapped)


def test_off_codebook_abstracts_give_emergent_themes(
    codebook: Codebook, digital_work: pd.DataFrame, cache: Path
) -> None:
    result = fit_topics(digital_work, codebook, backend="model2vec", clustering="kmeans", cache_dir=cache)
    topics = result.topics[result.topics["topic"] != -1]
    assert topics["emergent"].all() and result.suggestions.empty
    assert list(result.emergent["topic"]) == list(topics["topic"])
    texts = dict(zip(digital_work["id"], digital_work["title"] + " " + digital_work["abstract"], strict=True))
    for row in result.emergent.to_dict("records"):
        assert row["words"] and row["quote_1"] and row["quote_1"] in " ".join(texts[row["quote_1_id"]].split())
    snippet = emergent_codes_yaml(result)
    items = yaml.safe_load(snippet)
    assert len(items) == len(topics) and {item["origin"] for item in items} == {"inductive"}
    data = yaml.safe_load(CODEBOOK.read_text(encoding="utf-8"))
    data["codes"].extend(items)
    extended = codebook_from_dict(data)  # the snippet is valid codebook YAML: ids, categories, rules
    assert len(extended.codes) == len(codebook.codes) + len(items)


def test_suggestions_are_topic_method_with_study_evidence(codebook: Codebook, digital_work: pd.DataFrame) -> None:
    """With the threshold at 0 every topic maps, so every study gets its topic's codes as suggestions."""
    from pipeline.assign import assign

    result = fit_topics(digital_work, codebook, backend="tfidf", clustering="kmeans", map_threshold=0.0)
    sugg = result.suggestions
    assert list(sugg.columns[:7]) == ["id", "code", "category", "direction", "evidence", "method", "confidence"]
    assert set(sugg["method"]) == {"topic"} and set(sugg["direction"]) == {""}
    assert set(sugg["id"]) == set(digital_work["id"])
    texts = dict(zip(digital_work["id"], digital_work["title"] + " " + digital_work["abstract"], strict=True))
    assert all(ev in " ".join(texts[i].split()) for i, ev in zip(sugg["id"], sugg["evidence"], strict=True))
    scores = {row["topic"]: row["mapped_codes"] for row in result.topics.to_dict("records")}
    first = sugg.iloc[0]
    assert f"{first['code']} ({first['confidence']:.4f})" in scores[first["topic"]]
    assigned = assign(None, sugg)
    assert set(assigned["method"]) == {"topic"} and len(assigned) == len(sugg)


# ---------------------------------------------------------------- small corpora and outputs


def test_seeds_corpus_falls_back_and_writes_outputs(codebook: Codebook, tmp_path: Path) -> None:
    studies = seed_studies()
    result = fit_topics(studies, codebook, backend="tfidf")
    assert result.status.startswith("fallback: ") and "PCA + KMeans" in result.status
    assert result.topics["size"].sum() == len(studies) and len(result.topics) >= 2
    paths = write_topic_outputs(result, tmp_path)
    assert {p.name for p in paths} >= {"topics.csv", "study_topics.csv", "emergent_themes.csv", "topics_figures.html"}
    summary = json.loads((tmp_path / "topics_summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == result.status


def test_too_few_studies_are_skipped_with_a_message(codebook: Codebook, tmp_path: Path) -> None:
    studies = seed_studies().head(3)
    result = fit_topics(studies, codebook, backend="tfidf")
    assert result.status == "skipped: 3 studies with text, topic modelling needs at least 4"
    assert result.model is None and result.topics.empty and result.suggestions.empty
    names = {p.name for p in write_topic_outputs(result, tmp_path)}
    assert "topics_figures.html" not in names
    assert (tmp_path / "topics.csv").read_text(encoding="utf-8-sig").startswith("topic,label,size,words,mapped_codes")


def test_figures_are_self_contained_offline_html(
    codebook: Codebook, digital_work: pd.DataFrame, tmp_path: Path
) -> None:
    result = fit_topics(digital_work, codebook, backend="tfidf", clustering="kmeans")
    write_topic_outputs(result, tmp_path / "a")
    write_topic_outputs(result, tmp_path / "b")
    page = (tmp_path / "a" / "topics_figures.html").read_text(encoding="utf-8")
    assert page == (tmp_path / "b" / "topics_figures.html").read_text(encoding="utf-8")
    assert "https://cdn" not in page and "<script src=" not in page and "<link" not in page
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js is inline
    assert page.count('id="topics-figure-') >= 3
