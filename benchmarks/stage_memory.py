"""Seconds and process-tree peak RSS of the review flow's stages after ingest: dedupe (with records.csv) and
studies, and with --through, coding, topics and assign+export too.

    python benchmarks/stage_memory.py WORKSPACE [--run-id RUN_ID] [--through studies|code|topics|export]

WORKSPACE is a `review run` workspace whose store already holds the ingested and cleaned records, committed or
staged by a run that stopped after ingest (the run id defaults to the store's only unfinished run; without one, a
run is begun for the measurement, and it reads the committed records).
The script makes the calls flows/review.py makes from dedupe through studies, inside a Prefect flow on the
default runner (so Prefect's temporary server is part of the tree, as in `review run`), and prints each step's
seconds, the tree's peak RSS (this process, the Prefect server and any child, sampled every 50 ms) and the
tree's RSS after the step, then digests of the results (to compare two versions of the code on the same store).
It writes into the workspace's corpus/cache (and, with --through export, its outputs/): run it on a copy of a
workspace you want to keep. Nothing is committed to the store.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
THROUGH = ("studies", "code", "topics", "export")
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--run-id", help="the stopped run whose staged records to read (default: the only one)")
    parser.add_argument("--through", choices=THROUGH, default="studies", help="the last stage to run (default studies)")
    args = parser.parse_args(argv)
    # Prefect's own database goes to a temporary folder, not into the measured workspace.
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="stage_memory_prefect_"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect import flow

    measured = flow(name="stage-memory", log_prints=False)(_measure)
    started = time.perf_counter()
    measured(str(args.workspace.resolve()), args.run_id, args.through)
    print(f"total {time.perf_counter() - started:.0f} s (Prefect start-up included)")
    return 0


def _measure(workspace: str, run_id: str | None, through: str = "studies") -> None:
    from flows import review as flow_module
    from pipeline import stages
    from pipeline.codebook import load_codebook
    from pipeline.metrics import MB, StageMeter, tree_rss_bytes
    from pipeline.store import open_store
    from pipeline.subprocess_stage import release_memory, run_in_child
    from pipeline.workspace import load_workspace

    ws = load_workspace(workspace)
    codebook = load_codebook(ws.codebook_path)
    store = open_store(ws.store_url)
    run_id = run_id or _unfinished_run(store) or _begin_run(store)
    meter = StageMeter()
    cache = ws.corpus_dir / "cache"
    in_flight = flow_module.IN_FLIGHT_PER_WORKER * ws.config.runner.workers
    print(f"run {run_id}: tree RSS at the start {tree_rss_bytes() / MB:,.0f} MB", flush=True)
    sheet_csv = stages.pending_path(ws, "duplicates_sheet.csv")
    with meter.stage("dedupe+records.csv"):
        passed = run_in_child(
            stages.corpus_pass, ws.store_url, run_id, codebook, cache / stages.DEDUPE_INDEX_NAME,
            stages.pending_path(ws, stages.DEDUPE_INDEX_NAME), stages.records_csv_files(ws), sheet_csv,
        )
    _report(meter, tree_rss_bytes() / MB)
    with meter.stage("studies"):
        table = flow_module.studies_in_batches(
            store, run_id, passed.dedupe.groups, passed.signatures, codebook, ws.config.batch_size,
            cache / stages.STUDY_CACHE_NAME, stages.pending_path(ws, stages.STUDY_CACHE_NAME), in_flight,
        )
        digests = {"signatures": _digest(passed.signatures.reset_index())}
        passed.signatures = None  # as the flow lets them go
        release_memory()
    digests["studies"] = _table_digest(table)
    _report(meter, tree_rss_bytes() / MB)
    print(f"counts {passed.dedupe.counts}", flush=True)
    print(f"digests: groups {_digest(passed.dedupe.groups)}, sheet {_file_digest(sheet_csv)}, "
          f"studies {digests['studies']}, signatures {digests['signatures']}, "
          f"identified {_digest(sorted(passed.identified.items()))}", flush=True)
    print(f"records.csv sha256 {_file_digest(stages.pending_path(ws, 'records.csv'))}", flush=True)
    if THROUGH.index(through) >= THROUGH.index("code"):
        _later_stages(ws, store, codebook, passed, table, sheet_csv, run_id, meter, in_flight, through)


def _later_stages(
    ws: Any, store: Any, codebook: Any, passed: Any, table: Any, sheet_csv: Path, run_id: str | None,
    meter: Any, in_flight: int, through: str,
) -> None:
    """Coding, then topics, then assign and the exports, as flows/review.py runs them (without the commit)."""
    from flows import review as flow_module
    import pandas as pd

    from pipeline import stages
    from pipeline.assign import assign
    from pipeline.ledger import ledger_frame
    from pipeline.metrics import MB, tree_rss_bytes
    from pipeline.subprocess_stage import release_memory

    import sqlalchemy as sa

    from pipeline.store import coding_cache_table

    with store.engine.begin() as conn:  # entries an earlier measurement staged for this run (never committed)
        conn.execute(coding_cache_table.delete().where(coding_cache_table.c.run_id == run_id))
    with meter.stage("code"):
        coding = flow_module.code(table, codebook, store, run_id, ws.config.batch_size, in_flight)
        hits_file = stages.put_aside(coding.hits, stages.pending_path(ws, "hits.parquet"))
        coding.hits = None
        release_memory()
    _report(meter, tree_rss_bytes() / MB)
    if through == "code":
        return
    with meter.stage("topics"):
        topic_model = flow_module.topics(table, codebook, ws) if ws.config.topics.enabled else None
        release_memory()
    _report(meter, tree_rss_bytes() / MB)
    if through == "topics":
        return
    with meter.stage("assign+export"):
        ledger = ledger_frame(store)
        machine = assign(pd.read_parquet(hits_file), topic_model.suggestions if topic_model is not None else None)
        assignments = stages.final_assignments(machine, ledger, passed.dedupe.groups)
        prisma = stages.prisma_stage(passed.identified, table, assignments, coding.set_aside)
        agreement = stages.agreement_stage(ledger, machine)
        stages.export_stage(ws, table, assignments, codebook, prisma, sheet_csv, agreement)
        if topic_model is not None:
            stages.publish_topic_outputs(ws)
    _report(meter, tree_rss_bytes() / MB)


def _report(meter: Any, rss_after_mb: float) -> None:
    row = meter.table()[-1]
    print(f"{row['stage']}: {row['seconds']:.1f} s, CPU {row['cpu_seconds']:.1f} s, "
          f"tree peak {row['peak_rss_mb']:,.0f} MB, tree RSS after {rss_after_mb:,.0f} MB ({_rss_by_process()})",
          flush=True)


def _rss_by_process() -> str:
    """Each process of the tree's RSS after a step (this flow first, then e.g. Prefect's server): which one keeps it."""
    from pipeline.metrics import MB, tree_rss_bytes

    children = {pid: tree_rss_bytes(pid) for pid in _children()}
    own = tree_rss_bytes() - sum(children.values())
    parts = [f"flow {own / MB:,.0f} MB"] + [f"{_process_name(pid)} {rss / MB:,.0f} MB" for pid, rss in children.items()]
    return ", ".join(parts)


def _children() -> list[int]:
    from pipeline.metrics import tree_pids

    own = os.getpid()
    return [pid for pid in tree_pids() if pid != own and _parent(pid) == own]


def _parent(pid: int) -> int:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return -1


def _process_name(pid: int) -> str:
    with contextlib.suppress(OSError):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return "prefect server" if "uvicorn" in command or "prefect" in command else f"pid {pid}"
    return f"pid {pid}"


def _begin_run(store: Any) -> str:
    """A run to stage this measurement's coding-cache entries under, when every run of the store has committed
    (it reads the committed records; it is discarded when the next run begins)."""
    from pipeline import stages

    run = stages.start_run()
    store.begin_run(run)
    return run.run_id


def _unfinished_run(store: Any) -> str | None:
    """The store's only unfinished run (None: read the committed records only)."""
    import sqlalchemy as sa

    from pipeline.store import RUNNING, runs_table

    with store.engine.connect() as conn:
        running = [row[0] for row in conn.execute(sa.select(runs_table.c.run_id).where(runs_table.c.status == RUNNING))]
    if len(running) > 1:
        raise SystemExit(f"the store has {len(running)} unfinished runs ({', '.join(running)}): pick one with --run-id")
    return running[0] if running else None


def _table_digest(table: Any) -> str:
    """_digest of the study table's frame, read a slice at a time (not to weigh on the stages measured after)."""
    import pandas as pd

    digest = hashlib.sha256()
    for part in table.slices(table.columns, 20_000):
        digest.update(pd.util.hash_pandas_object(part, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest(value: Any) -> str:
    """A short hash of a frame's values (or of any repr-able value): equal results, equal digests."""
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        data = pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes()
    else:
        data = repr(value).encode()
    return hashlib.sha256(data).hexdigest()[:16]


if __name__ == "__main__":
    raise SystemExit(main())
