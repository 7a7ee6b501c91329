"""The run's studies on disk: one Parquet file in study_id order, read a few columns or a slice of rows at a time.

A million records make ~700,000 studies, ~2.5 GB as a frame. The flow writes them once, right after they are
built, and every later stage reads only what it needs: coding the title, abstract and flags in batches, the
topic model its texts in passes, PRISMA the ids and record counts, the export the study columns. The file is the
next run's studies cache (stages.load_study_cache): it waits under corpus/cache/pending and is published after
the store commits.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.io import atomic_write

ROW_GROUP_ROWS = 20_000  # rows per Parquet row group: what one read of a slice decodes at least


@dataclass(frozen=True)
class StudyTable:
    """A studies file (study_id order) and its row count; picklable, so a child process or worker can read it."""

    path: Path
    rows: int

    def __len__(self) -> int:
        return self.rows

    @classmethod
    def write(cls, studies: pd.DataFrame, path: Path, signatures: pd.Series | None = None) -> StudyTable:
        """Write `studies` atomically (with each study's signature, when given: the cache checks it)."""
        with StudyTableWriter(path, signatures, empty=studies) as writer:
            writer.write(studies)
        return writer.table

    @property
    def columns(self) -> list[str]:
        return [name for name in pq.read_schema(self.path).names if name != "signature"]

    def read(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Whole columns (every study's), in study_id order."""
        return pd.read_parquet(self.path, columns=list(columns or self.columns))

    def slices(self, columns: Sequence[str], rows: int) -> Iterator[pd.DataFrame]:
        """Consecutive slices of `rows` studies (the last may be shorter), each indexed from its first row's
        position, so the slices of a pass line up with a whole-column read."""
        # Without pre-buffering: with it, the reader keeps every column chunk it has read until the pass ends
        # (title + abstract of 700,000 studies: ~0.5 GB more, and slower).
        handle = pq.ParquetFile(self.path, pre_buffer=False)
        schema = handle.schema_arrow
        start = 0
        for batch in handle.iter_batches(batch_size=rows, columns=list(columns)):
            frame = pa.Table.from_batches([batch]).replace_schema_metadata(schema.metadata).to_pandas()
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps the pass's pages otherwise


class StudyTableWriter:
    """Writes a study table a part at a time (consecutive parts, in study_id order), so the studies of a million
    records (~1.2 GB as a frame, more while it is put together) are never held whole. Use as a context manager:
    the file appears, atomically, only when the block ends without an error; `table` is the result."""

    def __init__(self, path: Path, signatures: pd.Series | None = None, empty: pd.DataFrame | None = None) -> None:
        self.path, self.rows = path, 0
        self._signatures, self._empty = signatures, empty  # `empty`: the columns to write when no part came
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def __enter__(self) -> StudyTableWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = atomic_write(self.path, "wb")
        self._handle = self._file.__enter__()
        return self

    def write(self, studies: pd.DataFrame) -> None:
        if not len(studies):
            return
        frame = studies if self._signatures is None else studies.assign(
            signature=studies["study_id"].map(self._signatures)
        )
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._schema = table.schema
            self._writer = pq.ParquetWriter(self._handle, self._schema)
        else:  # a column all empty in this part (e.g. null) takes the first part's type
            table = table.cast(self._schema)
        self._writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        self.rows += len(studies)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is not None:
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    self._writer.close()
            return bool(self._file.__exit__(exc_type, exc, tb))  # the temporary file is removed
        try:
            self._finish()
        except BaseException as error:
            self._file.__exit__(type(error), error, error.__traceback__)
            raise
        return bool(self._file.__exit__(None, None, None))  # the file takes its place

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            return
        frame = self._empty if self._empty is not None else pd.DataFrame({"study_id": pd.Series(dtype=str)})
        if self._signatures is not None:
            frame = frame.assign(signature=pd.Series(dtype=str))
        frame.to_parquet(self._handle, index=False)

    @property
    def table(self) -> StudyTable:
        return StudyTable(self.path, self.rows)


def study_slices(studies: StudyTable | pd.DataFrame, columns: Sequence[str], rows: int) -> Iterator[pd.DataFrame]:
    """Consecutive slices of `rows` studies, `columns` only, from a study table or from a frame (slices, not copies)."""
    if isinstance(studies, StudyTable):
        yield from studies.slices(columns, rows)
        return
    for start in range(0, len(studies), rows):
        yield studies.iloc[start : start + rows][list(columns)]


def study_columns(studies: StudyTable | pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Whole `columns` of every study, from a study table or from a frame."""
    return studies.read(columns) if isinstance(studies, StudyTable) else studies


class SpilledTexts:
    """One text column of a study table, copied into an unnamed temporary file and read back by row position.

    The export shows every study's abstract (~0.9 GB at a million studies) in display order, which is not the
    table's order; holding them all for that would double the export's memory, reading the table once per chunk
    of the display would decode every abstract a dozen times. Missing values read back as ''.
    """

    def __init__(self, values: Iterable[list[str]]) -> None:
        self._file = tempfile.TemporaryFile(prefix="living-review-texts-")
        lengths: list[np.ndarray] = []
        for part in values:
            encoded = [text.encode("utf-8") for text in part]
            self._file.write(b"".join(encoded))
            lengths.append(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)))
        self._file.flush()
        self._offsets = np.concatenate([np.zeros(1, dtype=np.int64), *lengths]).cumsum()

    @classmethod
    def from_table(cls, table: StudyTable, column: str) -> SpilledTexts:
        from pipeline.subprocess_stage import release_memory

        spilled = cls(part[column].fillna("").astype(str).tolist() for part in table.slices([column], ROW_GROUP_ROWS))
        release_memory()  # Arrow's and glibc's allocators keep the slices' pages otherwise (a million: ~0.7 GB)
        return spilled

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def take(self, positions: np.ndarray) -> list[str]:
        """The texts of the rows at `positions` (table order), in the order asked."""
        starts, ends = self._offsets[positions], self._offsets[np.asarray(positions) + 1]
        texts: list[str] = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            self._file.seek(start)
            texts.append(self._file.read(end - start).decode("utf-8"))
        return texts

    def close(self) -> None:
        self._file.close()
