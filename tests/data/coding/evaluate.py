"""Score the rule engine against the hand-coded validation sets in this folder.

Usage (from the repository root): python tests/data/coding/evaluate.py [gold.jsonl holdout.jsonl ...]

For each category: precision, recall and F1 of code presence (micro over the category's codes), and Cohen's
kappa (sklearn) over every (item, code) cell of the category, present or absent. For benefits, a second kappa
over the labels absent / supporting / contrasting / mixed also scores the direction.

Items are sentences or short abstracts known to come from school-to-school collaboration studies, so the
codebook's scope gate (which skips off-topic records) is switched off here; it is tested on its own.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def load_items(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def predict(engine: Any, items: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """item id -> {code: direction} as the engine codes it (a study-level view of each item)."""
    from pipeline.rules.studies import _combined_direction

    predictions: dict[str, dict[str, str]] = {}
    for item in items:
        by_code: dict[str, list[Any]] = {}
        for hit in engine.code_text(item["text"]):
            by_code.setdefault(hit.code, []).append(hit)
        predictions[item["id"]] = {code: _combined_direction(hits) for code, hits in by_code.items()}
    return predictions


def score(items: list[dict[str, Any]], predictions: dict[str, dict[str, str]], code_ids: list[str]) -> dict:
    """Per-category figures: n_gold, n_pred, tp, precision, recall, f1, kappa (and kappa_direction)."""
    from sklearn.metrics import cohen_kappa_score

    results: dict[str, dict[str, float]] = {}
    categories = sorted(
        {c.split(".")[0] for c in code_ids}, key=["reasons", "facilitators", "barriers", "benefits"].index
    )
    for category in categories + ["all"]:
        codes = [c for c in code_ids if category == "all" or c.startswith(category + ".")]
        gold_bits, pred_bits, gold_labels, pred_labels = [], [], [], []
        for item in items:
            gold, pred = item["codes"], predictions[item["id"]]
            for code in codes:
                gold_bits.append(int(code in gold))
                pred_bits.append(int(code in pred))
                gold_labels.append(gold.get(code, "absent") or "present" if code in gold else "absent")
                pred_labels.append(pred.get(code, "absent") or "present" if code in pred else "absent")
        tp = sum(g and p for g, p in zip(gold_bits, pred_bits, strict=True))
        n_gold, n_pred = sum(gold_bits), sum(pred_bits)
        precision = tp / n_pred if n_pred else 1.0
        recall = tp / n_gold if n_gold else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        row = {
            "n_gold": n_gold,
            "n_pred": n_pred,
            "tp": tp,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "kappa": float(cohen_kappa_score(gold_bits, pred_bits)),
        }
        if category == "benefits":
            row["kappa_direction"] = float(cohen_kappa_score(gold_labels, pred_labels))
        results[category] = row
    return results


def build_unscoped_engine() -> Any:
    from pipeline.codebook import load_codebook
    from pipeline.rules import build_engine

    codebook = load_codebook(ROOT / "codebook" / "school_to_school.yaml")
    return build_engine(dataclasses.replace(codebook, scope=())), codebook.ids()


def report(path: Path, engine: Any, code_ids: list[str]) -> str:
    items = load_items(path)
    results = score(items, predict(engine, items), code_ids)
    lines = [f"{path.name}: {len(items)} items, {sum(len(i['codes']) for i in items)} gold codes"]
    lines.append(f"  {'category':<13}{'gold':>5}{'pred':>5}{'tp':>4}{'P':>7}{'R':>7}{'F1':>7}{'kappa':>8}")
    for category, row in results.items():
        extra = f"   (with direction: {row['kappa_direction']:.3f})" if "kappa_direction" in row else ""
        lines.append(
            f"  {category:<13}{row['n_gold']:>5}{row['n_pred']:>5}{row['tp']:>4}{row['precision']:>7.3f}"
            f"{row['recall']:>7.3f}{row['f1']:>7.3f}{row['kappa']:>8.3f}{extra}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(ROOT))
    engine, code_ids = build_unscoped_engine()
    paths = [Path(a) for a in argv] or [HERE / "gold.jsonl", HERE / "holdout.jsonl"]
    for path in paths:
        print(report(path, engine, code_ids))


if __name__ == "__main__":
    main(sys.argv[1:])
