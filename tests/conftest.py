"""Shared fixtures: paths to the real data beside the clone, and a throw-away workspace."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
SEEDS = REPO / "corpus" / "seeds"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace made by `init`, with the bundled seeds as its only inputs."""
    from pipeline.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws")
    seeds = ws.root / "corpus" / "files" / "seeds"
    seeds.mkdir(parents=True)
    for seed in sorted(SEEDS.glob("*.txt")):
        shutil.copyfile(seed, seeds / seed.name)
    return ws.root
