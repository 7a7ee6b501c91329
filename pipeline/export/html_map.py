"""The interactive evidence map: ONE self-contained HTML file that works offline.

A heatmap of codes (rows, grouped by category, deductive/inductive marked) by a facet chosen by the reader
(country, design, year band, theoretical lens); clicking a cell lists the studies and their quotes, with who coded
each (rule, topic, or 'reviewer: <name>') and the confidence. A search box and filters (category, method,
direction) recount the cells. With agreement tables, an Agreement section lists them (figures formatted here, as
text), or says there are no reviewer decisions yet. The CSS and JavaScript are this package's own
(evidence_map.html); nothing is fetched.

Untrusted text (titles, abstracts, quotes, authors, file names) never becomes markup: the data travel as JSON in
a <script type="application/json"> element with '<', '>' and '&' written as \\u003c, \\u003e, \\u0026 (so no
text can close the element), and the page inserts them with textContent only. A Content-Security-Policy allows
only the page's own script and style (by hash) and no network at all.

A review of more than `full_map_max_studies` studies (FULL_MAP_MAX_STUDIES, 20,000) would make a page no browser
opens: its map is *sampled*. The heatmap still counts every study: the counts of every cell, for every facet and
every choice of the method and direction filters, and the totals, are computed here and embedded. Quotes are
embedded only for the first `sample_per_cell` studies (SAMPLE_PER_CELL, 10) of each cell of each facet and of each
code's 'All' cell, oldest first (the matrix order), and abstracts not at all; a note on the page and in the cell's
panel says how many studies the cell has, how many the page shows, and that evidence_matrix_long.csv (and the
XLSX) holds them all. The search box then searches the quotes the page holds, and says so. The page is the same
template with a few of its functions redefined (evidence_map_sampled.html, added at the end of its script: a later
function declaration wins), so the escaping and the CSP are the same.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.io import atomic_write
from pipeline.synth import FACETS, Matrix, Row, facet_labels, split_list

TEMPLATE = "evidence_map.html"
SAMPLED_SCRIPT = "evidence_map_sampled.html"  # a fragment of the page script (.html: shipped as package data)
FULL_MAP_MAX_STUDIES = 20_000  # above this, the page embeds a sample of the studies (see the module docstring)
SAMPLE_PER_CELL = 10  # studies with their quotes embedded per heatmap cell in a sampled map
LONG_CSV = "evidence_matrix_long.csv"
_SCRIPT_END = "  setUp();\n}());\n</script>"
_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_PLACEHOLDER_RE = re.compile(r"\{\{(TITLE|CSP|DATA)\}\}")
_BLOCK_RE = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.S) for tag in ("script", "style")}


def write_html_map(
    matrix: Matrix, prisma: Mapping[str, Any] | None, path: Path, *,
    agreement: Mapping[str, pd.DataFrame] | None = None,
    full_map_max_studies: int = FULL_MAP_MAX_STUDIES, sample_per_cell: int = SAMPLE_PER_CELL,
) -> Path:
    """Write the evidence map to `path` atomically; identical inputs give identical bytes."""
    page = render_html(matrix, prisma, agreement=agreement, full_map_max_studies=full_map_max_studies,
                       sample_per_cell=sample_per_cell)
    with atomic_write(path, newline="\n") as handle:
        handle.write(page)
    return path


def render_html(
    matrix: Matrix, prisma: Mapping[str, Any] | None = None, *, agreement: Mapping[str, pd.DataFrame] | None = None,
    full_map_max_studies: int = FULL_MAP_MAX_STUDIES, sample_per_cell: int = SAMPLE_PER_CELL,
) -> str:
    template = _resource(TEMPLATE)
    sampled = is_sampled(matrix, full_map_max_studies)
    if sampled:
        template = _sampled_template(template)
    data = map_data(matrix, prisma, agreement=agreement, full_map_max_studies=full_map_max_studies,
                    sample_per_cell=sample_per_cell)
    values = {
        "TITLE": escape(_page_title(matrix), quote=True),
        "CSP": _csp(template),
        "DATA": embed_json(data),
    }
    # One pass over the template: a placeholder-looking string inside the data is never substituted.
    return _PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)


def is_sampled(matrix: Matrix, full_map_max_studies: int = FULL_MAP_MAX_STUDIES) -> bool:
    """True when the map holds quotes for a sample of the studies only (more than full_map_max_studies)."""
    return matrix.n_studies > full_map_max_studies


def _resource(name: str) -> str:
    return resources.files("pipeline.export").joinpath(name).read_text(encoding="utf-8")


def _sampled_template(template: str) -> str:
    """The page with the sampled map's functions added at the end of its script (they replace the full map's)."""
    if template.count(_SCRIPT_END) != 1:
        raise RuntimeError(f"{TEMPLATE} no longer ends its script with setUp(); update _SCRIPT_END")
    overrides = _resource(SAMPLED_SCRIPT)
    return template.replace(_SCRIPT_END, overrides + _SCRIPT_END)


def embed_json(data: Any) -> str:
    """JSON that is safe inside a <script> element: no '<', '>' or '&' (nor JS line separators) appear raw."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _JSON_ESCAPES[m.group(0)], text)


def _page_title(matrix: Matrix) -> str:
    return f"Evidence map: {matrix.title}" if matrix.title else "Evidence map"


def _csp(page: str) -> str:
    """Allow exactly the template's own inline script and style (by SHA-256), nothing from anywhere else.

    Only `<script>` / `<style>` without attributes are hashed: the data element (type application/json) is never
    run. The template keeps its placeholders out of those blocks, so their hashes hold after substitution.
    """
    hashes = {}
    for tag, pattern in _BLOCK_RE.items():
        blocks = pattern.findall(page)
        hashes[tag] = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(b.encode("utf-8")).digest()).decode("ascii") + "'"
            for b in blocks
        )
    return (
        f"default-src 'none'; script-src {hashes['script']}; style-src {hashes['style']}; "
        "img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'"
    )


# ---------------------------------------------------------------- the data the page reads


def map_data(
    matrix: Matrix, prisma: Mapping[str, Any] | None = None, *, agreement: Mapping[str, pd.DataFrame] | None = None,
    full_map_max_studies: int = FULL_MAP_MAX_STUDIES, sample_per_cell: int = SAMPLE_PER_CELL,
) -> dict[str, Any]:
    """Everything the page shows, as plain JSON types (studies and codes referenced by index); the key
    'agreement' is there only when agreement tables are given, 'sample' only in a sampled map."""
    sampled = is_sampled(matrix, full_map_max_studies)
    if sampled:
        from pipeline.export.html_sample import sample_rows

        sample = sample_rows(matrix, sample_per_cell)
        studies = matrix.studies_at(sample.study_ranks).to_dict("records")
        long = matrix.long_at(sample.long_rows)
    else:
        studies, long = matrix.studies.to_dict("records"), matrix.long
    study_index = {s["study_id"]: i for i, s in enumerate(studies)}
    codes = matrix.codes.to_dict("records")
    code_index = {c["code"]: i for i, c in enumerate(codes)}
    data: dict[str, Any] = {
        "title": _page_title(matrix),
        "version": matrix.version,
        "categories": _categories(codes),
        "codes": [_code(c) for c in codes],
        "studies": [_study(s, with_abstract=not sampled) for s in studies],
        "evidence": [_evidence(row, study_index, code_index) for row in long.to_dict("records")],
        "facets": [
            {"id": name, "label": FACETS[name][2], "values": list(matrix.facet_values.get(name, []))}
            for name in FACETS
        ],
        "prisma": _prisma(prisma),
    }
    if agreement is not None:
        data["agreement"] = agreement_data(agreement)
    if sampled:
        data["sample"] = sample.data(matrix, LONG_CSV)
    return data


def agreement_data(agreement: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """The agreement tables as the page shows them: every figure already formatted as text ('70.0%', '0.571',
    'n/a'); `tables` is empty when there is no reviewer decision yet, and `empty` then says so."""
    from pipeline.export.agreement_view import NO_DECISIONS, UNDEFINED_NOTE, shown_tables

    tables = shown_tables(agreement)
    return {
        "empty": "" if tables else NO_DECISIONS,
        "note": UNDEFINED_NOTE if tables else "",
        "tables": [_agreement_table(name, frame) for name, frame in tables.items()],
    }


def _agreement_table(name: str, frame: pd.DataFrame) -> dict[str, Any]:
    from pipeline.export.agreement_view import OVERALL_CODES, display_value, is_numeric, note, title

    columns = [str(c) for c in frame.columns]
    rows = []
    for values in frame.itertuples(index=False, name=None):
        record = dict(zip(columns, values, strict=True))
        rows.append({
            "cells": [display_value(c, record[c]) for c in columns],
            "overall": str(record.get("code", "")) in OVERALL_CODES,
        })
    return {
        "id": name, "title": title(name), "note": note(name),
        "columns": [{"id": c, "label": c.replace("_", " "), "numeric": is_numeric(frame, c)} for c in columns],
        "rows": rows,
    }


def _text(value: Any) -> str:
    return "" if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)) else str(value)


def _categories(codes: Sequence[Row]) -> list[dict[str, str]]:
    names = list(dict.fromkeys(c["category"] for c in codes))
    return [{"id": name, "label": name.replace("_", " ").capitalize()} for name in names]


def _code(code: Row) -> dict[str, Any]:
    return {
        "id": code["code"], "category": code["category"], "label": _text(code["label"]),
        "definition": _text(code["definition"]), "origin": code["origin"], "directional": bool(code["directional"]),
    }


def _study(study: Row, *, with_abstract: bool = True) -> dict[str, Any]:
    year: Any = study.get("year")
    return {
        "id": study["study_id"],
        "title": _text(study.get("title")),
        "authors": _text(study.get("authors")),
        "year": int(year) if _text(year) else None,
        "doi": _text(study.get("doi")),
        "venue": _text(study.get("venue")),
        "abstract": _text(study.get("abstract")) if with_abstract else "",
        "countries": split_list(study.get("countries")),
        "design": _text(study.get("design")),
        "lens": split_list(study.get("lens")),
        "facets": {name: facet_labels(study, name) for name in FACETS},
    }


def _evidence(row: Row, study_index: dict[str, int], code_index: dict[str, int]) -> dict[str, Any]:
    confidence: Any = row.get("confidence")
    return {
        "s": study_index[row["study_id"]],
        "c": code_index[row["code"]],
        "direction": _text(row.get("direction")),
        "quote": _text(row.get("evidence")),
        "method": _text(row.get("method")),
        "confidence": round(float(confidence), 3) if _text(confidence) else None,
        "by": _text(row.get("decided_by")),
    }


def _prisma(prisma: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if prisma is None:
        return None
    from pipeline.export.prisma import check_prisma

    return check_prisma(prisma)
