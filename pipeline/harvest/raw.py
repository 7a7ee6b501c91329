"""Raw API payloads, stored immutably with their provenance (what PRISMA-S asks a search to report).

Layout: <raw_dir>/<source>/<YYYY-MM-DD>/<sha256>.json (or .xml), the bytes exactly as received, and
beside it <sha256>.provenance.json: source, query, request URL and parameters (keys and the contact
address redacted), fetch time, client and version, page number, HTTP status, size and hash.
Files are content-addressed and never overwritten: the same bytes fetched again on the same day keep
their first provenance record.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from pipeline.io import atomic_write, write_json

log = logging.getLogger(__name__)

PROVENANCE_SUFFIX = ".provenance.json"


def store_raw(raw_dir: Path, source: str, body: bytes, suffix: str, provenance: dict[str, Any]) -> Path:
    """Write one payload and its provenance (unless already there); return the payload's path."""
    digest = hashlib.sha256(body).hexdigest()
    day = str(provenance.get("fetched_at", ""))[:10] or "undated"
    folder = raw_dir / source / day
    path = folder / f"{digest}{suffix}"
    if not path.exists():
        with atomic_write(path, "wb") as handle:
            handle.write(body)
    sidecar = provenance_path(path)
    if not sidecar.exists():
        write_json({**provenance, "sha256": digest, "bytes": len(body), "file": path.name}, sidecar)
    else:
        log.debug("%s: already stored, provenance kept", path)
    return path


def provenance_path(payload: Path) -> Path:
    return payload.with_name(payload.name.split(".", 1)[0] + PROVENANCE_SUFFIX)


def read_provenance(payload: Path) -> dict[str, Any]:
    return json.loads(provenance_path(payload).read_text(encoding="utf-8"))


def is_payload(path: Path) -> bool:
    """True for a stored payload (not its provenance sidecar, not a temporary file)."""
    return path.is_file() and not path.name.endswith(PROVENANCE_SUFFIX) and not path.name.startswith(".")
