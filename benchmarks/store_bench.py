"""Store benchmark: stage, flag, commit and read back N records made from real ones.

    python benchmarks/store_bench.py                        1,000,000 records into a temporary SQLite store
    python benchmarks/store_bench.py --records 100000       a smaller corpus
    python benchmarks/store_bench.py --url postgresql+psycopg://...   any store URL (an empty database)

The records are the ~10,700 real records of ../shared/data/exports and the seeds (as ingested, `extra`
included: cited references, affiliations), copied with new ids, files and positions; copy k's title and
abstract start with a word of its own, so copies are distinct abstracts and the corpus keeps the real
data's own duplicate and truncated-copy structure once per copy. Phases, each timed with the process's
peak RSS so far and its RSS now:

  stage        begin_run, then stage_records + stage_inputs per batch (--batch-size, default 5,000)
  flag         flag_truncated_prefixes_in_store over the run (every record is new: the worst case)
  commit       commit_run (the staged rows become visible)
  projection   record_projection of the dedup fields (no abstract text), and its frame's memory
  iterate      iter_record_batches over the whole corpus
  incremental  a second run adding 1% new records: stage, flag, commit
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pipeline import stages  # noqa: E402
from pipeline.batches import flag_truncated_prefixes_in_store, iter_ingest_batches  # noqa: E402
from pipeline.records import Record, make_record_id  # noqa: E402
from pipeline.store import InputEntry, Store, open_store  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
DEDUP_FIELDS = ["record_id", "id", "title", "authors", "year", "doi", "venue", "volume", "issue", "pages",
                "doc_type", "database", "source_file", "has_abstract"]
FILE_RECORDS = 10_000  # records per synthetic input file


def real_records() -> list[Record]:
    paths = sorted(p for p in (SHARED / "exports").rglob("*") if p.is_file())
    paths += sorted((ROOT / "corpus" / "seeds").glob("*.txt"))
    return [record for batch in iter_ingest_batches(paths, set(), 10_000) for record in batch.records]


def synthetic(base: list[Record], start: int, count: int) -> Iterator[tuple[Record, str]]:
    """(record, input sha) for records start .. start+count-1: copy k of base record i, made distinct."""
    for n in range(start, start + count):
        copy, index = divmod(n, len(base))
        original = base[index]
        file_number = n // FILE_RECORDS
        record = dataclasses.replace(
            original,
            id=f"{copy}-{original.id}",
            source_file=f"synthetic_{file_number:05d}.ris",
            position=n % FILE_RECORDS + 1,
            title=f"C{copy} {original.title}",
            abstract=f"C{copy} {original.abstract}" if original.abstract else "",
            authors=list(original.authors),
            keywords=list(original.keywords),
            flags=list(original.flags),
            extra=dict(original.extra),
        )
        record.record_id = make_record_id(f"synthetic:{file_number}", f"{record.position}\x1f{record.id}")
        yield record, _file_sha(file_number)


def _file_sha(file_number: int) -> str:
    return make_record_id("synthetic-file", str(file_number)).ljust(64, "0")


class Meter:
    """Wall and CPU seconds per phase (CPU: this process, user + system; on a shared machine the wall
    time also counts waiting for the cores), peak RSS so far and RSS now."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def report(self, phase: str, records: int, extra: str = "") -> None:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        now = _rss_now_mb()
        print(
            f"{phase:<12} {records:>10,} rec  wall {wall:>7.1f} s ({records / wall:>9,.0f} rec/s)"
            f"  cpu {cpu:>7.1f} s ({records / max(cpu, 1e-9):>9,.0f} rec/s)"
            f"  peak RSS {peak:>6,.0f} MB  now {now:>6,.0f} MB  {extra}",
            flush=True,
        )
        self.start()


def _rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stage_run(store: Store, base: list[Record], start: int, count: int, batch_size: int) -> stages.RunRecord:
    run = stages.start_run()
    store.begin_run(run)
    records = synthetic(base, start, count)
    done = 0
    while done < count:
        batch = [next(records) for _ in range(min(batch_size, count - done))]
        store.stage_records(run.run_id, [r for r, _ in batch], {r.record_id: sha for r, sha in batch})
        store.stage_inputs(run.run_id, _finished_files(start, done, len(batch)))
        done += len(batch)
    return run


def _finished_files(start: int, done: int, size: int) -> list[InputEntry]:
    first, last = (start + done) // FILE_RECORDS, (start + done + size) // FILE_RECORDS
    return [InputEntry(_file_sha(n), f"synthetic_{n:05d}.ris", "ris", "utf-8", 0, FILE_RECORDS) for n in range(first, last)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5_000)
    parser.add_argument("--url", help="store URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()
    meter = Meter()
    folder = tempfile.TemporaryDirectory(prefix="store-bench-")
    url = args.url or f"sqlite:///{Path(folder.name) / 'review.db'}"

    base = real_records()
    meter.report("real data", len(base))
    store = open_store(url)

    meter.start()
    run = stage_run(store, base, 0, args.records, args.batch_size)
    meter.report("stage", args.records, f"batches of {args.batch_size:,}")

    outcome = flag_truncated_prefixes_in_store(store, run.run_id)
    meter.report("flag", args.records, f"{outcome.records_compared:,} compared, {outcome.staged_changed:,} flagged")

    store.commit_run(run)
    meter.report("commit", args.records)

    frame = store.record_projection(DEDUP_FIELDS)
    frame_mb = frame.memory_usage(deep=True).sum() / 2**20
    meter.report("projection", len(frame), f"{len(DEDUP_FIELDS)} columns, frame {frame_mb:,.0f} MB")
    del frame

    seen = sum(len(batch) for batch in store.iter_record_batches(args.batch_size))
    meter.report("iterate", seen, f"batches of {args.batch_size:,}")

    new = max(1, args.records // 100)
    second = stage_run(store, base, args.records, new, args.batch_size)
    outcome = flag_truncated_prefixes_in_store(store, second.run_id)
    store.commit_run(second)
    meter.report("incremental", new,
                 f"1% new: {outcome.records_compared:,} compared, {outcome.committed_changed:,} stored records flagged")

    if url.startswith("sqlite:///"):
        size = sum(p.stat().st_size for p in Path(folder.name).iterdir()) / 2**20
        print(f"store file {size:,.0f} MB for {store.count_records():,} records")
    folder.cleanup()


if __name__ == "__main__":
    main()
