"""Topic-model benchmark: speed and memory, topic quality, and the mapping thresholds, on real abstracts.

    python benchmarks/topics_bench.py speed      fit time and peak memory, 1k and 10k abstracts, per backend
    python benchmarks/topics_bench.py quality    coherence, diversity, separation and outliers per corpus and backend
    python benchmarks/topics_bench.py calibrate  topic -> code scores of off-codebook topics vs gold code groups
    python benchmarks/topics_bench.py scale      100k studies: capped fit, placement, incremental +1 %, memory
    python benchmarks/topics_bench.py distill    how long distilling the model2vec model takes (into a temp dir)

Scale corpus: the works of benchmarks/synthetic.py (seed 0, 30 % on-topic: abstracts made of the seed and
hand-coded sentences, so topics map to codes and get suggestions; the rest real titles and abstracts of
../shared/data recombined), id, title and abstract, read in batches of 5,000 as a store would give them.
Each (backend, size) runs in a fresh subprocess with an empty embedding cache and no saved model:
  scan+fit   read the studies once, draw the sample (topics.max_fit_studies), embed it, fit, map to codes;
  place      embed and place every other study with the fitted model, ASSIGN_BATCH at a time;
  finish     the tables of every study, and the saved model (model.pkl + studies.npz);
  outputs    write_topic_outputs (CSV, YAML, JSON, the figures page);
  +1%        a new run on the corpus plus 1 % new studies, reusing the saved model: only those are embedded;
  rerun      the same again with nothing new.
Peak RSS is sampled by pipeline.metrics.StageMeter over the process and its children (HDBSCAN's and
joblib's worker processes); cpu s is user + system time of the same. The corpus is made once (timed apart)
and written as one pickled frame per batch; every pass reads it back from disk, as a flow reads the store.

Corpora (../shared/data, see its MANIFEST.md), all off-topic for the school-to-school codebook:
- digital_work: 1,538 distinct abstracts (information systems; bib-dedupe records_pre_merged.csv);
- zotero: 1,128 abstracts (veterinary; ASySD's Zotero CSV export);
- scopus: 691 abstracts (ecology; litsearchr's Scopus CSV export).
1k = the first 1,000 of all three pooled; 10k = the pool repeated with 10 % of the words of each copy dropped
(seeded), so every text is new to the embedding cache. Each speed run is a fresh subprocess with an empty
embedding cache (peak memory is that process's max RSS), then fitted again with the embeddings cached (the
"rerun" column: a living-review re-run); the distilled model2vec model is reused from the
default cache (REVIEW_CACHE_DIR or ~/.cache/living-review; distilled first if missing).

Quality measures:
- npmi: mean NPMI coherence of each topic's top-10 words, from document co-occurrence in the corpus (-1..1);
- diversity: distinct words among all topics' top-10 words / (10 x topics);
- sil_minilm: silhouette (cosine) of the topic labels in MiniLM space, a common yardstick for every backend;
- ari_minilm: adjusted Rand index of the topic labels against the MiniLM run's labels;
- outliers: share of studies HDBSCAN left out, before and after outlier reduction.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"

CORPORA = {
    "digital_work": ("dedup-benchmarks/bib-dedupe/digital_work/records_pre_merged.csv", "ID", "title", "abstract"),
    "zotero": ("exports/csv/asysd_zotero_export.csv", "Key", "Title", "Abstract Note"),
    "scopus": ("exports/csv/litsearchr_scopus.csv", "EID", "Title", "Abstract"),
}


def load_corpus(name: str) -> Any:
    import pandas as pd

    path, id_col, title_col, abstract_col = CORPORA[name]
    raw = pd.read_csv(SHARED / path, encoding="utf-8-sig", dtype=str)
    frame = pd.DataFrame({"id": raw[id_col], "title": raw[title_col], "abstract": raw[abstract_col]})
    frame = frame[frame["abstract"].fillna("").str.strip() != ""]
    return frame.drop_duplicates("abstract").drop_duplicates("id").reset_index(drop=True)


def pooled(size: int) -> Any:
    """`size` real abstracts; past the pool, copies with 10 % of their words dropped (seeded)."""
    import numpy as np
    import pandas as pd

    pool = pd.concat([load_corpus(n) for n in CORPORA], ignore_index=True)
    if size <= len(pool):
        return pool.head(size).reset_index(drop=True)
    rng = np.random.default_rng(0)
    rows = pool.to_dict("records")
    out = list(rows)
    copy = 0
    while len(out) < size:
        copy += 1
        for row in rows:
            words = str(row["abstract"]).split()
            keep = [w for w in words if rng.random() > 0.1] or words
            out.append({"id": f"{row['id']}~{copy}", "title": row["title"], "abstract": " ".join(keep)})
            if len(out) == size:
                break
    return pd.DataFrame(out)


def codebook() -> Any:
    from pipeline.codebook import load_codebook

    return load_codebook(ROOT / "codebook" / "school_to_school.yaml")


def _quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    for name in ("BERTopic", "bertopic", "numba", "model2vec", "skeletoken", "sentence_transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ---------------------------------------------------------------- speed


def speed(args: argparse.Namespace) -> None:
    print(
        f"{'backend':10} {'clustering':10} {'n':>6} {'fit s':>7} {'rerun s':>7} {'peak MB':>8} {'topics':>6} "
        f"{'outl. before':>12} {'after':>6}"
    )
    for size in args.sizes:
        for backend in args.backends:
            if backend == "minilm" and size > args.minilm_max:
                print(f"{backend:10} {'':10} {size:>6}  skipped (MiniLM encodes ~17 abstracts/s here; --minilm-max)")
                continue
            for clustering in args.clusterings:
                out = subprocess.run(
                    [sys.executable, __file__, "_one", backend, str(size), clustering],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                if out.returncode:
                    print(f"{backend:10} {clustering:10} {size:>6}  FAILED: {out.stderr.strip().splitlines()[-1:]}")
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(
                    f"{backend:10} {clustering:10} {size:>6} {r['fit_s']:>7.1f} {r['warm_s']:>7.1f} "
                    f"{r['peak_mb']:>8.0f} {r['topics']:>6} "
                    f"{r['before']:>12.1%} {r['after']:>6.1%}  {r['status']}"
                )


def _one(backend: str, size: int, clustering: str) -> None:
    _quiet()
    from pipeline.topics import fit_topics

    studies, book = pooled(size), codebook()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        if backend == "model2vec":  # reuse the distilled model, not the embeddings
            from pipeline.topics.embeddings import MODEL2VEC_DIRNAME, distill_model2vec

            (cache / MODEL2VEC_DIRNAME).symlink_to(distill_model2vec())
        start = time.perf_counter()
        result = fit_topics(studies, book, backend=backend, cache_dir=cache, clustering=clustering)
        fit_s = time.perf_counter() - start
        start = time.perf_counter()  # again, embeddings cached and numba compiled: a living-review re-run
        fit_topics(studies, book, backend=backend, cache_dir=cache, clustering=clustering)
        warm_s = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    topics = int((result.topics["topic"] != -1).sum())
    print(json.dumps({"fit_s": fit_s, "warm_s": warm_s, "peak_mb": peak_mb, "topics": topics, "status": result.status,
                      "before": result.outlier_share_before, "after": result.outlier_share_after}))  # fmt: skip


# ---------------------------------------------------------------- quality


def npmi(topic_words: list[list[str]], docs: list[str]) -> float:
    """Mean NPMI of word pairs within each topic, from document co-occurrence (a pair never together: -1)."""
    import numpy as np
    from sklearn.feature_extraction.text import CountVectorizer

    vocab = sorted({w for words in topic_words for w in words})
    if not vocab:
        return float("nan")
    counts = CountVectorizer(
        vocabulary=vocab, ngram_range=(1, 2), binary=True, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]+\b"
    )
    matrix = counts.fit_transform(docs).tocsc().astype(np.float64)
    n, index = matrix.shape[0], {w: i for i, w in enumerate(vocab)}
    scores = []
    for words in topic_words:
        pair_scores = []
        for a in range(len(words)):
            for b in range(a + 1, len(words)):
                ca, cb = matrix[:, index[words[a]]], matrix[:, index[words[b]]]
                pa, pb, pab = ca.sum() / n, cb.sum() / n, ca.multiply(cb).sum() / n
                if pab == 0 or pa == 0 or pb == 0:
                    pair_scores.append(-1.0)
                elif pab == 1:
                    pair_scores.append(1.0)
                else:
                    pair_scores.append(float(np.log(pab / (pa * pb)) / -np.log(pab)))
        if pair_scores:
            scores.append(float(np.mean(pair_scores)))
    return float(np.mean(scores)) if scores else float("nan")


def quality(args: argparse.Namespace) -> None:
    _quiet()
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    from pipeline.topics import embed_texts, fit_topics

    book = codebook()
    print(f"{'corpus':13} {'backend':10} {'clust.':7} {'n':>5} {'topics':>6} {'npmi':>6} {'divers':>6} {'sil_mini':>8} "
          f"{'ari_mini':>8} {'outl->':>6} {'after':>6} {'mapped':>6} {'fit s':>6}")  # fmt: skip
    for name in args.corpora:
        studies = load_corpus(name)
        docs = [
            f"{t}. {a}" if isinstance(t, str) and t else a
            for t, a in zip(studies["title"], studies["abstract"], strict=True)
        ]
        minilm = embed_texts(docs, "minilm")  # cached after the first run
        reference = None
        for backend in args.backends:
            for clustering in args.clusterings:
                start = time.perf_counter()
                result = fit_topics(studies, book, backend=backend, clustering=clustering)
                fit_s = time.perf_counter() - start
                labels = result.study_topics["topic"].to_numpy()
                topics = result.topics[result.topics["topic"] != -1]
                words = [w.split("; ") for w in topics["words"]]
                kept = labels != -1
                sil = (
                    silhouette_score(minilm[kept], labels[kept], metric="cosine")
                    if len(set(labels[kept])) > 1
                    else float("nan")
                )
                if backend == "minilm" and clustering == "hdbscan":
                    reference = labels
                ari = adjusted_rand_score(reference, labels) if reference is not None else float("nan")
                diversity = len({w for ws in words for w in ws}) / max(1, sum(len(ws) for ws in words))
                print(
                    f"{name:13} {backend:10} {clustering:7} {len(docs):>5} {len(topics):>6} {npmi(words, docs):>6.3f} "
                    f"{diversity:>6.2f} {sil:>8.3f} {ari:>8.3f} {result.outlier_share_before:>6.1%} "
                    f"{result.outlier_share_after:>6.1%} {int((~topics['emergent']).sum()):>6} {fit_s:>6.1f}"
                )
                if args.show:
                    _show(result, name, backend)


def _show(result: Any, name: str, backend: str) -> None:
    print(f"  -- {name} / {backend}: topics with their best code")
    for row in result.topics[result.topics["topic"] != -1].head(12).to_dict("records"):
        flag = "EMERGENT" if row["emergent"] else f"mapped {row['mapped_codes']}"
        print(
            f"  {row['topic']:>3} n={row['size']:<4} {row['words'][:70]:70} "
            f"best {row['best_code']} {row['best_score']:.3f} {flag}"
        )


# ---------------------------------------------------------------- calibration


def gold_groups() -> dict[str, list[str]]:
    """Real seed and validation sentences coded by hand (tests/data/coding), grouped by code."""
    groups: dict[str, list[str]] = {}
    for name in ("gold.jsonl", "holdout.jsonl"):
        for line in (ROOT / "tests" / "data" / "coding" / name).read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            for code in item["codes"]:
                groups.setdefault(code, []).append(item["text"])
    return groups


def group_words(groups: dict[str, list[str]], n_words: int = 10) -> dict[str, list[str]]:
    """Top c-TF-IDF words of each group, as BERTopic would compute them (one joined document per group)."""
    import numpy as np
    from bertopic.vectorizers import ClassTfidfTransformer

    from pipeline.topics.model import _vectorizer

    names = sorted(groups)
    vectorizer = _vectorizer().fit([" ".join(groups[g]) for g in names])
    counts = vectorizer.transform([" ".join(groups[g]) for g in names])
    ctfidf = ClassTfidfTransformer(reduce_frequent_words=True).fit_transform(counts).toarray()
    vocab = vectorizer.get_feature_names_out()
    return {g: [vocab[i] for i in np.argsort(-ctfidf[k])[:n_words] if ctfidf[k, i] > 0] for k, g in enumerate(names)}


def calibrate(args: argparse.Namespace) -> None:
    _quiet()
    import numpy as np

    from pipeline.topics import fit_topics, mapping
    from pipeline.topics.embeddings import make_embedder

    book = codebook()
    groups = {c: t for c, t in gold_groups().items() if len(t) >= 2}
    words = group_words(groups)
    corpora = {name: load_corpus(name) for name in args.corpora}
    for backend in args.backends:
        negatives = []
        for (name, studies), clustering in itertools.product(corpora.items(), args.clusterings):
            result = fit_topics(studies, book, backend=backend, clustering=clustering, map_threshold=1.0)
            negatives += [
                (name, r["best_score"], r["best_code"], r["words"])
                for r in result.topics.to_dict("records")
                if r["topic"] != -1
            ]
        sentences = [s for texts in groups.values() for s in texts]
        embedder = make_embedder(backend).fit(sentences, extra=mapping.codebook_texts(book))
        space = mapping.make_space(embedder, sentences, book)
        codes = mapping.code_vectors(book, space)
        pos_true, ranks = [], []
        for code, texts in sorted(groups.items()):
            scores = mapping.score_matrix(mapping.topic_vectors([(words[code], texts)], space), codes, space)[0]
            pos_true.append(scores[codes.ids.index(code)])
            ranks.append(1 + int((scores > scores[codes.ids.index(code)]).sum()))
        neg = np.array([s for _, s, _, _ in negatives])
        pos = np.array(pos_true)
        print(f"\n{backend}: {len(neg)} off-codebook topics, {len(pos)} gold code groups (>= 2 sentences)")
        print(
            f"  off-codebook best score: max {neg.max():.3f}, p95 {np.quantile(neg, 0.95):.3f}, "
            f"median {np.median(neg):.3f}"
        )
        print(
            f"  gold group, own code:    min {pos.min():.3f}, p10 {np.quantile(pos, 0.10):.3f}, "
            f"median {np.median(pos):.3f}"
        )
        print(
            f"  own code ranked 1st: {np.mean(np.array(ranks) == 1):.0%}, in top 3: {np.mean(np.array(ranks) <= 3):.0%}"
        )
        for t in args.thresholds:
            print(
                f"  threshold {t:.2f}: off-codebook topics mapped {np.mean(neg >= t):6.1%}   "
                f"gold groups kept {np.mean(pos >= t):6.1%}"
            )
        for name, score, code, topic_words in sorted(negatives, key=lambda x: -x[1])[:3]:
            print(f"  highest off-codebook: {name} {score:.3f} {code} <- {topic_words[:60]}")


# ---------------------------------------------------------------- scale


SCALE_BATCH = 5000


def scale(args: argparse.Namespace) -> None:
    print(f"max_fit_studies {args.max_fit}; a fresh process, embedding cache and saved model per row")
    for size in args.sizes:
        for backend in args.backends:
            out = subprocess.run(
                [sys.executable, __file__, "_scale_one", backend, str(size), str(args.max_fit)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if out.returncode:
                print(f"{backend} {size}: FAILED {out.stderr.strip().splitlines()[-3:]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"\n{backend}, {size:,} studies: {r['status']}; {r['topics']} topics, {r['suggestions']:,} suggestions, "
                  f"outliers {r['before']:.1%} -> {r['after']:.1%}")  # fmt: skip
            print(f"  {'stage':22} {'studies':>9} {'wall s':>8} {'cpu s':>8} {'studies/s':>10} {'peak RSS MB':>12}")
            for row in r["stages"]:
                rate = f"{row['records_per_second']:,.0f}" if row["records_per_second"] else ""
                print(f"  {row['stage']:22} {row['records'] or 0:>9,} {row['seconds']:>8.1f} {row['cpu_seconds']:>8.1f} "
                      f"{rate:>10} {row['peak_rss_mb']:>12,.0f}")  # fmt: skip
            full = sum(row["seconds"] for row in r["stages"] if row["stage"] in ("scan+fit", "place", "finish"))
            inc = next(row["seconds"] for row in r["stages"] if row["stage"].startswith("+1%"))
            print(f"  full run {full:,.0f} s; +1 % run {inc:,.1f} s = {inc / full:.1%} of it; reading the corpus "
                  f"from disk once: {r['generator_s']:.1f} s (a run reads it 2-3 times; making it took "
                  f"{r['made_s']:.0f} s, outside the figures)")  # fmt: skip
            print(f"  peak RSS {r['peak_mb']:,.0f} MB; saved model {r['model_mb']:.0f} MB + studies {r['studies_mb']:.1f} MB;"
                  f" embedding cache {r['cache_mb']:.0f} MB ({r['cache_rows']:,} rows)")  # fmt: skip


def scale_batches(size: int, start: int = 0) -> Any:
    """A callable yielding the synthetic works [start, size) as studies frames of SCALE_BATCH rows."""
    import pandas as pd

    from benchmarks.synthetic import WorkFactory, load_pool

    factory = WorkFactory(load_pool(), 0, 0.3)

    def batches() -> Any:
        for first in range(start, size, SCALE_BATCH):
            works = [factory.work(i) for i in range(first, min(size, first + SCALE_BATCH))]
            yield pd.DataFrame({"id": [f"w{w.index:07d}" for w in works], "title": [w.title for w in works],
                                "abstract": [w.abstract for w in works]})  # fmt: skip

    return batches


def stored_batches(size: int, folder: Path) -> Any:
    """The works [0, size) written once as one pickled frame per batch, read back on every pass: the corpus
    comes from disk as a store would give it, and the generator's cost is paid once, outside the figures."""
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.pkl"))
    if len(have) < -(-size // SCALE_BATCH):
        for k, frame in enumerate(scale_batches(size)()):
            frame.to_pickle(folder / f"{k:05d}.pkl")
    names = sorted(folder.glob("*.pkl"))[: -(-size // SCALE_BATCH)]

    def batches() -> Any:
        for name in names:
            yield pd.read_pickle(name)  # noqa: S301 - written just above

    return batches


def _scale_one(backend: str, size: int, max_fit: int) -> None:
    _quiet()
    logging.getLogger("pipeline.ingest").setLevel(logging.ERROR)
    from pipeline.metrics import StageMeter
    from pipeline.topics import TopicRun, TopicSettings, assign_batch, model_topics, write_topic_outputs

    book = codebook()
    settings = TopicSettings(backend=backend, max_fit_studies=max_fit)
    meter = StageMeter()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        grown = stored_batches(size + size // 100, Path(tmp) / "corpus")  # the corpus and its +1 % update
        made_s = time.perf_counter() - start
        batches = _first(grown, size)
        start = time.perf_counter()
        for _frame in grown():
            pass
        generator_s = time.perf_counter() - start
        cache, state_dir = Path(tmp) / "cache", Path(tmp) / "state"
        cache.mkdir()
        if backend == "model2vec":  # reuse the distilled model, not the embeddings
            from pipeline.topics.embeddings import MODEL2VEC_DIRNAME, distill_model2vec

            (cache / MODEL2VEC_DIRNAME).symlink_to(distill_model2vec())
        with meter.stage("scan+fit", records=size) as stage:
            run = TopicRun.start(batches, book, settings, cache_dir=cache, state_dir=state_dir)
            stage.records = int(run.placed_now.sum())
        with meter.stage("place", records=size - int(run.placed_now.sum())):
            for positions, texts in run.to_place(batches):
                run.add(positions, assign_batch(run.fitted, texts))
        with meter.stage("finish", records=size):
            result = run.finish()
        with meter.stage("outputs", records=size):
            write_topic_outputs(result, Path(tmp) / "outputs")
        summary = {"status": result.status, "topics": int((result.topics["topic"] != -1).sum()),
                   "suggestions": len(result.suggestions), "before": result.outlier_share_before,
                   "after": result.outlier_share_after}  # fmt: skip
        del result, run
        with meter.stage(f"+1% ({size // 100:,} new)", records=size + size // 100):
            again = model_topics(grown, book, settings, cache_dir=cache, state_dir=state_dir)
        assert again.run["model"] == "reused" and again.run["placed_now"] == size // 100, again.run
        del again
        with meter.stage("rerun, nothing new", records=size + size // 100):
            model_topics(grown, book, settings, cache_dir=cache, state_dir=state_dir)
        rows = _cache_rows(cache / "embeddings.sqlite")
        summary.update(
            stages=meter.table(), generator_s=generator_s, made_s=made_s,
            peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            model_mb=(state_dir / "model.pkl").stat().st_size / 1e6,
            studies_mb=(state_dir / "studies.npz").stat().st_size / 1e6,
            cache_mb=(cache / "embeddings.sqlite").stat().st_size / 1e6 if rows else 0.0, cache_rows=rows,
        )  # fmt: skip
    print(json.dumps(summary))


def _first(batches: Any, size: int) -> Any:
    """The first `size` studies of a batches() callable (size a multiple of SCALE_BATCH or the last batch cut)."""

    def first() -> Any:
        left = size
        for frame in batches():
            if left <= 0:
                return
            yield frame.head(left)
            left -= len(frame)

    return first


def _cache_rows(path: Path) -> int:
    import sqlite3

    if not path.is_file():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM vectors2").fetchone()[0])


def distill(args: argparse.Namespace) -> None:
    from pipeline.topics.embeddings import distill_model2vec

    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        folder = distill_model2vec(Path(tmp))
        size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
        print(f"distilled model2vec in {time.perf_counter() - start:.1f} s wall, {time.process_time() - cpu:.1f} s cpu "
              f"(this process); {size:.0f} MB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--backends", nargs="+", default=["model2vec", "tfidf", "minilm"])
    p.add_argument("--clusterings", nargs="+", default=["hdbscan"])
    p.add_argument("--minilm-max", type=int, default=1000)
    q = sub.add_parser("quality")
    q.add_argument("--corpora", nargs="+", default=list(CORPORA))
    q.add_argument("--backends", nargs="+", default=["minilm", "model2vec", "tfidf"])
    q.add_argument("--clusterings", nargs="+", default=["hdbscan", "kmeans"])
    q.add_argument("--show", action="store_true", help="print each run's first topics with their best code")
    c = sub.add_parser("calibrate")
    c.add_argument("--corpora", nargs="+", default=list(CORPORA))
    c.add_argument("--backends", nargs="+", default=["minilm", "model2vec", "tfidf"])
    c.add_argument("--clusterings", nargs="+", default=["hdbscan", "kmeans"])
    c.add_argument("--thresholds", type=float, nargs="+", default=[0.15, 0.2, 0.22, 0.25, 0.3, 0.33, 0.4])
    sc = sub.add_parser("scale")
    sc.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    sc.add_argument("--backends", nargs="+", default=["model2vec", "tfidf"])
    sc.add_argument("--max-fit", type=int, default=20_000)
    sub.add_parser("distill")
    so = sub.add_parser("_scale_one")
    so.add_argument("backend")
    so.add_argument("size", type=int)
    so.add_argument("max_fit", type=int)
    o = sub.add_parser("_one")
    o.add_argument("backend")
    o.add_argument("size", type=int)
    o.add_argument("clustering")
    args = parser.parse_args()
    if args.command == "_one":
        _one(args.backend, args.size, args.clustering)
    elif args.command == "_scale_one":
        _scale_one(args.backend, args.size, args.max_fit)
    else:
        {"speed": speed, "quality": quality, "calibrate": calibrate, "scale": scale, "distill": distill}[args.command](args)


if __name__ == "__main__":
    main()
