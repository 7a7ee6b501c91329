"""Semantic Scholar: GET {root}/graph/v1/paper/search/bulk?query=…&fields=…&token=… (token paging).

Documented at https://api.semanticscholar.org/api-docs/graph (root https://api.semanticscholar.org).
The key (SEMANTIC_SCHOLAR_API_KEY) goes in the `x-api-key` header. The bulk search returns up to
1,000 papers per call and a continuation `token` while more remain; filters are plain parameters
(`year`, `publicationDateOrYear`, `fieldsOfStudy`, `publicationTypes`, `minCitationCount`, …).

Incremental: `publicationDateOrYear=<since - 90 days>:` (S2 offers no index or update date).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.harvest.base import PUBLICATION_DATE_OVERLAP, SourceClient, as_list, date_only
from pipeline.records import Record

FIELDS = (
    "paperId,corpusId,externalIds,url,title,abstract,venue,publicationVenue,year,publicationDate,"
    "publicationTypes,journal,authors,fieldsOfStudy,isOpenAccess"
)


class SemanticScholarClient(SourceClient):
    name = "semanticscholar"
    label = "Semantic Scholar"
    default_base_url = "https://api.semanticscholar.org"
    default_page_size = 1000  # fixed by the API; not sent
    max_page_size = 1000
    min_interval = 1.0  # one request per second, as S2 asks of keyed and shared callers alike

    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.credentials.api_key} if self.credentials.api_key else {}

    def first_cursor(self) -> dict[str, Any]:
        return {"token": None}

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"query": self.query, "fields": FIELDS}
        for key, value in self.filters.items():
            values = [str(v) for v in as_list(value)]
            if values:
                params[key] = ",".join(values)
        if cursor.get("token"):
            params["token"] = cursor["token"]
        return self.url("graph/v1/paper/search/bulk"), params

    def validate(self, document: Any) -> None:
        if not isinstance(document, dict) or not isinstance(document.get("data", []), list):
            raise ValueError("no 'data' list")

    def items(self, document: Any) -> list[Record]:
        papers = document.get("data") or []
        return [self.mapped(paper, str(paper.get("paperId") or "")) for paper in papers if isinstance(paper, dict)]

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        token = document.get("token")
        return {"token": token} if token and n_items else None

    def total(self, document: Any) -> int | None:
        count = document.get("total")
        return count if isinstance(count, int) else None

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        return {"publicationDateOrYear": f"{date_only(since - PUBLICATION_DATE_OVERLAP)}:"}
