"""Crossref: GET {root}/works?query=…&filter=…&rows=…&cursor=* (deep paging with a cursor).

Documented at https://api.crossref.org (root https://api.crossref.org). REVIEW_MAILTO goes in `mailto`
(the "polite pool"); a Metadata Plus token (CROSSREF_PLUS_API_TOKEN) in the `Crossref-Plus-API-Token`
header. Abstracts are JATS XML strings, kept as they are for the cleaning stage.

Crossref's cursor is a server-side scroll: every page of one scroll carries the same `next-cursor`
string, and each request with it moves the scroll on (the recorded responses show this). So a request
that may have been answered but was not received whole cannot be replayed without losing a page; the
harvest then starts the scroll again and skips the DOIs it already has. For the same reason (and
because scrolls expire after a few minutes) a resumed harvest walks the scroll again from the start.
The end of the results is a page with no items.

Incremental: `from-index-date` (works whose metadata were indexed since the last run).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.harvest.base import SourceClient, colon_filter, date_only
from pipeline.records import Record


class CrossrefClient(SourceClient):
    name = "crossref"
    label = "Crossref"
    default_base_url = "https://api.crossref.org"
    default_page_size = 100
    max_page_size = 1000
    min_interval = 0.2  # within the public pool's 5 requests per second

    def headers(self) -> dict[str, str]:
        token = self.credentials.api_key
        return {"Crossref-Plus-API-Token": f"Bearer {token}"} if token else {}

    def first_cursor(self) -> dict[str, Any]:
        return {"cursor": "*"}

    def resume_cursor(self, saved: dict[str, Any]) -> dict[str, Any]:
        return self.first_cursor()

    def replayable(self, cursor: dict[str, Any]) -> bool:
        return cursor.get("cursor") == "*"  # '*' opens a new scroll; any other cursor moves one on

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"query": self.query, "rows": self.page_size, "cursor": cursor["cursor"]}
        if self.filters:
            params["filter"] = colon_filter(self.filters)
        params.update(self.auth_params())
        return self.url("works"), params

    def validate(self, document: Any) -> None:
        message = document.get("message") if isinstance(document, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("items"), list):
            raise ValueError("no 'message.items' list")

    def items(self, document: Any) -> list[Record]:
        return [
            self.mapped(item, str(item.get("DOI") or ""))
            for item in document["message"]["items"]
            if isinstance(item, dict)
        ]

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        following = document["message"].get("next-cursor")
        return {"cursor": following} if following and n_items else None

    def total(self, document: Any) -> int | None:
        count = document["message"].get("total-results")
        return count if isinstance(count, int) else None

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        return {"from-index-date": date_only(since)}
