"""ERIC (the US Institute of Education Sciences' education database): no Python library wraps it.

GET {root}?search=…&format=json&start=…&rows=…&fields=… with root https://api.ies.ed.gov/eric/
(documented at https://eric.ed.gov/?api). The answer is Solr's {"response": {"numFound", "start",
"docs"}}; paging is by start/rows (at most 200 rows). Filters are ERIC field searches added to the
search string: {"peerreviewed": "T", "educationlevel": ["Elementary Education", "Secondary
Education"]} gives `(query) AND peerreviewed:T AND (educationlevel:"Elementary Education" OR …)`.

Records keep ERIC's education fields: the EJ/ED accession number as id (EJ: journal article, ED:
other document, in extra['eric_collection']), subject descriptors as keywords, and peerreviewed,
educationlevel and identifiersgeo (countries) in extra.

Incremental: `publicationdateyear:[Y TO *]` where Y is the year 90 days before the last run (ERIC
gives no index date through the API; the overlap is dropped by ERIC id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.harvest.base import PUBLICATION_DATE_OVERLAP, SourceClient, as_list
from pipeline.records import Record

FIELDS = (
    "id,title,author,source,publicationdateyear,description,subject,peerreviewed,educationlevel,"
    "publicationtype,language,issn,isbn,publisher,url,e_fulltextauth,identifiersgeo"
)
_LIST_EXTRAS = ("educationlevel", "identifiersgeo")


class EricClient(SourceClient):
    name = "eric"
    label = "ERIC"
    default_base_url = "https://api.ies.ed.gov/eric/"
    default_page_size = 200
    max_page_size = 200
    min_interval = 0.5

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + "/"  # the API root itself, with its trailing slash

    def search(self) -> str:
        terms = [_field_term(key, value) for key, value in self.filters.items()]
        terms = [term for term in terms if term]
        return " AND ".join([f"({self.query})", *terms]) if terms else self.query

    def first_cursor(self) -> dict[str, Any]:
        return {"start": 0}

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params = {
            "search": self.search(),
            "format": "json",
            "start": cursor["start"],
            "rows": self.page_size,
            "fields": FIELDS,
        }
        return self.url(""), params

    def validate(self, document: Any) -> None:
        response = document.get("response") if isinstance(document, dict) else None
        if not isinstance(response, dict) or not isinstance(response.get("docs"), list):
            raise ValueError("no 'response.docs' list")

    def items(self, document: Any) -> list[Record]:
        return [self._record(doc) for doc in document["response"]["docs"] if isinstance(doc, dict)]

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        found = document["response"].get("numFound")
        start = int(cursor["start"]) + n_items  # by what came back: a server may return fewer than rows
        if not n_items or (isinstance(found, int) and start >= found):
            return None
        return {"start": start}

    def total(self, document: Any) -> int | None:
        found = document["response"].get("numFound")
        return found if isinstance(found, int) else None

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        return {"publicationdateyear": f"[{(since - PUBLICATION_DATE_OVERLAP).year} TO *]"}

    def _record(self, doc: dict[str, Any]) -> Record:
        eric_id = str(doc.get("id") or "").strip()
        record = self.mapped(doc, eric_id)
        for name in _LIST_EXTRAS:
            values = [str(v).strip() for v in as_list(doc.get(name)) if str(v).strip()]
            if values:
                record.extra[name] = "; ".join(values)
        if doc.get("peerreviewed") not in (None, ""):
            record.extra["peerreviewed"] = str(doc["peerreviewed"])
        if eric_id[:2].upper() in ("EJ", "ED"):
            record.extra["eric_collection"] = eric_id[:2].upper()
        return record


def _field_term(key: str, value: Any) -> str:
    values = [str(v).strip() for v in as_list(value) if str(v).strip()]
    terms = [f"{key}:{_quoted(v)}" for v in values]
    if len(terms) > 1:
        return "(" + " OR ".join(terms) + ")"
    return terms[0] if terms else ""


def _quoted(value: str) -> str:
    if value.startswith(("[", "(", '"')) or " " not in value:
        return value
    return f'"{value}"'
