"""Typed domain errors. The CLI turns each into one sentence and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class ReviewError(Exception):
    """A problem the user can fix. Its message is one sentence: what, where, how to fix."""


class InputFileError(ReviewError):
    """A bad input file: names the file, and the line/row and field where known."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        fix: str,
        *,
        line: int | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        self.line = line
        self.row = row
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if row is not None:
            where += f", row {row}"
        if field:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}; {fix}.")


class ConfigError(ReviewError):
    """A bad review.yaml or codebook: lists every problem with its location."""

    def __init__(self, path: str | Path, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        listing = "; ".join(problems)
        super().__init__(f"{self.path} has {len(problems)} problem(s): {listing}")
