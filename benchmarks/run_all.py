"""Scale benchmark: synthetic corpora through the real `review run`, per stage, plus incremental and dedup figures.

    python benchmarks/run_all.py                                 10k, 100k and 1M records
    python benchmarks/run_all.py --sizes 10000,100000            chosen sizes
    python benchmarks/run_all.py --sizes 10000 --runners default,dask --max-rss-gb 6

For each size: a workspace made by `review init` (topics on the `tfidf` backend, no harvest sources), a
synthetic corpus (benchmarks/synthetic.py: four export formats, 30% duplicates across sources, 30% on-topic
works) in its corpus/, then `review run` in a subprocess, so its memory is that process tree's own. The
per-stage table is the "stages" list `review run` writes into outputs/run_summary.json (pipeline/metrics.py
StageMeter); a flow that does not write one yet is reported by its whole run (wall and CPU seconds, peak RSS
of the process tree, sampled every 50 ms from here) and by each Prefect task's wall seconds, read from the
run's own Prefect database. Then a 1% update file (half new works, half copies of existing ones) is added
and the review re-run: incremental ratio = update run / full run (wall seconds; CPU seconds beside).
The dedup F1 of each corpus is scored against its truth.csv, and benchmarks/dedup_bench.py's labelled real
sets are run last. One markdown report is printed and written to benchmarks/results/latest.md.

Why tfidf for topics: it needs no model file (minilm embeds ~17 abstracts/s, hours at 1M; model2vec needs
`review models distill` run once beforehand, so a fresh machine could not run the benchmark), and its
figures are deterministic; `--embedding model2vec` measures the other fast backend.
Wall seconds depend on what else the machine runs (the load average is printed); CPU seconds less so.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import synthetic  # noqa: E402
from pipeline.io import atomic_write  # noqa: E402
from pipeline.metrics import MB, RssSampler  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "latest.md"
REVIEW = Path(sys.executable).parent / "review"
CORPUS_INPUTS = "corpus/synthetic/files/*"
UPDATE_INPUTS = "corpus/update/files/*"
DASH = "—"


@dataclass
class RunMeasure:
    """One `review run`: measured from outside, plus the stage table it wrote (or Prefect's task times)."""

    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    stages: list[dict[str, Any]]
    stage_source: str  # "run_summary" | "prefect task runs" | "none"
    summary: dict[str, Any] = field(default_factory=dict)
    failure: str = ""  # why the run did not finish (stopped by a guard, or its exit code); "" if it did

    @property
    def finished(self) -> bool:
        return not self.failure


@dataclass
class SizeResult:
    records: int
    runner: str
    generator_seconds: float
    full: RunMeasure
    update: RunMeasure | None
    update_records: int
    dedup: dict[str, float] | None
    outputs: dict[str, str] = field(default_factory=dict)  # output file -> sha256, after the full run


# --- workspaces -------------------------------------------------------------------------------


def make_workspace(folder: Path, embedding: str, runner: str) -> Path:
    """`review init`, then review.yaml for the benchmark: synthetic inputs, fast topics, no harvest."""
    subprocess.run([str(REVIEW), "init", str(folder)], check=True, stdout=subprocess.DEVNULL)
    config_path = folder / "review.yaml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config.update(
        name="scale benchmark",
        inputs=[CORPUS_INPUTS, UPDATE_INPUTS],
        sources={},
        topics={"embedding": embedding},
    )
    if runner != "default":
        config["runner"] = {"kind": runner}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return folder


def link_corpus(workspace: Path, corpus: Path) -> None:
    """The generated corpus appears as corpus/synthetic (a symlink: runners share one corpus per size)."""
    target = workspace / "corpus" / "synthetic"
    target.symlink_to(corpus.resolve(), target_is_directory=True)


def add_update(workspace: Path, update: Path) -> int:
    """Copy the update's export files into corpus/update/files/; returns their record count."""
    destination = workspace / "corpus" / "update" / "files"
    destination.mkdir(parents=True, exist_ok=True)
    manifest = synthetic.read_manifest(update)
    for name in manifest["files"]:
        shutil.copyfile(update / synthetic.FILES_DIR / name, destination / name)
    return int(manifest["records"])


# --- one run ----------------------------------------------------------------------------------


def measure_run(workspace: Path, log_path: Path, max_rss_bytes: int | None, timeout: float | None) -> RunMeasure:
    """Run `review run` on the workspace and measure its whole process tree from here."""
    env = dict(os.environ, PREFECT_HOME=str(workspace / ".prefect"))  # the run's own Prefect DB, read below
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [str(REVIEW), "run", "-w", str(workspace)], stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,  # its own process group: a guard stop ends all of it and nothing else
        )
        sampler = RssSampler(pid=process.pid)
        key = sampler.watch()
        stopped = _wait(process, sampler, key, max_rss_bytes, timeout, started)
        peak = sampler.release(key)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    failure = stopped or (f"exit code {process.returncode}, see {log_path}" if process.returncode else "")
    if failure:
        _say(f"  review run on {workspace} did not finish: {failure}")
        stages = prefect_task_seconds(workspace / ".prefect" / "prefect.db")  # the tasks that did finish
        return RunMeasure(seconds, cpu, peak / MB, stages, "prefect task runs", {}, failure)
    summary = json.loads((workspace / "outputs" / "run_summary.json").read_text(encoding="utf-8"))
    stages, source = stage_table(summary, workspace)
    return RunMeasure(seconds, cpu, peak / MB, stages, source, summary)


def _wait(
    process: subprocess.Popen[bytes], sampler: RssSampler, key: int, limit: int | None, timeout: float | None,
    started: float,
) -> str:
    """Wait for the run; stop its process group when it passes the memory limit or the timeout."""
    while process.poll() is None:
        reason = ""
        if limit and sampler.peak(key) > limit:
            reason = f"its process tree passed {limit / MB / 1024:.1f} GB of RSS"
        elif timeout and time.perf_counter() - started > timeout:
            reason = f"it ran longer than {timeout:.0f} s"
        if reason:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return reason
        time.sleep(0.2)
    return ""


def stage_table(summary: dict[str, Any], workspace: Path) -> tuple[list[dict[str, Any]], str]:
    """The run's stage table: run_summary.json "stages" if the flow wrote it, else Prefect's task timings."""
    if summary.get("stages"):
        return list(summary["stages"]), "run_summary"
    tasks = prefect_task_seconds(workspace / ".prefect" / "prefect.db")
    return tasks, "prefect task runs" if tasks else "none"


def prefect_task_seconds(database: Path) -> list[dict[str, Any]]:
    """Wall seconds per task of the latest flow run, in start order (Prefect's own records), and the flow's
    own time between tasks (reading inputs from the store, PRISMA counts, ...)."""
    if not database.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
            flow_run, flow_start, flow_end = conn.execute(
                "SELECT id, start_time, end_time FROM flow_run ORDER BY start_time DESC LIMIT 1"
            ).fetchone()
            rows = conn.execute(
                "SELECT task_key, start_time, end_time FROM task_run WHERE flow_run_id = ? AND end_time IS NOT NULL"
                " ORDER BY start_time",
                (flow_run,),
            ).fetchall()
        timings = [(key.rsplit("-", 1)[0], _time(start), _time(end)) for key, start, end in rows]
    except (sqlite3.Error, TypeError, ValueError):
        return []  # another Prefect version's schema: the whole-run figures still stand
    table = task_spans(timings)
    if flow_start and flow_end and timings:
        outside = (_time(flow_end) - _time(flow_start)).total_seconds() - _covered_seconds(timings)
        table.append(_row("(flow code between tasks)", outside))
    return table


def task_spans(timings: list[tuple[str, dt.datetime, dt.datetime]]) -> list[dict[str, Any]]:
    """One row per task name, in order of first start. A task mapped over batches runs its copies at once,
    each waiting for a worker, so its figure is the span from the first start to the last end ('name xN')."""
    spans: dict[str, list[Any]] = {}
    for name, start, end in timings:
        span = spans.setdefault(name, [start, end, 0])
        span[0], span[1], span[2] = min(span[0], start), max(span[1], end), span[2] + 1
    return [
        _row(name if count == 1 else f"{name} x{count} (first start to last end)", (last - first).total_seconds())
        for name, (first, last, count) in spans.items()
    ]


def _covered_seconds(timings: list[tuple[str, dt.datetime, dt.datetime]]) -> float:
    """Seconds during which at least one task ran (the union of the task intervals)."""
    covered, reach = 0.0, None
    for _, start, end in sorted(timings, key=lambda t: t[1]):
        if reach is None or start > reach:
            covered += (end - start).total_seconds()
            reach = end
        elif end > reach:
            covered += (end - reach).total_seconds()
            reach = end
    return covered


def _row(stage: str, seconds: float) -> dict[str, Any]:
    return {"stage": stage, "records": None, "seconds": round(seconds, 3), "cpu_seconds": None,
            "records_per_second": None, "peak_rss_mb": None}


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --- dedup scores -----------------------------------------------------------------------------


def store_groups(workspace: Path) -> Iterator[tuple[str, str, str]]:
    """(source file, own id, duplicate group) of every record in the workspace's store."""
    import sqlalchemy as sa

    from pipeline.store import groups_table, open_store, records_table
    from pipeline.workspace import load_workspace

    store = open_store(load_workspace(workspace).store_url)
    r, g = records_table.c, groups_table.c
    query = sa.select(r.source_file, r.own_id, g.duplicate_group).join_from(
        records_table, groups_table, r.record_id == g.record_id
    )
    with store.engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=10_000).execute(query):
            yield str(row[0]), str(row[1]), str(row[2])


def synthetic_dedup_scores(workspace: Path, truth_files: list[Path]) -> dict[str, float]:
    return synthetic.pair_scores(synthetic.read_truth(truth_files), store_groups(workspace))


def labelled_dedup_table() -> list[dict[str, Any]]:
    """benchmarks/dedup_bench.py's real labelled sets: raw and adjudicated pairwise scores, one row per set."""
    from benchmarks import dedup_bench as bench
    from pipeline.dedupe import deduplicate

    adjudications = bench.load_adjudications()
    rows = []
    for name in bench.SETS:
        frame, gold = bench.load_set(name)
        started = time.perf_counter()
        predicted = bench.predicted_pairs(deduplicate(frame))
        seconds = time.perf_counter() - started
        raw = bench.metrics(predicted, gold)
        corrected, _ = bench.adjudicated_gold(name, gold, adjudications)
        adjudicated = bench.metrics(predicted, corrected)
        rows.append({"set": name, "records": len(frame), "gold_pairs": len(gold), "seconds": seconds,
                     "raw": raw, "adjudicated": adjudicated, "reference_f1": bench.REFERENCE[name][0]})
    return rows


# --- one size ---------------------------------------------------------------------------------


def run_size(
    records: int, runners: list[str], args: argparse.Namespace, pool: synthetic.Pool, workdir: Path
) -> list[SizeResult]:
    corpus_dir, update_dir = workdir / f"corpus_{records}", workdir / f"update_{records}"
    corpus = synthetic.generate_corpus(corpus_dir, records, seed=args.seed, pool=pool)
    update = synthetic.generate_update(corpus_dir, update_dir, share=args.update_share, pool=pool)
    _say(f"{records:,} records: corpus written in {corpus.seconds:.1f} s ({records / corpus.seconds:,.0f} records/s)")
    results = []
    for runner in runners:
        workspace = make_workspace(workdir / f"ws_{records}_{runner}", args.embedding, runner)
        link_corpus(workspace, corpus_dir)
        _say(f"{records:,} records, {runner} runner: full run ...")
        full = measure_run(workspace, workspace / "run_full.log", _limit(args), args.timeout)
        _say(f"  full run: {full.seconds:.1f} s wall, {full.cpu_seconds:.1f} s CPU, peak {full.peak_rss_mb:,.0f} MB")
        dedup = synthetic_dedup_scores(workspace, [corpus.truth]) if full.finished else None
        outputs = output_digests(workspace / "outputs") if full.finished else {}
        measured_update, update_records = None, 0
        if args.incremental and full.finished:
            update_records = add_update(workspace, update_dir)
            measured_update = measure_run(workspace, workspace / "run_update.log", _limit(args), args.timeout)
            unfinished = "" if measured_update.finished else " (did not finish)"
            _say(f"  update run ({update_records} records): {measured_update.seconds:.1f} s wall, "
                 f"ratio {measured_update.seconds / full.seconds:.3f}{unfinished}")
        results.append(
            SizeResult(records, runner, corpus.seconds, full, measured_update, update_records, dedup, outputs)
        )
        if not args.keep:
            shutil.rmtree(workspace, ignore_errors=True)
    if not args.keep:
        shutil.rmtree(corpus_dir, ignore_errors=True)
        shutil.rmtree(update_dir, ignore_errors=True)
    return results


def output_digests(outputs: Path) -> dict[str, str]:
    """sha256 of every output file but the run summary (which holds the run's id and times)."""
    return {
        str(path.relative_to(outputs)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(outputs.rglob("*"))
        if path.is_file() and path.name != "run_summary.json"
    }


RECORD_STAGES = ("ingest+clean", "dedupe", "studies", "code", "topics")  # the stages that read records


def record_stage_cpu(run: RunMeasure) -> float:
    return sum(float(row.get("cpu_seconds") or 0) for row in run.stages if row.get("stage") in RECORD_STAGES)


def _limit(args: argparse.Namespace) -> int | None:
    return int(args.max_rss_gb * 1024 * MB) if args.max_rss_gb else None


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the report -------------------------------------------------------------------------------


def _number(value: Any, digits: int = 1) -> str:
    if value is None:
        return DASH
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def stage_rows(result: SizeResult) -> list[str]:
    """The stages of the full run, then of the update run, each closed by its whole-run row."""
    rows = []
    runs = [("full", result.full, result.records)]
    if result.update is not None:
        runs.append(("update", result.update, result.update_records))
    for label, run, records in runs:
        prefix = f"| {result.records:,} | {result.runner} | {label} |"
        for stage in run.stages:
            rows.append(
                f"{prefix} {stage['stage']} | {_number(stage.get('records'))} | {_number(stage.get('seconds'))} | "
                f"{_number(stage.get('cpu_seconds'))} | {_number(stage.get('records_per_second'), 0)} | "
                f"{_number(stage.get('peak_rss_mb'), 0)} |"
            )
        whole = "**whole run**" if run.finished else f"**whole run: did not finish** ({run.failure})"
        rows.append(
            f"{prefix} {whole} | {records:,} | {run.seconds:,.1f} | {run.cpu_seconds:,.1f} | "
            f"{records / run.seconds if run.finished else 0:,.0f} | {run.peak_rss_mb:,.0f} |"
        )
    return rows


def runner_rows(results: list[SizeResult]) -> list[str]:
    """Whether every runner of a size wrote the same output files, byte for byte."""
    sizes = sorted({r.records for r in results if r.outputs})
    compared = [[r for r in results if r.records == size and r.outputs] for size in sizes]
    compared = [runs for runs in compared if len(runs) > 1]
    if not compared:
        return []
    lines = ["", "### Runners: outputs of the full run compared byte for byte (all but run_summary.json)", "",
             "| records | runners | output files | identical |", "|---:|---|---:|---|"]
    for runs in compared:
        first = runs[0].outputs
        differing = sorted({name for r in runs[1:] for name in set(first) | set(r.outputs)
                            if first.get(name) != r.outputs.get(name)})
        verdict = "yes" if not differing else "no: " + ", ".join(differing)
        lines.append(f"| {runs[0].records:,} | {', '.join(r.runner for r in runs)} | {len(first)} | {verdict} |")
    return lines


def report(results: list[SizeResult], labelled: list[dict[str, Any]] | None, args: argparse.Namespace) -> str:
    sources = sorted({r.full.stage_source for r in results})
    lines = [
        "## Scale benchmark",
        "",
        f"`python benchmarks/run_all.py --sizes {','.join(str(s) for s in args.sizes)}"
        f"{' --runners ' + ','.join(args.runners) if args.runners != ['default'] else ''}` on "
        f"{dt.date.today().isoformat()}: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end; "
        f"topics backend `{args.embedding}`; synthetic corpora seed {args.seed} (30% duplicates across four export "
        "formats, 30% on-topic works). Peak RSS is the `review run` process tree's (Dask workers included).",
        "",
        f"Per-stage figures from: {', '.join(sources)}"
        + (" (Prefect task wall seconds only: the flow does not write a 'stages' table yet)."
           if "prefect task runs" in sources else "."),
        "",
        "| records | runner | run | stage | stage records | seconds | CPU s | records/s | peak RSS MB |",
        "|---:|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        lines += stage_rows(result)
    lines += ["", "Generator: " + "; ".join(
        f"{r.records:,} records in {r.generator_seconds:.1f} s" for r in results if r.runner == results[0].runner
    ) + "."]
    if any(r.update for r in results):
        lines += [
            "",
            "### Incremental: a 1% update (half new works, half copies of existing ones)",
            "",
            "Whole run: every stage, including rewriting every output and starting Prefect. Record stages: the CPU "
            f"seconds of {', '.join(RECORD_STAGES)} (the work an update should pay only for its new records).",
            "",
            "| records | runner | update records | full run s | update run s | ratio (wall) | ratio (CPU) "
            "| record stages: full CPU s | update CPU s | ratio | update peak RSS MB |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results:
            if r.update and r.update.finished:
                full_stages, update_stages = record_stage_cpu(r.full), record_stage_cpu(r.update)
                lines.append(
                    f"| {r.records:,} | {r.runner} | {r.update_records:,} | {r.full.seconds:,.1f} | "
                    f"{r.update.seconds:,.1f} | {r.update.seconds / r.full.seconds:.3f} | "
                    f"{r.update.cpu_seconds / max(r.full.cpu_seconds, 1e-9):.3f} | {full_stages:,.1f} | "
                    f"{update_stages:,.1f} | {update_stages / max(full_stages, 1e-9):.3f} | "
                    f"{r.update.peak_rss_mb:,.0f} |"
                )
    lines += runner_rows(results)
    lines += [
        "",
        "### Deduplication of the synthetic corpora (pairwise, against each corpus's truth.csv)",
        "",
        "| records | runner | true pairs | predicted pairs | precision | recall | F1 | false pairs | missed pairs |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        d = r.dedup
        if d is None:
            lines.append(f"| {r.records:,} | {r.runner} | {DASH} (the run did not finish) |||||||")
            continue
        lines.append(
            f"| {r.records:,} | {r.runner} | {d['true_pairs']:,} | {d['predicted_pairs']:,} | {d['precision']:.4f} | "
            f"{d['recall']:.4f} | {d['f1']:.4f} | {d['false_pairs']:,} | {d['missed_pairs']:,} |"
        )
    if labelled:
        lines += [
            "",
            "### Deduplication of the labelled real sets (benchmarks/dedup_bench.py)",
            "",
            "| set | records | gold pairs | precision | recall | F1 | false pairs | F1 adjudicated | bib-dedupe F1 "
            "| seconds |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in labelled:
            raw, adj = row["raw"], row["adjudicated"]
            lines.append(
                f"| {row['set']} | {row['records']:,} | {row['gold_pairs']:,} | {raw['precision']:.3f} | "
                f"{raw['recall']:.3f} | {raw['f1']:.3f} | {raw['fp']} | {adj['f1']:.3f} | {row['reference_f1']:.3f} | "
                f"{row['seconds']:.1f} |"
            )
    return "\n".join(lines) + "\n"


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated record counts")
    parser.add_argument("--runners", default="default", help="comma-separated: default, dask")
    parser.add_argument("--embedding", default="tfidf", choices=("tfidf", "model2vec", "minilm"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--update-share", type=float, default=0.01)
    parser.add_argument("--no-incremental", dest="incremental", action="store_false", help="skip the update runs")
    parser.add_argument("--no-dedup-bench", dest="dedup_bench", action="store_false",
                        help="skip dedup_bench.py's labelled sets")
    parser.add_argument("--max-rss-gb", type=float, help="stop a run whose process tree passes this much RSS")
    parser.add_argument("--timeout", type=float, help="stop a run after this many seconds")
    parser.add_argument("--workdir", type=Path, help="where corpora and workspaces go (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the corpora and workspaces")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the markdown report (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes takes record counts separated by commas (e.g. 10000,100000), not {args.sizes!r}")
    args.runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if unknown := sorted(set(args.runners) - {"default", "dask"}):
        parser.error(f"unknown runner(s) {', '.join(unknown)}; use default and/or dask")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="review-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    _say(f"working in {workdir}")
    pool = synthetic.load_pool()
    results: list[SizeResult] = []
    for size in args.sizes:
        results += run_size(size, args.runners, args, pool, workdir)
    labelled = labelled_dedup_table() if args.dedup_bench else None
    markdown = report(results, labelled, args)
    print(markdown)
    with atomic_write(args.out) as handle:
        handle.write(markdown)
    _say(f"wrote {args.out}")
    if not args.keep and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
