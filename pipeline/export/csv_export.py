"""The matrix as CSV files: UTF-8 with BOM (Excel opens it right), formula-looking cells neutralised, fixed order.

Files written into the outputs folder:
    evidence_matrix_wide.csv   one row per study, one column per code id
    evidence_matrix_long.csv   one row per (study, code), with who decided it (method, decided_by)
    code_summary.csv           one row per code: studies, directions, who coded, years, contexts
    crosstab_<facet>.csv       codes x facet values (distinct studies): country, design, year_band, lens
    agreement_<table>.csv      only when agreement tables are given: one file per table, empty ones as a header

The wide and long files are written a chunk of rows at a time (Matrix.iter_wide / iter_long): memory stays bounded
by the chunk, whatever the number of studies; the bytes are those pipeline.io.write_csv gives for the whole frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import ReviewError
from pipeline.io import _FORMULA_PREFIXES, atomic_write, write_csv
from pipeline.synth import Matrix


def write_csv_exports(
    matrix: Matrix, outputs_dir: Path, *, agreement: Mapping[str, pd.DataFrame] | None = None
) -> list[Path]:
    """Write the CSV files (atomic, BOM, neutralised cells, as pipeline.io.write_csv); return their paths."""
    paths = [outputs_dir / "evidence_matrix_wide.csv", outputs_dir / "evidence_matrix_long.csv"]
    write_csv_chunks(matrix.iter_wide(), paths[0])
    write_csv_chunks(matrix.iter_long(), paths[1])
    frames = {"code_summary.csv": matrix.summary}
    for facet, table in matrix.crosstabs.items():
        frames[f"crosstab_{facet}.csv"] = table
    if agreement is not None:
        frames.update(_agreement_files(agreement))
    for name, frame in frames.items():
        path = outputs_dir / name
        write_csv(frame, path)
        paths.append(path)
    return paths


def write_csv_chunks(chunks: Iterable[pd.DataFrame], path: Path) -> None:
    """One CSV from consecutive chunks of one table (same columns): what write_csv(pd.concat(chunks)) writes,
    without the whole table in memory. An empty iterable writes an empty file."""
    with atomic_write(path, encoding="utf-8-sig") as handle:
        for number, chunk in enumerate(chunks):
            # CRLF (RFC 4180, what Excel writes) also makes the csv module quote a cell holding a lone CR.
            neutralised(chunk).to_csv(handle, index=False, header=number == 0, lineterminator="\r\n")


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """pipeline.io.neutralise_frame, vectorised: text a spreadsheet would evaluate gets a leading quote."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            risky = _risky(values)
            if risky.any():
                values = values.copy()
                values[risky] = "'" + values[risky]
                out[column] = values
    return out


def _risky(values: pd.Series) -> np.ndarray:
    """Which cells are text starting with a formula prefix (pipeline.io.neutralise_cell's test)."""
    if isinstance(values.dtype, pd.StringDtype):
        return values.str.startswith(_FORMULA_PREFIXES).fillna(False).to_numpy(dtype=bool)
    cells = values.to_numpy(dtype=object)  # may mix text with numbers or NA: test each cell
    return np.fromiter((isinstance(v, str) and v.startswith(_FORMULA_PREFIXES) for v in cells), dtype=bool,
                       count=len(cells))


def _agreement_files(agreement: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table, empty or not, so a script reading them finds the same files each run (figures unrounded)."""
    from pipeline.export.agreement_view import checked, file_stem

    files: dict[str, pd.DataFrame] = {}
    for name, frame in checked(agreement).items():
        file_name = f"agreement_{file_stem(name)}.csv"
        if file_name in files:
            raise ReviewError(f"two agreement tables would both be written to {file_name}; give them distinct names.")
        files[file_name] = frame
    return files
