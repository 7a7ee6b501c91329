"""Exports of the evidence-synthesis matrix into outputs/: CSV, formatted XLSX, an offline HTML evidence map,
and the PRISMA 2020 flow diagram (SVG and PNG).

Every file is deterministic: identical inputs give byte-identical files (no timestamps inside them; the run time
lives in the run summary). Every file is written atomically (pipeline.io.atomic_write).

Scale: the CSV and XLSX files are written a chunk of rows at a time (memory does not grow with the number of
studies); a table longer than an Excel sheet continues in numbered sheets; the HTML map of a review of more than
html_map.FULL_MAP_MAX_STUDIES studies counts every study but embeds quotes for the first studies of each cell only,
and says so on the page (see pipeline.export.html_map).

Public API:
    write_exports(matrix, prisma, outputs_dir, formats=("csv", "xlsx", "html"), *, agreement=None) -> list[Path]
    write_prisma(prisma, outputs_dir) -> list[Path]
    prisma_counts(...) -> dict            (builds the PRISMA counts dict; see pipeline.export.prisma)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ReviewError
from pipeline.export.prisma import prisma_counts, write_prisma
from pipeline.synth import Matrix

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("csv", "xlsx", "html", "prisma")
DEFAULT_FORMATS: tuple[str, ...] = ("csv", "xlsx", "html")

__all__ = ["DEFAULT_FORMATS", "FORMATS", "prisma_counts", "write_exports", "write_prisma"]


def write_exports(
    matrix: Matrix,
    prisma: Mapping[str, Any] | None,
    outputs_dir: str | Path,
    formats: Iterable[str] = DEFAULT_FORMATS,
    *,
    agreement: Mapping[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """Write the matrix in each format ('csv', 'xlsx', 'html'; 'prisma' adds the flow diagram); return the paths.

    `prisma` is the counts dict described in pipeline.export.prisma (None: the XLSX and HTML leave it out).
    `agreement` is pipeline.agreement.agreement_report's dict of tables: the CSV export adds agreement_<table>.csv
    files, the XLSX one sheet per table, the HTML an Agreement section; without a reviewer decision in them the
    XLSX and HTML say so in one line. None (the default) leaves every file as it was without agreement.
    """
    wanted = _check_formats(formats)
    if agreement is not None:
        from pipeline.export.agreement_view import checked

        agreement = checked(agreement)  # a bad table fails before any file is written
    outputs = Path(outputs_dir)
    written: list[Path] = []
    if "csv" in wanted:
        from pipeline.export.csv_export import write_csv_exports

        written.extend(write_csv_exports(matrix, outputs, agreement=agreement))
    if "xlsx" in wanted:
        from pipeline.export.xlsx_export import write_xlsx

        written.append(write_xlsx(matrix, prisma, outputs / "evidence_matrix.xlsx", agreement=agreement))
    if "html" in wanted:
        from pipeline.export.html_map import write_html_map

        written.append(write_html_map(matrix, prisma, outputs / "evidence_map.html", agreement=agreement))
    if "prisma" in wanted:
        if prisma is None:
            raise ReviewError("the 'prisma' export needs the PRISMA counts; pass them to write_exports.")
        written.extend(write_prisma(prisma, outputs))
    log.info("wrote %d export file(s) into %s", len(written), outputs)
    return written


def _check_formats(formats: Iterable[str]) -> list[str]:
    wanted = [str(f).strip().lower() for f in ([formats] if isinstance(formats, str) else formats)]
    unknown = [f for f in wanted if f not in FORMATS]
    if unknown:
        raise ReviewError(f"unknown export format {unknown[0]!r}; use one of {', '.join(FORMATS)}.")
    return wanted
