"""The matrix as CSV files: UTF-8 with BOM (Excel opens it right), formula-looking cells neutralised, fixed order.

Files written into the outputs folder:
    evidence_matrix_wide.csv   one row per study, one column per code id
    evidence_matrix_long.csv   one row per (study, code)
    code_summary.csv           one row per code: studies, directions, who coded, years, contexts
    crosstab_<facet>.csv       codes x facet values (distinct studies): country, design, year_band, lens
"""

from __future__ import annotations

from pathlib import Path

from pipeline.io import write_csv
from pipeline.synth import Matrix


def write_csv_exports(matrix: Matrix, outputs_dir: Path) -> list[Path]:
    """Write the CSV files (pipeline.io.write_csv: atomic, BOM, neutralised cells); return their paths."""
    frames = {
        "evidence_matrix_wide.csv": matrix.wide,
        "evidence_matrix_long.csv": matrix.long,
        "code_summary.csv": matrix.summary,
    }
    for facet, table in matrix.crosstabs.items():
        frames[f"crosstab_{facet}.csv"] = table
    paths = []
    for name, frame in frames.items():
        path = outputs_dir / name
        write_csv(frame, path)
        paths.append(path)
    return paths
