"""Output helpers: atomic writes and spreadsheet-safe cells."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd


def default_cache_dir() -> Path:
    """Where derived files shared by every review of this user are kept: REVIEW_CACHE_DIR when set, else
    ~/.cache/living-review."""
    env = os.environ.get("REVIEW_CACHE_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "living-review"


# A cell starting with one of these is run as a formula by Excel/LibreOffice (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = "") -> Iterator[IO[Any]]:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        kwargs: dict[str, Any] = {} if "b" in mode else {"encoding": encoding, "newline": newline}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; outputs are meant to be shared
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def neutralise_cell(value: Any) -> Any:
    """Prefix text that a spreadsheet would evaluate with a quote, so it stays text."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """neutralise_cell of every cell; only the few cells that need it are touched (found column by column)."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            risky = _formula_cells(values)
            if risky.any():
                fixed = values.astype(object)
                fixed[risky] = ["'" + value for value in values[risky].tolist()]
                out[column] = fixed.astype(values.dtype)
    return out


def _formula_cells(values: pd.Series) -> np.ndarray:
    try:
        return values.str.startswith(_FORMULA_PREFIXES, na=False).to_numpy(dtype=bool)
    except AttributeError:  # an object column that is not all text (numbers, lists): cell by cell
        cells = values.tolist()
        risky = (isinstance(v, str) and v.startswith(_FORMULA_PREFIXES) for v in cells)
        return np.fromiter(risky, dtype=bool, count=len(cells))


CSV_CHUNK_ROWS = 50_000  # rows neutralised and written at a time: a million-row table is never copied whole


def write_csv(frame: pd.DataFrame, path: str | Path, *, excel: bool = True) -> None:
    """Atomic, deterministic CSV; UTF-8 with BOM so Excel opens it right; formulas neutralised."""
    write_csv_parts([frame], path, excel=excel)


def write_csv_parts(parts: Iterable[pd.DataFrame], path: str | Path, *, excel: bool = True) -> int:
    """write_csv of the parts put one after another (same columns), holding one part at a time: a table made in
    pieces is written without being put together. The header is the first part's. Returns the rows written."""
    rows, header = 0, True
    with atomic_write(path, encoding="utf-8-sig" if excel else "utf-8") as handle:
        for part in parts:
            for start in range(0, max(len(part), int(header)), CSV_CHUNK_ROWS):
                chunk = part.iloc[start : start + CSV_CHUNK_ROWS]
                safe = neutralise_frame(chunk) if excel else chunk
                # CRLF (RFC 4180, what Excel writes) also makes the csv module quote a cell holding a lone CR.
                safe.to_csv(handle, index=False, header=header, lineterminator="\r\n")
                header = False
            rows += len(part)
    return rows


def write_json(data: Any, path: str | Path) -> None:
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, sort_keys=True)
        handle.write("\n")
