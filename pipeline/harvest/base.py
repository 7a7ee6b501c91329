"""What every source client provides to the shared harvest loop (pipeline.harvest.core)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from pipeline.harvest.http import BodyKind, Credentials, Fetched, PoliteSession
from pipeline.ingest.fields import bare_doi
from pipeline.ingest.json_records import record_from_mapping
from pipeline.records import Record

# Sources that only offer a publication-date window ask again for this much before the last run,
# because records are often indexed weeks or months after their publication date; the overlap's
# re-harvested records are dropped by source id (harvest(known_ids=...)) and by the corpus dedup.
PUBLICATION_DATE_OVERLAP = timedelta(days=90)

RECORD_FORMAT = "api"


class SourceClient:
    """One scholarly API: its requests, its paging, and its items as Records.

    A cursor is a small JSON-able dict (what the checkpoint saves); `None` as the next cursor means
    the result set is exhausted.
    """

    name: ClassVar[str]
    label: ClassVar[str]
    default_base_url: ClassVar[str]
    kind: ClassVar[BodyKind] = "json"
    suffix: ClassVar[str] = ".json"
    default_page_size: ClassVar[int] = 100
    max_page_size: ClassVar[int] = 200
    min_interval: ClassVar[float] = 0.5  # seconds between requests
    min_interval_with_key: ClassVar[float | None] = None

    def __init__(
        self, *, base_url: str, query: str, filters: dict[str, Any], page_size: int | None, credentials: Credentials
    ) -> None:
        self.base_url = base_url.strip()
        self.query = query
        self.filters = filters
        size = page_size or self.default_page_size
        self.page_size = max(1, min(size, self.max_page_size))
        self.credentials = credentials

    # --- session -------------------------------------------------------------------------------

    @classmethod
    def interval(cls, credentials: Credentials) -> float:
        if credentials.api_key and cls.min_interval_with_key is not None:
            return cls.min_interval_with_key
        return cls.min_interval

    def headers(self) -> dict[str, str]:
        """Extra request headers (an API key sent as a header)."""
        return {}

    def url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path.lstrip('/')}" if path else self.base_url

    # --- paging --------------------------------------------------------------------------------

    def first_cursor(self) -> dict[str, Any]:
        raise NotImplementedError

    def resume_cursor(self, saved: dict[str, Any]) -> dict[str, Any]:
        """Where a resumed harvest starts: the saved cursor, unless the source cannot resume one."""
        return saved

    def restart_cursor(self) -> dict[str, Any]:
        """Where to go after a non-replayable request failed ambiguously (the first page again)."""
        return self.first_cursor()

    def replayable(self, cursor: dict[str, Any]) -> bool:
        """False when asking twice with this cursor would not give the same page."""
        return True

    def prepare(self, session: PoliteSession) -> list[Fetched]:
        """Requests to make before paging (PubMed's esearch); their payloads are stored as raw too."""
        return []

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def validate(self, document: Any) -> None:
        """Raise ValueError when a 200 response is not the expected page (retried as a bad body)."""

    def items(self, document: Any) -> list[Record]:
        raise NotImplementedError

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        raise NotImplementedError

    def total(self, document: Any) -> int | None:
        return None

    # --- incremental ---------------------------------------------------------------------------

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        raise NotImplementedError

    # --- helpers -------------------------------------------------------------------------------

    def mapped(self, item: dict[str, Any], own_id: str) -> Record:
        """One JSON item mapped by the shared JSON mapping, marked as harvested from this source."""
        record = record_from_mapping(item, self.name, 0, self.label)
        record.id = own_id or record.id
        record.source_format = RECORD_FORMAT
        record.doi = bare_doi(record.doi)
        return record

    def auth_params(self, *, key_param: str | None = None, mailto_param: str | None = "mailto") -> dict[str, str]:
        params: dict[str, str] = {}
        if key_param and self.credentials.api_key:
            params[key_param] = self.credentials.api_key
        if mailto_param and self.credentials.mailto:
            params[mailto_param] = self.credentials.mailto
        return params


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple, set)) else [value]


def colon_filter(filters: dict[str, Any], multi_join: str | None = None) -> str:
    """OpenAlex / Crossref `filter=key:value,key:value`; a list value gives one entry per value,
    or one entry with the values joined by `multi_join` (OpenAlex's '|' OR)."""
    parts: list[str] = []
    for key, value in filters.items():
        values = [str(v) for v in as_list(value) if v is not None and str(v) != ""]
        if not values:
            continue
        if multi_join:
            parts.append(f"{key}:{multi_join.join(values)}")
        else:
            parts.extend(f"{key}:{v}" for v in values)
    return ",".join(parts)


def date_only(moment: datetime) -> str:
    return moment.date().isoformat()
