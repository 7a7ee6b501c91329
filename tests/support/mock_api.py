"""A local stand-in for the five scholarly APIs, serving REAL recorded responses, with injected faults.

One ThreadingHTTPServer on 127.0.0.1 (a free port) answers under one prefix per source, so each
client's base URL is the server's address plus that prefix:

    openalex         /openalex/works                                (peneira's real /works page)
    crossref         /crossref/works                                (habanero's 3 real cursor pages)
    semanticscholar  /s2/graph/v1/paper/search/bulk                 (S2 bulk: peneira pair, kubernetes cassette)
    eric             /eric/                                         (colrev's real ERIC answer)
    pubmed           /pubmed/entrez/eutils/esearch.fcgi, efetch.fcgi (real efetch articles)

Recorded bytes are served unchanged where the request matches the recording; where paging needs
more pages than were recorded, a real response is split into pages (its items unchanged, only the
envelope's paging fields written by the mock). Date filters used by incremental harvests are
applied to the records' own dates. Crossref's cursor is modelled as the server-side scroll it is:
the same cursor string moves the scroll on each time it is answered.

Faults (MockAPI.add_fault): '429' (with Retry-After), '500', 'truncate' (a valid HTTP response whose
body is cut in half), 'cut' (the connection closes half-way through the body), 'empty_body' (200 with
nothing), 'slow' (the answer is delayed by `delay` seconds). Faults that reach the handler after the
page was produced ('truncate', 'cut', 'empty_body', 'slow') move Crossref's scroll on, as a real
server would.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HERE = Path(__file__).resolve()
LOCAL = HERE.parents[1] / "data" / "harvest"
SHARED = HERE.parents[3] / "shared" / "data" / "api-responses"

PREFIXES = {
    "openalex": "/openalex",
    "crossref": "/crossref",
    "semanticscholar": "/s2",
    "eric": "/eric/",
    "pubmed": "/pubmed/entrez/eutils",
}
S2_KUBERNETES_PAGE = 250  # the 1,000-paper bulk answer is served as 4 pages
FAULT_KINDS = ("429", "500", "truncate", "cut", "empty_body", "slow")


# ---------------------------------------------------------------------------------------------
# The recorded data (read once per test session)
# ---------------------------------------------------------------------------------------------


@functools.cache
def openalex_works() -> dict[str, Any]:
    return json.loads((SHARED / "openalex" / "peneira_works.json").read_bytes())


@functools.cache
def crossref_pages() -> list[bytes]:
    return [(LOCAL / f"habanero_test_cursor_max.i{i}.json").read_bytes() for i in range(3)]


@functools.cache
def s2_peneira() -> tuple[bytes, bytes]:
    return (
        (LOCAL / "peneira_semantic_paper_search_bulk.json").read_bytes(),
        (LOCAL / "peneira_semantic_paper_search_bulk_no_token.json").read_bytes(),
    )


@functools.cache
def s2_kubernetes() -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    cassette = yaml.load(
        (SHARED / "semantic-scholar" / "test_search_paper_bulk_retrieval.yaml").read_text("utf-8"), loader
    )
    return json.loads(cassette["interactions"][0]["response"]["content"])


@functools.cache
def eric_answer() -> bytes:
    return (LOCAL / "colrev_eric_blockchain.json").read_bytes()


@functools.cache
def pubmed_articles() -> tuple[bytes, list[tuple[str, str, bytes]]]:
    """The efetch header (XML declaration + DOCTYPE) and every real article: (PMID, entrez date, bytes)."""
    from lxml import etree

    files = [SHARED / "pubmed" / "asreview_pubmed.xml"] + [
        LOCAL / name for name in ("biopython_pubmed1.xml", "biopython_pubmed4.xml", "findpapers_pubmed-api-paper.xml")
    ]
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    articles = []
    for path in files:
        root = etree.parse(str(path), parser).getroot()
        for node in root.iterfind("PubmedArticle"):
            pmid = node.findtext("MedlineCitation/PMID").strip()
            entrez = node.find("PubmedData/History/PubMedPubDate[@PubStatus='entrez']")
            day = "-".join(entrez.findtext(t).strip().zfill(2) for t in ("Year", "Month", "Day"))
            articles.append((pmid, day, etree.tostring(node, encoding="utf-8")))
    head = files[0].read_bytes().split(b"<PubmedArticleSet>", 1)[0]
    return head, articles


@functools.cache
def esearch_template() -> str:
    return (LOCAL / "biopython_esearch1.xml").read_text("utf-8")


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


@dataclass
class Fault:
    source: str
    kind: str
    at: int  # the n-th request to this source (1-based) is the first one hit
    times: int = 1
    retry_after: str = "7"
    delay: float = 0.0


@dataclass
class LoggedRequest:
    source: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    fault: str = ""


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class MockAPI:
    """Start with `start()`, stop with `stop()`; `base_url(source)` is the API root for a client."""

    def __init__(self) -> None:
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._scrolls: dict[str, list[Any]] = {}  # Crossref cursor -> [pages, next position]
        self._histories: dict[str, list[tuple[str, str, bytes]]] = {}  # PubMed WebEnv -> articles
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> MockAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                api._handle(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # keep test output quiet

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="mock-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def base_url(self, source: str) -> str:
        return f"http://127.0.0.1:{self.port}{PREFIXES[source]}"

    def add_fault(
        self, source: str, kind: str, *, at: int = 1, times: int = 1, retry_after: str = "7", delay: float = 0.0
    ) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}")
        self.faults.append(Fault(source, kind, at, times, retry_after, delay))

    def requests_to(self, source: str, path_end: str = "") -> list[LoggedRequest]:
        return [r for r in self.requests if r.source == source and r.path.endswith(path_end)]

    # --- dispatch ------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        source = self._source(parts.path)
        with self._lock:
            fault = None
            if source:
                self._counts[source] = self._counts.get(source, 0) + 1
                fault = self._fault(source, self._counts[source])
            self.requests.append(
                LoggedRequest(
                    source or "", parts.path, params, dict(handler.headers.items()), fault.kind if fault else ""
                )
            )
        try:
            self._respond(handler, source, parts.path, params, fault)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): nothing to answer

    def _source(self, path: str) -> str | None:
        for source, prefix in PREFIXES.items():
            if path.startswith(prefix.rstrip("/") + "/") or path == prefix.rstrip("/"):
                return source
        return None

    def _fault(self, source: str, n: int) -> Fault | None:
        for fault in self.faults:
            if fault.source == source and fault.at <= n < fault.at + fault.times:
                return fault
        return None

    def _respond(
        self,
        handler: BaseHTTPRequestHandler,
        source: str | None,
        path: str,
        params: dict[str, str],
        fault: Fault | None,
    ) -> None:
        if fault and fault.kind == "429":
            return _send(
                handler, Reply(429, b'{"message": "Too Many Requests"}', headers={"Retry-After": fault.retry_after})
            )
        if fault and fault.kind == "500":
            return _send(handler, Reply(500, b'{"message": "Internal Server Error"}'))
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        reply = self._route(source, path, params)
        if fault and fault.kind == "truncate":
            reply.body = reply.body[: len(reply.body) // 2]
        elif fault and fault.kind == "empty_body":
            reply.body = b""
        elif fault and fault.kind == "cut":
            return _send(handler, reply, cut=True)
        _send(handler, reply)

    def _route(self, source: str | None, path: str, params: dict[str, str]) -> Reply:
        routes = {
            "/openalex/works": self._openalex,
            "/crossref/works": self._crossref,
            "/s2/graph/v1/paper/search/bulk": self._s2,
            "/eric/": self._eric,
            "/pubmed/entrez/eutils/esearch.fcgi": self._esearch,
            "/pubmed/entrez/eutils/efetch.fcgi": self._efetch,
        }
        route = routes.get(path)
        if route is None:
            return Reply(404, json.dumps({"error": f"no route for {path}"}).encode())
        with self._lock:
            return route(params)

    # --- OpenAlex --------------------------------------------------------------------------------

    def _openalex(self, params: dict[str, str]) -> Reply:
        data = openalex_works()
        works = [w for w in data["results"] if _openalex_match(w, params.get("filter", ""))]
        per_page = int(params.get("per-page", "25"))
        cursor = params.get("cursor", "")
        if not cursor:
            return Reply(400, b'{"error": "this mock pages by cursor only"}')
        offset = 0 if cursor == "*" else int(cursor.removeprefix("mock-cursor-"))
        page = works[offset : offset + per_page]
        meta = {**data["meta"], "count": len(works), "per_page": per_page, "page": None}
        meta["next_cursor"] = f"mock-cursor-{offset + per_page}" if page else None  # null only on the empty page
        return Reply(200, json.dumps({"meta": meta, "results": page, "group_by": []}).encode())

    # --- Crossref --------------------------------------------------------------------------------

    def _crossref(self, params: dict[str, str]) -> Reply:
        cursor = params.get("cursor")
        if cursor is None:
            return Reply(400, b'{"status": "failed", "message": "this mock pages by cursor only"}')
        if cursor == "*":
            pages = _crossref_scroll(params.get("filter", ""))
            scroll_id = json.loads(pages[0])["message"]["next-cursor"]
            self._scrolls[scroll_id] = [pages, 1]
            return Reply(200, pages[0])
        scroll = self._scrolls.get(cursor)
        if scroll is None:
            return Reply(400, b'{"status": "failed", "message": [{"type": "cursor-expired"}]}')
        pages, position = scroll
        scroll[1] = position + 1  # the scroll moves on whether or not the answer arrives whole
        return Reply(200, pages[min(position, len(pages) - 1)])

    # --- Semantic Scholar ------------------------------------------------------------------------

    def _s2(self, params: dict[str, str]) -> Reply:
        window = params.get("publicationDateOrYear", "")
        if params.get("query") == "kubernetes":
            data = s2_kubernetes()
            papers = [p for p in data["data"] if _s2_match(p, window)]
            start = int(params.get("token", "mock-token-0").removeprefix("mock-token-"))
            page = papers[start : start + S2_KUBERNETES_PAGE]
            body: dict[str, Any] = {"total": data["total"] if not window else len(papers), "data": page}
            if start + S2_KUBERNETES_PAGE < len(papers):
                body["token"] = f"mock-token-{start + S2_KUBERNETES_PAGE}"
            return Reply(200, json.dumps(body).encode())
        first, last = s2_peneira()
        if window:
            papers = [p for p in json.loads(first)["data"] if _s2_match(p, window)]
            return Reply(200, json.dumps({"total": len(papers), "data": papers}).encode())
        token = json.loads(first)["token"]
        return Reply(200, last if params.get("token") == token else first)

    # --- ERIC ------------------------------------------------------------------------------------

    def _eric(self, params: dict[str, str]) -> Reply:
        if params.get("format") != "json":
            return Reply(200, b"<response/>", content_type="text/xml")  # ERIC's default is XML
        recorded = json.loads(eric_answer())
        search = params.get("search", "")
        docs = [d for d in recorded["response"]["docs"] if _eric_match(d, search)]
        start, rows = int(params.get("start", "0")), int(params.get("rows", "20"))
        filtered = len(docs) != len(recorded["response"]["docs"])
        if start == 0 and rows >= len(docs) and not filtered:
            return Reply(200, eric_answer())
        found = len(docs) if filtered else recorded["response"]["numFound"]
        response = {"numFound": found, "start": start, "numFoundExact": True, "docs": docs[start : start + rows]}
        return Reply(200, json.dumps({"response": response}).encode())

    # --- PubMed ----------------------------------------------------------------------------------

    def _esearch(self, params: dict[str, str]) -> Reply:
        if params.get("usehistory") != "y":
            return Reply(200, b"<eSearchResult><ERROR>this mock needs usehistory=y</ERROR></eSearchResult>", "text/xml")
        _, articles = pubmed_articles()
        chosen = [a for a in articles if _edat_match(a[1], params)]
        web_env = f"MCID_mock_{len(self._histories) + 1}"
        self._histories[web_env] = chosen
        retmax = int(params.get("retmax", "20"))
        ids = "".join(f"\n<Id>{pmid}</Id>" for pmid, _, _ in chosen[:retmax])
        text = esearch_template()
        text = re.sub(r"<Count>\d+</Count>", f"<Count>{len(chosen)}</Count>", text, count=1)
        text = re.sub(r"<RetMax>\d+</RetMax>", f"<RetMax>{min(retmax, len(chosen))}</RetMax>", text, count=1)
        text = re.sub(
            r"<RetStart>\d+</RetStart>",
            f"<RetStart>0</RetStart><QueryKey>1</QueryKey><WebEnv>{web_env}</WebEnv>",
            text,
            count=1,
        )
        text = re.sub(r"<IdList>.*?</IdList>", f"<IdList>{ids}\n</IdList>", text, count=1, flags=re.S)
        return Reply(200, text.encode(), "text/xml")

    def _efetch(self, params: dict[str, str]) -> Reply:
        chosen = self._histories.get(params.get("WebEnv", ""))
        if chosen is None or params.get("query_key") != "1":
            return Reply(200, b"<eFetchResult><ERROR>Unable to obtain query #1</ERROR></eFetchResult>", "text/xml")
        head, _ = pubmed_articles()
        start, count = int(params.get("retstart", "0")), int(params.get("retmax", "20"))
        body = (
            head
            + b"<PubmedArticleSet>\n"
            + b"".join(a[2] for a in chosen[start : start + count])
            + b"</PubmedArticleSet>\n"
        )
        return Reply(200, body, "text/xml")


def _send(handler: BaseHTTPRequestHandler, reply: Reply, *, cut: bool = False) -> None:
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    if cut:
        handler.wfile.write(reply.body[: len(reply.body) // 2])
        handler.wfile.flush()
        handler.close_connection = True
        return
    handler.wfile.write(reply.body)


# ---------------------------------------------------------------------------------------------
# Date filters, applied to the records' own dates
# ---------------------------------------------------------------------------------------------


def _colon_filters(text: str) -> dict[str, str]:
    return dict(part.split(":", 1) for part in text.split(",") if ":" in part)


def _openalex_match(work: dict[str, Any], filter_text: str) -> bool:
    filters = _colon_filters(filter_text)
    if "from_updated_date" in filters and str(work.get("updated_date", ""))[:10] < filters["from_updated_date"]:
        return False
    if "from_publication_date" in filters and str(work.get("publication_date", "")) < filters["from_publication_date"]:
        return False
    return True


def _crossref_scroll(filter_text: str) -> list[bytes]:
    """The recorded pages as they are, or (with from-index-date) the matching items re-paged by 20."""
    recorded = crossref_pages()
    since = _colon_filters(filter_text).get("from-index-date")
    last = json.loads(recorded[-1])
    if since is None:
        empty = copy.deepcopy(last)
        empty["message"]["items"] = []
        return [*recorded, json.dumps(empty).encode()]
    items = [
        item
        for body in recorded
        for item in json.loads(body)["message"]["items"]
        if item.get("indexed", {}).get("date-time", "")[:10] >= since
    ]
    pages = []
    for start in range(0, len(items), 20):
        page = copy.deepcopy(last)
        page["message"].update({"items": items[start : start + 20], "total-results": len(items)})
        pages.append(json.dumps(page).encode())
    empty = copy.deepcopy(last)
    empty["message"].update({"items": [], "total-results": len(items)})
    return [*pages, json.dumps(empty).encode()]


def _s2_match(paper: dict[str, Any], window: str) -> bool:
    if not window:
        return True
    start = window.split(":", 1)[0]
    date = paper.get("publicationDate") or (str(paper["year"]) if paper.get("year") else "")
    return bool(date) and date >= start  # papers without a date never match a date filter


def _eric_match(doc: dict[str, Any], search: str) -> bool:
    match = re.search(r"publicationdateyear:\[(\d{4}) TO \*\]", search)
    return match is None or int(doc.get("publicationdateyear") or 0) >= int(match.group(1))


def _edat_match(entrez_day: str, params: dict[str, str]) -> bool:
    if params.get("datetype") != "edat" or "mindate" not in params:
        return True
    return entrez_day >= params["mindate"].replace("/", "-")
