"""The reviewer-sheet fixtures shared by the sheet, ledger, agreement and LibreOffice tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.codebook import load_codebook

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "sheets"
CODEBOOK = load_codebook(REPO / "codebook" / "school_to_school.yaml")
ASSIGNMENTS = pd.read_csv(DATA / "assignments.csv", dtype=str, keep_default_na=False).astype({"confidence": float})
STUDIES = pd.read_csv(DATA / "studies.csv", dtype=str, keep_default_na=False)
