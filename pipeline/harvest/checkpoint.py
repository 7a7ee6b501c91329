"""Resumable harvest state: a small JSON file rewritten atomically after every page.

It holds the query's identity (source, query, filters), the cursor/offset to ask for next, the raw
payloads already harvested in this run (so a resumed run can re-read their records instead of
fetching them again), and the start time of the last complete run — the baseline of the next
incremental run ("what is new since then").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.harvest.http import HarvestError
from pipeline.io import write_json

VERSION = 1


@dataclass
class HarvestState:
    source: str
    identity: str
    query: str
    filters: dict[str, Any] = field(default_factory=dict)
    requested_since: str | None = None  # the caller's since (None: incremental from the last run)
    run_since: str | None = None  # the since this run applies
    started_at: str = ""
    updated_at: str = ""
    cursor: dict[str, Any] = field(default_factory=dict)
    page_files: list[str] = field(default_factory=list)  # raw payloads of this run's pages, relative to raw_dir
    pages: int = 0
    records: int = 0
    complete: bool = False
    capped: bool = False
    last_complete_start: str | None = None
    version: int = VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def query_identity(source: str, query: str, filters: dict[str, Any]) -> str:
    """Same source, query and filters give the same identity (and so may share a checkpoint)."""
    canonical = json.dumps([source, query.strip(), filters], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def load_state(path: Path) -> HarvestState | None:
    """The saved state, or None when there is no checkpoint yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    fix = f"delete {path} to start this harvest afresh"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarvestError(f"{path}: the harvest checkpoint is not valid JSON ({exc.msg}); {fix}") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise HarvestError(f"{path}: the harvest checkpoint has an unknown layout; {fix}")
    known = {f.name for f in fields(HarvestState)}
    try:
        return HarvestState(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:
        raise HarvestError(f"{path}: the harvest checkpoint is incomplete ({exc}); {fix}") from None


def save_state(path: Path, state: HarvestState) -> None:
    write_json(state.to_dict(), path)
