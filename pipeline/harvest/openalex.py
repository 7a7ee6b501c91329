"""OpenAlex: GET {root}/works?search=…&filter=…&per-page=…&cursor=… (cursor paging).

Documented at https://docs.openalex.org (root https://api.openalex.org). The key (OPENALEX_API_KEY)
goes in `api_key`, the contact address (REVIEW_MAILTO) in `mailto`. Abstracts arrive as
`abstract_inverted_index` and are rebuilt by the shared JSON mapping. Cursors are stateless, so a
saved cursor resumes exactly where a harvest stopped.

Incremental: with a key, `from_updated_date` (works created or changed since the last run; OpenAlex
reserves it for keyed requests); without one, `from_publication_date` with a 90-day overlap.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.harvest.base import PUBLICATION_DATE_OVERLAP, SourceClient, colon_filter, date_only
from pipeline.records import Record


class OpenAlexClient(SourceClient):
    name = "openalex"
    label = "OpenAlex"
    default_base_url = "https://api.openalex.org"
    default_page_size = 200
    max_page_size = 200
    min_interval = 0.1  # the documented limit is 10 requests per second

    def first_cursor(self) -> dict[str, Any]:
        return {"cursor": "*"}

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"search": self.query, "per-page": self.page_size, "cursor": cursor["cursor"]}
        if self.filters:
            params["filter"] = colon_filter(self.filters, multi_join="|")
        params.update(self.auth_params(key_param="api_key"))
        return self.url("works"), params

    def validate(self, document: Any) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("results"), list):
            raise ValueError("no 'results' list")

    def items(self, document: Any) -> list[Record]:
        return [self.mapped(work, _short_id(work.get("id"))) for work in document["results"] if isinstance(work, dict)]

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        following = (document.get("meta") or {}).get("next_cursor")
        return {"cursor": following} if following and n_items else None

    def total(self, document: Any) -> int | None:
        count = (document.get("meta") or {}).get("count")
        return count if isinstance(count, int) else None

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        if has_key:
            return {"from_updated_date": date_only(since)}
        return {"from_publication_date": date_only(since - PUBLICATION_DATE_OVERLAP)}


def _short_id(value: Any) -> str:
    """'https://openalex.org/W2068311567' -> 'W2068311567'."""
    text = str(value or "").strip()
    return text.rsplit("/", 1)[-1] if text else ""
