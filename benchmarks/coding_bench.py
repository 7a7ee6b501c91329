"""Abstracts per second of the rule engine, fast path (pre-filter) and slow path (spaCy on every sentence).

Usage: python benchmarks/coding_bench.py [--shared ../shared] [--limit N] [--repeat R]

Corpora:
- exports: the real abstracts in shared/data/exports (Scopus/Zotero CSV and RIS files, parsed crudely here:
  the benchmark measures coding, not ingestion). Off-topic for this codebook (ecology, veterinary, computing),
  so few sentences pass the pre-filter: the fast path's best case.
- on-topic: the school-to-school validation abstracts and seed sentences (tests/data/coding/gold.jsonl)
  joined into ~200-word abstracts, where most sentences are candidates: the fast path's worst case.
Prints figures; asserts nothing (the equality of both paths is a test, tests/test_rules.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_RIS_AB = re.compile(r"^(?:AB|N2)  - (.*)$", re.MULTILINE)


def export_abstracts(shared: Path, limit: int) -> list[str]:
    """Abstracts of 80+ words from the CSV and RIS exports (crude parsing, enough for timing)."""
    import pandas as pd

    texts: list[str] = []
    for path in sorted((shared / "data" / "exports" / "csv").glob("*.csv")):
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str, on_bad_lines="skip")
        for column in ("Abstract", "Abstract Note"):
            if column in frame.columns:
                texts.extend(frame[column].dropna().tolist())
    for path in sorted((shared / "data" / "exports" / "ris").glob("*")):
        texts.extend(_RIS_AB.findall(path.read_text(encoding="utf-8-sig", errors="replace")))
    seen: set[str] = set()
    kept = []
    for text in texts:
        text = text.strip()
        if len(text.split()) >= 80 and text not in seen and "[No abstract available]" not in text:
            seen.add(text)
            kept.append(text)
    return kept[:limit]


def on_topic_abstracts(count: int) -> list[str]:
    """~200-word school-to-school abstracts built from the validation sentences (deterministic)."""
    items = [json.loads(line) for line in (ROOT / "tests/data/coding/gold.jsonl").read_text().splitlines()]
    sentences = [s for item in items for s in re.split(r"(?<=[.!?])\s+", item["text"]) if len(s.split()) > 5]
    abstracts = []
    for i in range(count):
        words, parts, j = 0, [], i
        while words < 200:
            sentence = sentences[(j * 7) % len(sentences)]
            parts.append(sentence)
            words += len(sentence.split())
            j += 1
        abstracts.append(" ".join(parts))
    return abstracts


def rate(code, texts: list[str], repeat: int) -> tuple[float, int]:
    """Abstracts per CPU second of this process (best of `repeat`; CPU time is steadier than wall time
    on a shared machine, and the engine is single-threaded)."""
    best = float("inf")
    hits = 0
    for _ in range(repeat):
        start = time.process_time()
        hits = sum(len(code(text)) for text in texts)
        best = min(best, time.process_time() - start)
    return len(texts) / best, hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from pipeline.codebook import load_codebook
    from pipeline.rules import build_engine

    started = time.perf_counter()
    codebook = load_codebook(ROOT / "codebook" / "school_to_school.yaml")
    engine = build_engine(codebook)
    ungated = build_engine(dataclasses.replace(codebook, scope=()))
    print(f"engines built in {time.perf_counter() - started:.1f} s")
    exports = export_abstracts(args.shared, args.limit)
    on_topic = on_topic_abstracts(min(args.limit, 1000))
    _report("exports, bundled codebook (scope gate on: off-topic records are skipped)", engine, exports, args)
    _report("exports, scope gate off (the pre-filter on real off-topic text)", ungated, exports, args)
    _report("on-topic school-to-school abstracts", engine, on_topic, args)


def _report(name: str, engine, texts: list[str], args: argparse.Namespace) -> None:
    words = sum(len(t.split()) for t in texts) / max(1, len(texts))
    scoped = [t for t in texts if engine.in_scope(t)]
    chunks = sum(len(engine._chunker.chunks(t)) for t in scoped)
    candidates = sum(len(engine._chunker.chunks(t[s:e])) for t in scoped for s, e in engine.candidate_chunks(t))
    fast, fast_hits = rate(engine.code_text, texts, args.repeat)
    slow, slow_hits = rate(engine.code_text_slow, texts, 1)
    print(
        f"{name}: {len(texts)} abstracts, {words:.0f} words on average, {len(scoped)} in scope; "
        f"{candidates}/{chunks} sentence chunks pass the pre-filter\n"
        f"  fast path: {fast:,.0f} abstracts/s ({fast * words / 200:,.0f}/s at 200 words), {fast_hits} hits\n"
        f"  slow path: {slow:,.0f} abstracts/s ({slow * words / 200:,.0f}/s at 200 words), {slow_hits} hits"
    )


if __name__ == "__main__":
    main()
