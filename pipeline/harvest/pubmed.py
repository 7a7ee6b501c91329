"""PubMed through NCBI E-utilities: esearch with the history server, then efetch XML in batches.

Root https://eutils.ncbi.nlm.nih.gov/entrez/eutils (documented in "Entrez Programming Utilities
Help"). `esearch.fcgi?db=pubmed&term=…&usehistory=y&retmax=0` gives Count, WebEnv and QueryKey;
`efetch.fcgi?db=pubmed&WebEnv=…&query_key=…&retstart=…&retmax=…&retmode=xml` gives a
PubmedArticleSet per batch. The key (NCBI_API_KEY) goes in `api_key` (10 requests/s instead of 3),
REVIEW_MAILTO in `email`, and `tool` names this program, as NCBI asks.

A resumed harvest runs esearch again (a WebEnv expires after a few hours) and goes on at the saved
retstart. Filters are E-utilities parameters (`datetype`, `mindate`, `maxdate`, `sort`, …); the rest
of a PubMed search belongs in the query itself.

Incremental: `datetype=edat&mindate=<last run>&maxdate=3000` (Entrez date: when PubMed added it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipeline.harvest.base import RECORD_FORMAT, SourceClient, as_list
from pipeline.harvest.http import Fetched, PoliteSession
from pipeline.ingest.fields import abstract_text, bare_doi, page_range, unique, year_from
from pipeline.records import Record

TOOL = "living-review"


class PubMedClient(SourceClient):
    name = "pubmed"
    label = "PubMed"
    default_base_url = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"
    kind = "xml"
    suffix = ".xml"
    default_page_size = 200
    max_page_size = 10_000
    min_interval = 0.34  # 3 requests per second without a key
    min_interval_with_key = 0.1  # 10 with one

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.web_env = ""
        self.query_key = ""
        self.count: int | None = None

    def _common(self) -> dict[str, Any]:
        params: dict[str, Any] = {"db": "pubmed", "tool": TOOL}
        params.update(self.auth_params(key_param="api_key", mailto_param="email"))
        return params

    def prepare(self, session: PoliteSession) -> list[Fetched]:
        params = {**self._common(), "term": self.query, "usehistory": "y", "retmax": 0}
        for key, value in self.filters.items():
            params[key] = ",".join(str(v) for v in as_list(value))
        fetched = session.get(self.url("esearch.fcgi"), params, kind="xml", validate=_check_esearch, what="esearch")
        root = fetched.document
        self.web_env = (root.findtext("WebEnv") or "").strip()
        self.query_key = (root.findtext("QueryKey") or "").strip()
        self.count = int((root.findtext("Count") or "0").strip() or 0)
        return [fetched]

    def first_cursor(self) -> dict[str, Any]:
        return {"retstart": 0}

    def request(self, cursor: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        params = {
            **self._common(),
            "WebEnv": self.web_env,
            "query_key": self.query_key,
            "retstart": cursor["retstart"],
            "retmax": self.page_size,
            "retmode": "xml",
        }
        return self.url("efetch.fcgi"), params

    def validate(self, document: Any) -> None:
        if document.tag != "PubmedArticleSet":
            raise ValueError(f"root element is <{document.tag}>, not <PubmedArticleSet>")

    def items(self, document: Any) -> list[Record]:
        return [article_record(node) for node in document if node.tag in ("PubmedArticle", "PubmedBookArticle")]

    def next_cursor(self, document: Any, cursor: dict[str, Any], n_items: int) -> dict[str, Any] | None:
        start = int(cursor["retstart"]) + n_items
        if not n_items or (self.count is not None and start >= self.count):
            return None
        return {"retstart": start}

    def total(self, document: Any) -> int | None:
        return self.count

    @classmethod
    def since_filters(cls, since: datetime, has_key: bool) -> dict[str, Any]:
        return {"datetype": "edat", "mindate": since.strftime("%Y/%m/%d"), "maxdate": "3000"}


def _check_esearch(document: Any) -> None:
    if document.tag != "eSearchResult":
        raise ValueError(f"root element is <{document.tag}>, not <eSearchResult>")
    error = document.findtext("ERROR")
    if error:
        raise ValueError(f"esearch error: {error.strip()}")
    if document.findtext("Count") is None or not document.findtext("WebEnv"):
        raise ValueError("esearch answer has no Count or WebEnv")


# ---------------------------------------------------------------------------------------------
# PubMed XML (efetch, DTD pubmed_190101 .. pubmed_250101) -> Record
# ---------------------------------------------------------------------------------------------


def article_record(node: Any) -> Record:
    """One <PubmedArticle> or <PubmedBookArticle> element as a Record (id = PMID)."""
    citation = node.find("MedlineCitation")
    if citation is None:
        citation = node.find("BookDocument")
    citation = citation if citation is not None else node
    article = citation.find("Article")
    article = article if article is not None else citation
    journal = article.find("Journal")
    pmid = _text(citation.find("PMID"))
    return Record(
        id=pmid,
        source_format=RECORD_FORMAT,
        source_file="pubmed",
        position=0,
        title=_text(article.find("ArticleTitle")) or _text(citation.find("Book/BookTitle")),
        authors=_authors(
            article.find("AuthorList") if article.find("AuthorList") is not None else citation.find("AuthorList")
        ),
        year=_year(article, journal),
        doi=_doi(node, article),
        venue=_text(journal.find("Title")) if journal is not None else "",
        volume=_text(journal.find("JournalIssue/Volume")) if journal is not None else "",
        issue=_text(journal.find("JournalIssue/Issue")) if journal is not None else "",
        pages=_pages(article),
        keywords=unique(
            [_text(d) for d in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")]
            + [_text(k) for k in citation.iterfind("KeywordList/Keyword")]
        ),
        abstract=abstract_text(_abstract(article.find("Abstract"))),
        publisher=_text(citation.find("Book/Publisher/PublisherName")),
        doc_type="; ".join(_text(t) for t in article.iterfind("PublicationTypeList/PublicationType")),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else "",
        issn=_text(journal.find("ISSN")) if journal is not None else "",
        language=_text(article.find("Language")),
        database="PubMed",
        extra=_extra(node),
    )


def _text(element: Any) -> str:
    """All the text inside an element (titles hold <i>, <sup>, … markup), white space collapsed."""
    if element is None:
        return ""
    return " ".join("".join(element.itertext()).split())


def _authors(author_list: Any) -> list[str]:
    if author_list is None:
        return []
    names = []
    for author in author_list.iterfind("Author"):
        collective = _text(author.find("CollectiveName"))
        last, fore = _text(author.find("LastName")), _text(author.find("ForeName")) or _text(author.find("Initials"))
        name = collective or ", ".join(part for part in (last, fore) if part)
        if name:
            names.append(name)
    return names


def _year(article: Any, journal: Any) -> int | None:
    pub_date = journal.find("JournalIssue/PubDate") if journal is not None else None
    return year_from(
        _text(pub_date.find("Year")) if pub_date is not None else "",
        _text(pub_date.find("MedlineDate")) if pub_date is not None else "",
        _text(article.find("ArticleDate/Year")),
    )


def _doi(node: Any, article: Any) -> str:
    for element in node.iterfind("PubmedData/ArticleIdList/ArticleId"):
        if element.get("IdType") == "doi":
            return bare_doi(_text(element))
    for element in article.iterfind("ELocationID"):
        if element.get("EIdType") == "doi":
            return bare_doi(_text(element))
    return ""


def _pages(article: Any) -> str:
    medline = _text(article.find("Pagination/MedlinePgn"))
    return medline or page_range(_text(article.find("Pagination/StartPage")), _text(article.find("Pagination/EndPage")))


def _abstract(abstract: Any) -> str:
    """Structured abstracts keep their section labels, as MEDLINE's AB field writes them."""
    if abstract is None:
        return ""
    parts = []
    for section in abstract.iterfind("AbstractText"):
        text = _text(section)
        label = (section.get("Label") or "").strip()
        if text:
            parts.append(f"{label}: {text}" if label else text)
    return " ".join(parts)


def _extra(node: Any) -> dict[str, str]:
    extra: dict[str, str] = {}
    for element in node.iterfind("PubmedData/ArticleIdList/ArticleId"):
        kind = element.get("IdType")
        if kind in ("pmc", "pii") and _text(element):
            extra[kind] = _text(element)
    entrez = node.find("PubmedData/History/PubMedPubDate[@PubStatus='entrez']")
    if entrez is not None:
        parts = [_text(entrez.find(tag)) for tag in ("Year", "Month", "Day")]
        if all(parts):
            extra["entrez_date"] = "-".join(parts[:1] + [p.zfill(2) for p in parts[1:]])
    return extra
