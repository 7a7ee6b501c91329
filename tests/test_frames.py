"""member_of answers as Series.isin does, for Arrow strings, object columns, missing values and other types."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipeline.frames import member_of

TEXT = st.text(alphabet="ab\u00e9\u4e2d0", max_size=3)


@given(st.lists(st.none() | TEXT, max_size=30), st.sets(TEXT, max_size=10), st.sampled_from(["str", "string[pyarrow]", object]))
def test_member_of_equals_isin(column: list[str | None], values: set[str], dtype: object) -> None:
    series = pd.Series(column, dtype=dtype)
    assert np.array_equal(member_of(series, values), series.isin(values).to_numpy())
    assert np.array_equal(member_of(series, [*values, None]), series.isin([*values, None]).to_numpy())


def test_member_of_with_numbers_and_an_empty_set() -> None:
    series = pd.Series([1, 2, 3])
    assert member_of(series, {2}).tolist() == [False, True, False]
    assert member_of(pd.Series(["x", "y"], dtype="string[pyarrow]"), []).tolist() == [False, False]
