"""Topic outputs: CSV tables, a summary, candidate inductive codes (YAML) and offline interactive figures.

Files written into the outputs folder (all deterministic for the same result):
    topics.csv            one row per topic: words, size, mapped codes with scores, emergent flag, a quote
    study_topics.csv      one row per study: its topic, similarity to the topic, reassigned-outlier flag
    topic_suggestions.csv codes suggested by topics (method 'topic': below rules and reviewer decisions)
    emergent_themes.csv   topics that match no code: words, nearest code, representative quotes
    emergent_codes.yaml   the emergent themes as candidate inductive codes to paste under `codes:`
    topics_summary.json   status, backend, settings and outlier shares
    topics_figures.html   BERTopic's interactive figures, one self-contained page (plotly.js inline, no CDN)
"""

from __future__ import annotations

import html
import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write, write_csv, write_json
from pipeline.topics.model import N_WORDS, TopicResult

log = logging.getLogger(__name__)

_CDN_RE = re.compile(r"https://cdn\.[A-Za-z0-9.-]+/[^\s\"'`$]*")
DOCUMENT_HOVER_LIMIT = 3000  # above this the documents figure keeps its points but drops the hover texts


def write_topic_outputs(
    result: TopicResult, outputs_dir: Path, *, figures: bool = True, figure_cache: Path | None = None
) -> list[Path]:
    """Write every topic output into outputs_dir; return the paths written (figures only when a model exists;
    `figure_cache`: see write_figures)."""
    outputs_dir = Path(outputs_dir)
    outputs_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "topics.csv": result.topics,
        "study_topics.csv": result.study_topics,
        "topic_suggestions.csv": result.suggestions,
        "emergent_themes.csv": result.emergent,
    }
    paths: list[Path] = []
    for name, frame in tables.items():
        write_csv(frame, outputs_dir / name)
        paths.append(outputs_dir / name)
    with atomic_write(outputs_dir / "emergent_codes.yaml") as handle:
        handle.write(emergent_codes_yaml(result))
    write_json(_summary(result), outputs_dir / "topics_summary.json")
    paths += [outputs_dir / "emergent_codes.yaml", outputs_dir / "topics_summary.json"]
    page = write_figures(result, outputs_dir / "topics_figures.html", cache_dir=figure_cache) if figures else None
    if page:
        paths.append(page)
    log.info("topic outputs (%s) written to %s", result.status, outputs_dir)
    return paths


def _summary(result: TopicResult) -> dict[str, Any]:
    topics = result.topics[result.topics["topic"] != -1] if len(result.topics) else result.topics
    return {
        "status": result.status,
        "backend": result.backend,
        "settings": result.settings,
        "n_topics": int(len(topics)),
        "n_emergent": int(topics["emergent"].sum()) if len(topics) else 0,
        "n_suggestions": int(len(result.suggestions)),
        "outlier_share_before": result.outlier_share_before,
        "outlier_share_after": result.outlier_share_after,
        "method": "topic",
        "precedence": "reviewer > rule > topic",
    }


# ---------------------------------------------------------------- candidate inductive codes


def emergent_codes_yaml(result: TopicResult) -> str:
    """Emergent themes as candidate codes (origin: inductive), as YAML list items to paste under `codes:`."""
    import yaml

    header = [
        "# Candidate inductive codes from emergent topics (topics that match no code of the codebook).",
        f"# Made by the topic model ({result.backend} embeddings, status: {result.status}).",
        "# Before pasting under `codes:` in the codebook: check the category (guessed from the nearest code),",
        "# rename the id and label, write the definition, and keep only phrases that really name the theme.",
    ]
    if result.emergent.empty:
        return "\n".join(header + ["# No emergent themes in this run.", ""])
    items = [_candidate(row) for row in result.emergent.to_dict("records")]
    body = yaml.safe_dump(items, sort_keys=False, allow_unicode=True, width=110, default_flow_style=False)
    indented = "\n".join(f"  {line}" if line else line for line in body.splitlines())
    return "\n".join(header) + "\n" + indented + "\n"


def _candidate(row: dict[str, Any]) -> dict[str, Any]:
    words = [w for w in str(row["words"]).split("; ") if w]
    quotes = [row[f"quote_{k}"] for k in (1, 2, 3) if isinstance(row.get(f"quote_{k}"), str) and row[f"quote_{k}"]]
    return {
        "id": row["suggested_id"],
        "label": " / ".join(w.capitalize() for w in words[:3]) or f"Emergent theme {row['topic']}",
        "origin": "inductive",
        "definition": (
            f"Emergent theme from topic {row['topic']} ({row['size']} studies; nearest code {row['nearest_code']}, "
            f"similarity {row['nearest_score']:.2f}): {', '.join(words[:N_WORDS])}. Write the definition before use."
        ),
        "examples": quotes,
        "phrases": words[:3] or [str(row["label"])],
        "seed_words": words[:N_WORDS],
    }


# ---------------------------------------------------------------- figures


def write_figures(result: TopicResult, path: Path, *, cache_dir: Path | None = None) -> Path | None:
    """BERTopic's figures on one self-contained HTML page (plotly.js inline once, fixed div ids: stable bytes).

    The figures depend on the fitted model only; with `cache_dir` (the topic state folder) they are drawn once per
    fit and kept there, so a run that reuses the model writes the same figures without drawing them again.
    """
    if result.model is None:
        return None
    fit_id = str(result.run.get("fit_id", ""))
    cached = cache_dir / f"figures-{fit_id[:24]}.json" if cache_dir is not None and fit_id else None
    sections = _load_sections(cached) if cached is not None else None
    if sections is None:
        sections = _draw_sections(result)
        if cached is not None:
            _save_sections(cached, sections)
    if not sections:
        return None
    with atomic_write(path) as handle:
        handle.write(_page(result, sections))
    return path


def _draw_sections(result: TopicResult) -> list[tuple[str, str]]:
    sections = []
    for title, make in _figure_makers(result):
        try:
            with warnings.catch_warnings():  # UMAP inside visualize_topics warns that its seed disables threads
                warnings.simplefilter("ignore", UserWarning)
                figure = make()
        except Exception as exc:  # noqa: BLE001 - a figure BERTopic cannot draw for this corpus is skipped, not fatal
            log.info("topic figure %r skipped: %s", title, exc)
            continue
        index = len(sections)
        body = figure.to_html(full_html=False, include_plotlyjs=index == 0, div_id=f"topics-figure-{index}")
        sections.append((title, body))
    return sections


def _load_sections(path: Path) -> list[tuple[str, str]] | None:
    try:
        return [(str(title), str(body)) for title, body in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError):
        return None  # missing or unreadable: draw them again


def _save_sections(path: Path, sections: list[tuple[str, str]]) -> None:
    for old in path.parent.glob("figures-*.json"):  # figures of earlier fits
        old.unlink(missing_ok=True)
    with atomic_write(path) as handle:
        handle.write(json.dumps(sections))


def _figure_makers(result: TopicResult) -> list[tuple[str, Any]]:
    model = result.model
    n_topics = int((result.topics["topic"] != -1).sum())
    hover = len(result.documents) <= DOCUMENT_HOVER_LIMIT
    return [
        ("Topic words (c-TF-IDF)", lambda: model.visualize_barchart(top_n_topics=min(n_topics, 24), n_words=8)),
        ("Intertopic distance map", lambda: model.visualize_topics()),
        ("Topic hierarchy", lambda: model.visualize_hierarchy()),
        ("Topic similarity", lambda: model.visualize_heatmap()),
        ("Studies by topic", lambda: _documents_figure(result, hover)),
    ]


def _documents_figure(result: TopicResult, hover: bool) -> Any:
    """visualize_documents shuffles each topic's studies with numpy's global RNG: seed it, then put it back."""
    import numpy as np

    state = np.random.get_state()
    np.random.seed(int(result.settings.get("seed", 42)))
    try:
        return result.model.visualize_documents(
            result.documents, reduced_embeddings=result.reduced_embeddings, hide_document_hover=not hover
        )
    finally:
        np.random.set_state(state)


def _page(result: TopicResult, sections: list[tuple[str, str]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Topics</title></head><body>',
        f"<h1>Topics ({html.escape(result.backend)} embeddings)</h1>",
        f"<p>Status: {html.escape(result.status)}. Outliers: {result.outlier_share_before:.1%} before reduction, "
        f"{result.outlier_share_after:.1%} after. Codes suggested by topics have method 'topic' and come after "
        "rules and reviewer decisions.</p>",
    ]
    for title, body in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(body)
    parts.append("</body></html>")
    # plotly.js carries default CDN addresses for map topojson and map icons, features these figures never
    # use; blank them so that the page holds no network address at all and works the same offline
    return _CDN_RE.sub("", "\n".join(parts)) + "\n"
