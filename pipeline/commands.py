"""Functions behind the single-purpose CLI commands (ingest, status, ...)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.io import atomic_write
from pipeline.records import Record
from pipeline.store import open_store
from pipeline.workspace import load_workspace


# Truncated copies are short; comparing the first characters of every abstract finds them while
# holding only this much text per record, so `review ingest` streams files of any size.
_PREFIX_WINDOW = 400


def ingest_to_jsonl(
    paths: list[Path], out_path: Path, on_file_done: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Read, clean and write records as JSON Lines; every file is read before the output appears."""
    from pipeline.clean import clean_records, flag_truncated_prefixes

    summary: list[dict[str, Any]] = []
    stand_ins: list[Record] = []
    with tempfile.TemporaryDirectory(dir=out_path.parent if out_path.parent.exists() else None) as tmp:
        first_pass = Path(tmp) / "cleaned.jsonl"
        with open(first_pass, "w", encoding="utf-8") as handle:
            for record in clean_records(_read_all(paths, summary, on_file_done), find_prefixes=False):
                stand_ins.append(Record(id=record.id, source_format="", source_file="", position=0,
                                        abstract=record.abstract[:_PREFIX_WINDOW], record_id=record.record_id))
                handle.write(json.dumps(asdict(record), ensure_ascii=False, sort_keys=True) + "\n")
        flag_truncated_prefixes(stand_ins)
        with open(first_pass, encoding="utf-8") as source, atomic_write(out_path) as target:
            for line, stand_in in zip(source, stand_ins, strict=True):
                row = json.loads(line)
                row["flags"] += [flag for flag in stand_in.flags if flag not in row["flags"]]
                target.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    return summary


def _read_all(
    paths: list[Path], summary: list[dict[str, Any]], on_file_done: Callable[[], None] | None
) -> Iterator[Record]:
    for path in paths:
        source = open_source(path)
        reader = detect_format(source)
        row = {"file": str(path), "format": reader.FORMAT, "records": 0, "with_abstract": 0}
        summary.append(row)
        for record in read_source(source, reader):
            row["records"] += 1
            row["with_abstract"] += int(record.has_abstract())
            yield record
        if row["records"] == 0:
            raise no_records_error(source, reader)
        if on_file_done:
            on_file_done()


def workspace_status(root: Path) -> dict[str, Any]:
    """Counts from the store: inputs, records, runs."""
    workspace = load_workspace(root)
    store = open_store(workspace.store_url)
    inputs = store.inputs()
    runs = store.runs()
    counts = {
        "input files": len(inputs),
        "records identified": sum(entry.n_records for entry in inputs),
        "records in store": store.count_records(),
        "runs": len(runs),
    }
    return {"name": workspace.config.name, "counts": counts, "runs": [asdict(run) for run in runs]}
