"""pipeline.io.write_csv: a large table is written in chunks, with the bytes of one whole write."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline import io
from pipeline.ingest import read_file
from pipeline.records import records_to_frame

REPO = Path(__file__).resolve().parents[1]


def _real_frame() -> pd.DataFrame:
    """Records of a real RIS export (tests/data), with the awkward cells a CSV must carry: empty, missing
    integers, a formula-looking title, a quote and a line break."""
    (path,) = sorted((REPO / "tests" / "data").rglob("*.ris"))[:1]
    frame = records_to_frame(list(read_file(path))).head(40).astype(str)
    frame["year"] = pd.array([None if i % 5 == 0 else 2000 + i for i in range(len(frame))], dtype="Int64")
    frame.loc[3, "title"] = '=HYPERLINK("http://x")'
    frame.loc[4, "title"] = 'two\nlines, "quoted"'
    return frame


@pytest.mark.parametrize("excel", [True, False])
def test_chunked_csv_has_the_bytes_of_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, excel: bool) -> None:
    frame = _real_frame()
    io.write_csv(frame, tmp_path / "whole.csv", excel=excel)
    monkeypatch.setattr(io, "CSV_CHUNK_ROWS", 7)
    io.write_csv(frame, tmp_path / "chunked.csv", excel=excel)
    io.write_csv(frame.iloc[:0], tmp_path / "empty.csv", excel=excel)
    whole = (tmp_path / "whole.csv").read_bytes()
    assert (tmp_path / "chunked.csv").read_bytes() == whole
    assert whole.count(b"\r\n") > len(frame)  # header and rows (and a quoted line break)
    assert (tmp_path / "empty.csv").read_bytes() == whole.split(b"\r\n", 1)[0] + b"\r\n"  # the header only
    if excel:
        assert b"'=HYPERLINK" in whole
