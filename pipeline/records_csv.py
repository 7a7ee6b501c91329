"""outputs/records.csv, the cleaned corpus (one row per record, in corpus order: file, position, record id), and
the layout that lets an update rewrite only the rows that changed.

A whole write serialises every record and keeps each row's record id, sort key and byte offset in a layout file
(corpus/cache/records_csv.layout.npz). An update's rows differ from the last file's only in the records the run
adds and those whose flags it changes (a new record shows that a stored abstract is a truncated copy): `splice`
copies the last file's unchanged byte ranges and serialises just those records. Both write every row through
`encoded_rows`, so a spliced file is byte for byte the file a whole write gives (tests/test_records_csv.py).

The layout is trusted only when it describes the records.csv in outputs/ as published (size and modification
time), was made by this format, and no run has committed since the run that wrote it; otherwise the whole file
is written. Cells are neutralised as every CSV output is (pipeline.io.neutralise_frame); UTF-8 with a BOM and
CRLF rows, as pipeline.io.write_csv writes.
"""

from __future__ import annotations

import bisect
import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from pipeline.io import atomic_write, neutralise_frame
from pipeline.records import FRAME_COLUMNS

COLUMNS = FRAME_COLUMNS  # records_to_frame's columns, in its order
LAYOUT_NAME = "records_csv.layout.npz"
LAYOUT_VERSION = 1  # bump when a row's bytes or the layout's arrays change
ROWS_PER_CHUNK = 20_000  # rows serialised at a time
COPY_BYTES = 8 * 1024 * 1024  # unchanged rows are copied from the last file this many bytes at a time
_BOM = "\ufeff".encode()
_SORT_KEYS = ["source_file", "position", "record_id"]


@dataclass(frozen=True)
class RecordsCsvFiles:
    """records.csv where it is published (the last run's, which a splice reads) and where this run writes it
    until its commit, and the same two places for its layout."""

    published: Path
    pending: Path
    layout: Path
    pending_layout: Path


@dataclass
class CsvLayout:
    """Where each row of a records.csv is, and which record it holds (rows in file order)."""

    record_ids: np.ndarray  # bytes (numpy S)
    files: np.ndarray  # the distinct source files (str), indexed by file_codes
    file_codes: np.ndarray  # int32 per row
    positions: np.ndarray  # int64 per row
    offsets: np.ndarray  # int64, one per row and then the file's size: row i is bytes offsets[i]:offsets[i + 1]
    committed_runs: int = 0  # the store's committed runs once the run that wrote the file commits
    mtime_ns: int = 0  # of the file as written (a rename keeps it)

    def __len__(self) -> int:
        return len(self.record_ids)

    def save(self, path: Path) -> None:
        meta = {"version": _format_id(), "committed_runs": self.committed_runs, "mtime_ns": self.mtime_ns}
        with atomic_write(path, "wb") as handle:
            np.savez(
                handle, meta=np.array(json.dumps(meta)), record_ids=self.record_ids, files=self.files,
                file_codes=self.file_codes, positions=self.positions, offsets=self.offsets,
            )


def usable_layout(layout_path: Path, csv_path: Path, committed_runs: int) -> CsvLayout | None:
    """The layout of the records.csv at `csv_path` if it can be trusted for this run (see the module docstring)."""
    try:
        with np.load(layout_path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            layout = CsvLayout(
                saved["record_ids"], saved["files"], saved["file_codes"], saved["positions"], saved["offsets"],
                int(meta["committed_runs"]), int(meta["mtime_ns"]),
            )
        stat = csv_path.stat()
    except Exception:  # a cache: whatever is wrong with it (missing, truncated, foreign), the file is written whole
        return None
    fits = meta.get("version") == _format_id() and layout.committed_runs == committed_runs
    same_file = stat.st_size == int(layout.offsets[-1]) and stat.st_mtime_ns == layout.mtime_ns
    return layout if fits and same_file else None


def encoded_rows(frame: pd.DataFrame) -> list[bytes]:
    """Each record's CSV row (CRLF-terminated UTF-8), formula-looking cells neutralised; missing values empty."""
    safe = neutralise_frame(frame[COLUMNS])
    lines = _Lines()
    csv.writer(lines, lineterminator="\r\n").writerows(zip(*(_cells(safe[c]) for c in COLUMNS), strict=True))
    return [line.encode("utf-8") for line in lines.items]


def write_whole(frame: pd.DataFrame, path: Path, committed_runs: int) -> CsvLayout:
    """records.csv of the corpus frame (in corpus order, as stages.corpus_frame gives it), written atomically."""
    rows = _RowLog()
    with atomic_write(path, "wb") as handle:
        rows.start(handle)
        for start in range(0, len(frame), ROWS_PER_CHUNK):
            chunk = frame.iloc[start : start + ROWS_PER_CHUNK]
            rows.write_new(handle, chunk, encoded_rows(chunk))
    return rows.layout(path, committed_runs)


def splice(
    last: CsvLayout, last_path: Path, changed: pd.DataFrame, path: Path, committed_runs: int
) -> CsvLayout:
    """records.csv at `path`: the file at `last_path` (described by `last`) with the `changed` records (the run's
    new records and those whose flags it changed; columns COLUMNS, any order) put in, or in place of, their rows."""
    changed = changed.sort_values(_SORT_KEYS, kind="stable", ignore_index=True)
    order, encoded = _merged_order(last, changed), encoded_rows(changed)
    rows = _RowLog()
    with atomic_write(path, "wb") as handle, last_path.open("rb") as source:
        rows.start(handle)
        for kind, first, stop in _runs(order):
            if kind == "old":
                rows.copy_old(handle, source, last, first, stop)
            else:
                rows.write_new(handle, changed.iloc[first:stop], encoded[first:stop])
    return rows.layout(path, committed_runs)


# --- merging ---------------------------------------------------------------------------------------


def _merged_order(last: CsvLayout, changed: pd.DataFrame) -> np.ndarray:
    """Per output row, the last file's row number (>= 0) or -1 - the row of `changed` (both in corpus order): the
    last file's rows that stay, with each changed row put where its key falls (a binary search among them)."""
    kept = np.flatnonzero(~np.isin(last.record_ids, np.array(changed["record_id"].tolist(), dtype="S")))
    kept_keys = _LayoutKeys(last, kept)
    new_keys = zip(changed["source_file"].tolist(), changed["position"].tolist(), changed["record_id"].tolist(),
                   strict=True)
    places = [bisect.bisect_left(kept_keys, key) for key in new_keys]  # non-decreasing: `changed` is sorted
    return np.insert(kept, places, -1 - np.arange(len(changed), dtype=np.int64)) if places else kept


class _LayoutKeys(Sequence[tuple[str, int, str]]):
    """The sort keys of some of a layout's rows, made only as a search looks at them."""

    def __init__(self, layout: CsvLayout, rows: np.ndarray) -> None:
        self.layout, self.rows, self.names = layout, rows, layout.files.tolist()

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[str, int, str]:  # type: ignore[override]
        row = int(self.rows[index])
        layout = self.layout
        return self.names[layout.file_codes[row]], int(layout.positions[row]), layout.record_ids[row].decode("ascii")


def _runs(order: np.ndarray) -> Iterator[tuple[str, int, int]]:
    """("old", first, stop) for each run of consecutive rows of the last file, ("new", first, stop) for each run
    of consecutive changed rows, in output order."""
    if not len(order):
        return
    is_old = order >= 0
    step = np.where(is_old, order, -1 - order)
    breaks = np.flatnonzero((is_old[1:] != is_old[:-1]) | (step[1:] != step[:-1] + 1)) + 1
    for first, stop in zip(np.r_[0, breaks].tolist(), np.r_[breaks, len(order)].tolist(), strict=True):
        yield ("old" if is_old[first] else "new"), int(step[first]), int(step[stop - 1]) + 1


# --- writing ---------------------------------------------------------------------------------------


class _RowLog:
    """Writes the header and rows, and notes each row's record id, sort key and offset for the layout."""

    def __init__(self) -> None:
        self.offset = 0
        self.file_codes: dict[str, int] = {}  # source file -> its code, in order of first appearance
        self.ids: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.positions: list[np.ndarray] = []
        self.starts: list[np.ndarray] = []

    def start(self, handle: BinaryIO) -> None:
        lines = _Lines()
        csv.writer(lines, lineterminator="\r\n").writerow(COLUMNS)
        self._emit(handle, _BOM + lines.items[0].encode("utf-8"))

    def write_new(self, handle: BinaryIO, part: pd.DataFrame, encoded: list[bytes]) -> None:
        sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        codes = np.fromiter((self._code(f) for f in part["source_file"].tolist()), dtype=np.int32, count=len(part))
        self._note(np.array(part["record_id"].tolist(), dtype="S"), codes, part["position"].to_numpy(dtype=np.int64),
                   self.offset + np.cumsum(sizes) - sizes)
        self._emit(handle, b"".join(encoded))

    def copy_old(self, handle: BinaryIO, source: BinaryIO, last: CsvLayout, first: int, stop: int) -> None:
        begin, end = int(last.offsets[first]), int(last.offsets[stop])
        translate = np.array([self._code(str(name)) for name in last.files], dtype=np.int32)
        self._note(last.record_ids[first:stop], translate[last.file_codes[first:stop]], last.positions[first:stop],
                   self.offset + last.offsets[first:stop] - begin)
        source.seek(begin)
        while begin < end:
            block = source.read(min(COPY_BYTES, end - begin))
            if not block:
                raise OSError(f"{source.name} ended before its layout said (at byte {begin} of {end})")
            self._emit(handle, block)
            begin += len(block)

    def layout(self, path: Path, committed_runs: int) -> CsvLayout:
        def joined(parts: list[np.ndarray], dtype: str) -> np.ndarray:
            return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

        return CsvLayout(
            record_ids=joined(self.ids, "S1"),
            files=np.array(list(self.file_codes), dtype=str),
            file_codes=joined(self.codes, "int32"),
            positions=joined(self.positions, "int64"),
            offsets=np.r_[joined(self.starts, "int64"), self.offset].astype(np.int64),
            committed_runs=committed_runs,
            mtime_ns=path.stat().st_mtime_ns,
        )

    def _code(self, source_file: str) -> int:
        return self.file_codes.setdefault(source_file, len(self.file_codes))

    def _note(self, ids: np.ndarray, codes: np.ndarray, positions: np.ndarray, starts: np.ndarray) -> None:
        self.ids.append(ids)
        self.codes.append(codes)
        self.positions.append(positions)
        self.starts.append(np.asarray(starts, dtype=np.int64))

    def _emit(self, handle: BinaryIO, data: bytes) -> None:
        handle.write(data)
        self.offset += len(data)


class _Lines:
    """A file for csv.writer that keeps each line it is given (the writer writes a row at a time)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def write(self, line: str) -> int:
        self.items.append(line)
        return len(line)


def _cells(column: pd.Series) -> list[object]:
    """A column's values for csv.writer: missing values as None (written empty), numbers and text as they are."""
    values = column.astype(object)
    return values.where(column.notna(), None).tolist()


def _format_id() -> str:
    """Which rows a layout describes: this format and these columns."""
    return hashlib.sha256(json.dumps([LAYOUT_VERSION, COLUMNS]).encode()).hexdigest()[:16]


__all__ = [
    "COLUMNS", "LAYOUT_NAME", "CsvLayout", "RecordsCsvFiles", "encoded_rows", "splice", "usable_layout", "write_whole",
]
