"""The matrix as CSV files: UTF-8 with BOM (Excel opens it right), formula-looking cells neutralised, fixed order.

Files written into the outputs folder:
    evidence_matrix_wide.csv   one row per study, one column per code id
    evidence_matrix_long.csv   one row per (study, code), with who decided it (method, decided_by)
    code_summary.csv           one row per code: studies, directions, who coded, years, contexts
    crosstab_<facet>.csv       codes x facet values (distinct studies): country, design, year_band, lens
    agreement_<table>.csv      only when agreement tables are given: one file per table, empty ones as a header
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipeline.errors import ReviewError
from pipeline.io import write_csv
from pipeline.synth import Matrix


def write_csv_exports(
    matrix: Matrix, outputs_dir: Path, *, agreement: Mapping[str, pd.DataFrame] | None = None
) -> list[Path]:
    """Write the CSV files (pipeline.io.write_csv: atomic, BOM, neutralised cells); return their paths."""
    frames = {
        "evidence_matrix_wide.csv": matrix.wide,
        "evidence_matrix_long.csv": matrix.long,
        "code_summary.csv": matrix.summary,
    }
    for facet, table in matrix.crosstabs.items():
        frames[f"crosstab_{facet}.csv"] = table
    if agreement is not None:
        frames.update(_agreement_files(agreement))
    paths = []
    for name, frame in frames.items():
        path = outputs_dir / name
        write_csv(frame, path)
        paths.append(path)
    return paths


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
