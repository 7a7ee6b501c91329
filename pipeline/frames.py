"""Frame helpers pandas is slow at for the corpus's Arrow-backed text columns."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def member_of(column: pd.Series, values: Iterable[Any]) -> np.ndarray:
    """`column.isin(values)` as a bool array. For Arrow strings Arrow answers: pandas makes a pyarrow scalar of
    every value first (100,000 record ids: ~0.9 s, against ~20 ms here)."""
    values = list(values)
    if not _arrow_strings(column) or not all(isinstance(value, str) for value in values):
        return column.isin(values).to_numpy()  # missing values and non-strings compare as pandas compares them
    arrow = pa.array(column.array)
    value_set = pa.array(values, type=arrow.type)
    found = pc.is_in(arrow, value_set=value_set).fill_null(False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_strings(column: pd.Series) -> bool:
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    return isinstance(dtype, pd.ArrowDtype) and (
        pa.types.is_string(dtype.pyarrow_dtype) or pa.types.is_large_string(dtype.pyarrow_dtype)
    )
