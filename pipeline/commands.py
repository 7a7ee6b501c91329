"""Functions behind the single-purpose CLI commands (ingest, status, ...)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pipeline.ingest import detect_format, no_records_error, open_source, read_source
from pipeline.io import atomic_write
from pipeline.records import Record
from pipeline.store import open_store
from pipeline.workspace import load_workspace


def ingest_to_jsonl(
    paths: list[Path], out_path: Path, on_file_done: Callable[[], None] | None = None
) -> list[dict[str, Any]]:
    """Read, clean and write records as JSON Lines; all files are checked before the output appears."""
    from pipeline.clean import clean_records

    summary: list[dict[str, Any]] = []

    def all_records() -> Iterator[Record]:
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

    with atomic_write(out_path) as handle:
        for record in clean_records(all_records()):
            handle.write(json.dumps(asdict(record), ensure_ascii=False, sort_keys=True))
            handle.write("\n")
    return summary


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
