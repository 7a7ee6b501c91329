"""The harvesting clients against real recorded API responses served locally, with faults injected.

No network: tests/support/mock_api.py serves the recordings on 127.0.0.1. No wall-clock assertions:
waits go through a fake `sleep` that records them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from pipeline.harvest import HarvestError, HttpSettings, harvest, incremental_since, offline_reason, parse_since
from pipeline.harvest.http import KEY_ENV, MAILTO_ENV
from pipeline.harvest.raw import provenance_path, read_provenance
from tests.support import mock_api
from tests.support.mock_api import MockAPI

# source -> (query, page size): the query picks the recording, the page size gives 3+ pages.
CASES: dict[str, tuple[str, int | None]] = {
    "openalex": ("machine learning AND public health", 20),
    "crossref": ("widget", 20),
    "semanticscholar": ("kubernetes", None),
    "eric": ("blockchain", None),
    "pubmed": ("biopython", 5),
}
SECRETS = {
    "OPENALEX_API_KEY": "oa-SECRET-key-0001",
    "SEMANTIC_SCHOLAR_API_KEY": "s2-SECRET-key-0002",
    "NCBI_API_KEY": "ncbi-SECRET-key-0003",
    "CROSSREF_PLUS_API_TOKEN": "cr-SECRET-token-0004",
    MAILTO_ENV: "reviewer.secret@example.org",
}


# ---------------------------------------------------------------------------------------------
# What the recordings hold, read straight from the files (not through the clients)
# ---------------------------------------------------------------------------------------------


def expected_ids(source: str) -> list[str]:
    if source == "openalex":
        return [w["id"].rsplit("/", 1)[-1] for w in mock_api.openalex_works()["results"]]
    if source == "crossref":
        return [item["DOI"] for body in mock_api.crossref_pages() for item in json.loads(body)["message"]["items"]]
    if source == "semanticscholar":
        return [paper["paperId"] for paper in mock_api.s2_kubernetes()["data"]]
    if source == "eric":
        return [doc["id"] for doc in json.loads(mock_api.eric_answer())["response"]["docs"]]
    return [pmid for pmid, _, _ in mock_api.pubmed_articles()[1]]


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hermetic: a developer's own keys must not change what the clients send."""
    for name in [*KEY_ENV.values(), MAILTO_ENV]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api() -> Iterator[MockAPI]:
    server = MockAPI().start()
    yield server
    server.stop()


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(round(float(seconds), 3))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def settings(sleeps: Sleeps) -> HttpSettings:
    return HttpSettings(min_interval=0.0, sleep=sleeps, connect_timeout=2.0, read_timeout=0.5, max_attempts=8)


def run(api: MockAPI, source: str, tmp: Path, settings: HttpSettings, **kwargs: Any) -> Any:
    query, page_size = CASES[source]
    kwargs.setdefault("raw_dir", tmp / "raw")
    kwargs.setdefault("checkpoint_path", tmp / f"{source}.checkpoint.json")
    kwargs.setdefault("page_size", page_size)
    kwargs.setdefault("query", query)
    return harvest(source, kwargs.pop("query"), base_url=api.base_url(source), settings=settings, **kwargs)


def ids(result: Any) -> list[str]:
    return [record.id for record in result.records]


# ---------------------------------------------------------------------------------------------
# Each client, every fault: nothing lost, nothing duplicated
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", list(CASES))
def test_client_survives_every_fault(
    api: MockAPI, source: str, tmp_path: Path, settings: HttpSettings, sleeps: Sleeps
) -> None:
    # Requests 1-6 all fail in a different way; the 7th gets the first answer; the 8th is slow but in time.
    for at, kind in enumerate(["429", "500", "truncate", "cut", "empty_body"], start=1):
        api.add_fault(source, kind, at=at, retry_after="7")
    api.add_fault(source, "slow", at=6, delay=1.2)  # longer than the 0.5 s read timeout
    api.add_fault(source, "slow", at=8, delay=0.1)  # shorter: answered normally

    result = run(api, source, tmp_path, settings)

    assert ids(result) == expected_ids(source)  # same records, same order, none twice
    assert result.complete and not result.capped
    assert sleeps[0] == 7.0  # the 429's Retry-After, waited exactly
    assert len(sleeps) == 6 and all(0 <= s <= settings.backoff_max for s in sleeps[1:])
    faults = [r.fault for r in api.requests_to(source)]
    assert faults[:8] == ["429", "500", "truncate", "cut", "empty_body", "slow", "", "slow"]
    assert all(r.source_format == "api" and r.source_file == source for r in result.records)


@pytest.mark.parametrize("source", list(CASES))
def test_raw_payloads_are_whole_and_carry_provenance(
    api: MockAPI, source: str, tmp_path: Path, settings: HttpSettings
) -> None:
    api.add_fault(source, "truncate", at=1)
    result = run(api, source, tmp_path, settings)

    pages = [p for p in result.raw_files if read_provenance(p)["page"] > 0]
    assert len(pages) == result.pages
    for path in result.raw_files:
        body = path.read_bytes()
        json.loads(body) if path.suffix == ".json" else etree.fromstring(body)  # never a half page
        meta = read_provenance(path)
        assert meta["sha256"] == path.stem and meta["bytes"] == len(body)
        assert meta["source"] == source and meta["query"] == CASES[source][0]
        assert meta["http_status"] == 200 and meta["client_version"] and meta["fetched_at"]
        assert path.parent.name == meta["fetched_at"][:10] and path.parent.parent.name == source
    assert read_provenance(result.raw_files[0])["attempts"] == 2  # the truncated answer was retried, not stored


def test_raw_files_are_never_overwritten(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    first = run(api, "eric", tmp_path, settings, checkpoint_path=None)
    sidecars = {p: provenance_path(p).read_bytes() for p in first.raw_files}
    second = run(api, "eric", tmp_path, settings, checkpoint_path=None)
    assert second.raw_files == first.raw_files
    assert {p: provenance_path(p).read_bytes() for p in second.raw_files} == sidecars


# ---------------------------------------------------------------------------------------------
# Resuming and incremental runs
# ---------------------------------------------------------------------------------------------

# The request that fetches a later page: openalex/crossref/S2 page 3, ERIC page 2, PubMed efetch page 2.
FAIL_AT = {"openalex": 3, "crossref": 3, "semanticscholar": 3, "eric": 2, "pubmed": 3}
# ...and the cursor of that page, where the resumed run must start.
RESUMED_AT = {
    "openalex": ("cursor", "mock-cursor-40"),
    "semanticscholar": ("token", "mock-token-500"),
    "eric": ("start", "1"),
    "pubmed": ("retstart", "5"),
}


@pytest.mark.parametrize("source", list(CASES))
def test_interrupted_harvest_resumes_to_the_same_records(
    api: MockAPI, source: str, tmp_path: Path, settings: HttpSettings
) -> None:
    api.add_fault(source, "500", at=FAIL_AT[source], times=settings.max_attempts)
    with pytest.raises(HarvestError, match="failed 8 times.*the next harvest resumes from its last page"):
        run(api, source, tmp_path, settings)
    saved = json.loads((tmp_path / f"{source}.checkpoint.json").read_text())
    assert not saved["complete"] and saved["pages"] == FAIL_AT[source] - 1 - (source == "pubmed")
    before = len(api.requests)

    result = run(api, source, tmp_path, settings)

    assert result.resumed and result.complete
    assert ids(result) == expected_ids(source)
    resumed = api.requests[before:]
    if source == "crossref":  # a scroll cannot be resumed: walked again from '*', known DOIs skipped
        assert resumed[0].params["cursor"] == "*" and result.duplicates == 40
    else:  # went on from the saved cursor: the pages already stored were not asked for again
        page_requests = [r for r in resumed if not r.path.endswith("esearch.fcgi")]
        name, value = RESUMED_AT[source]
        assert page_requests[0].params[name] == value
        assert len(page_requests) == result.pages - saved["pages"]


INCREMENTAL_PARAM = {
    "openalex": ("filter", "from_publication_date:"),
    "crossref": ("filter", "from-index-date:"),
    "semanticscholar": ("publicationDateOrYear", ":"),
    "eric": ("search", "publicationdateyear:["),
    "pubmed": ("datetype", "edat"),
}


@pytest.mark.parametrize("source", list(CASES))
def test_second_harvest_adds_nothing(api: MockAPI, source: str, tmp_path: Path, settings: HttpSettings) -> None:
    first = run(api, source, tmp_path, settings)
    assert ids(first) == expected_ids(source) and first.since is None
    before = len(api.requests)

    second = run(api, source, tmp_path, settings)

    assert second.records == [] and second.complete and not second.resumed
    assert second.since == first.cursor_state["started_at"]  # 'new since the last complete run'
    name, fragment = INCREMENTAL_PARAM[source]
    asked = api.requests[before]
    assert fragment in asked.params[name]
    assert second.cursor_state["last_complete_start"] == second.cursor_state["started_at"]


def test_overlap_window_is_dropped_by_source_id(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    # A window that reaches back over the recorded works re-fetches them: known ids drop them.
    first = run(api, "openalex", tmp_path, settings, checkpoint_path=None)
    again = run(api, "openalex", tmp_path, settings, checkpoint_path=None, since="2018-01-01", known_ids=ids(first))
    assert again.records == [] and again.known > 0
    assert again.known == sum(1 for w in mock_api.openalex_works()["results"] if w["publication_date"] >= "2017-10-03")


def test_changed_query_harvests_everything_again(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    run(api, "eric", tmp_path, settings)
    changed = run(api, "eric", tmp_path, settings, filters={"peerreviewed": "T"})
    assert ids(changed) == expected_ids("eric") and changed.since is None


def test_incremental_since_per_source(monkeypatch: pytest.MonkeyPatch) -> None:
    last = "2026-11-02T06:00:00+00:00"
    assert incremental_since("crossref", last) == {"from-index-date": "2026-11-02"}
    assert incremental_since("openalex", last) == {"from_publication_date": "2026-08-04"}
    monkeypatch.setenv("OPENALEX_API_KEY", "k" * 12)
    assert incremental_since("openalex", last) == {"from_updated_date": "2026-11-02"}
    assert incremental_since("semanticscholar", last) == {"publicationDateOrYear": "2026-08-04:"}
    assert incremental_since("eric", "2026-02-01") == {"publicationdateyear": "[2025 TO *]"}
    assert incremental_since("pubmed", last) == {"datetype": "edat", "mindate": "2026/11/02", "maxdate": "3000"}


# ---------------------------------------------------------------------------------------------
# Source specifics
# ---------------------------------------------------------------------------------------------


def test_crossref_scroll_lost_in_transit_is_walked_again(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    # Request 2 continues the scroll; its answer arrives cut short after the server moved on.
    api.add_fault("crossref", "truncate", at=2)
    result = run(api, "crossref", tmp_path, settings)
    assert ids(result) == expected_ids("crossref")
    cursors = [r.params["cursor"] for r in api.requests_to("crossref")]
    assert cursors.count("*") == 2 and result.duplicates == 20


def test_crossref_keeps_jats_and_sends_filters(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    result = run(api, "crossref", tmp_path, settings, filters={"type": ["journal-article", "book-chapter"]})
    items = {i["DOI"]: i for body in mock_api.crossref_pages() for i in json.loads(body)["message"]["items"]}
    jats = [r for r in result.records if items[r.id].get("abstract")]
    assert len(jats) == 3 and all(r.abstract == items[r.id]["abstract"].strip() for r in jats)  # left for the cleaner
    assert all(r.abstract.startswith("<jats:p>") for r in jats)
    assert api.requests_to("crossref")[0].params["filter"] == "type:journal-article,type:book-chapter"


def test_openalex_abstracts_and_ids(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    result = run(api, "openalex", tmp_path, settings)
    works = {w["id"].rsplit("/", 1)[-1]: w for w in mock_api.openalex_works()["results"]}
    assert sum(1 for r in result.records if r.abstract) == sum(
        1 for w in works.values() if w["abstract_inverted_index"]
    )
    record = result.records[0]
    index = works[record.id]["abstract_inverted_index"]
    first_word = min(index, key=lambda word: min(index[word]))
    assert record.abstract.split()[0] == first_word and record.doi == "10.4081/gh.2014.294"
    assert api.requests_to("openalex")[0].params["per-page"] == "20"


def test_semantic_scholar_duplicate_across_pages_kept_once(
    api: MockAPI, tmp_path: Path, settings: HttpSettings
) -> None:
    # peneira's two recorded bulk pages hold the same paper: the second page's copy is dropped.
    result = run(api, "semanticscholar", tmp_path, settings, query="literature graph")
    assert ids(result) == ["649def34f8be52c8b66281af98ae884c09aef38b"] and result.duplicates == 1
    token = json.loads(mock_api.s2_peneira()[0])["token"]
    assert [r.params.get("token") for r in api.requests_to("semanticscholar")] == [None, token]
    assert result.records[0].abstract and result.records[0].year == 2018


def test_eric_education_fields_and_filters(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    filters = {"peerreviewed": "T", "educationlevel": ["Elementary Education", "Secondary Education"]}
    result = run(api, "eric", tmp_path, settings, filters=filters)
    doc = json.loads(mock_api.eric_answer())["response"]["docs"][0]
    record = result.records[0]
    assert record.id == "EJ1286736" and record.extra["eric_collection"] == "EJ"
    assert record.extra["peerreviewed"] == "T" and record.keywords == doc["subject"]
    assert record.year == 2021 and record.abstract == doc["description"] and record.database == "ERIC"
    search = api.requests_to("eric")[0].params["search"]
    levels = '(educationlevel:"Elementary Education" OR educationlevel:"Secondary Education")'
    assert search == f"(blockchain) AND peerreviewed:T AND {levels}"
    assert "educationlevel" in api.requests_to("eric")[0].params["fields"]


def test_pubmed_history_batches_and_xml_fields(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    result = run(api, "pubmed", tmp_path, settings)
    esearch, *efetches = api.requests_to("pubmed")
    assert esearch.path.endswith("/esearch.fcgi") and esearch.params["usehistory"] == "y"
    assert [r.params["retstart"] for r in efetches] == ["0", "5", "10"]
    assert all(r.params["WebEnv"] == "MCID_mock_1" and r.params["query_key"] == "1" for r in efetches)
    record = next(r for r in result.records if r.id == "27797938")
    assert record.abstract.startswith("OBJECTIVE: Telomere shortening") and "CONCLUSIONS: " in record.abstract
    assert record.doi == "10.1136/gutjnl-2016-312510" and record.authors[0] == "Bao, Ying"
    assert record.venue.startswith("Gut") and len(record.keywords) >= 10 and record.database == "PubMed"


def test_max_records_caps_the_harvest(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    result = run(api, "openalex", tmp_path, settings, max_records=30)
    assert ids(result) == expected_ids("openalex")[:30]
    assert result.capped and result.complete and result.pages == 2


# ---------------------------------------------------------------------------------------------
# Politeness, keys, errors
# ---------------------------------------------------------------------------------------------


def test_rate_limit_spaces_requests(api: MockAPI, tmp_path: Path) -> None:
    now = [1000.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(round(seconds, 3))
        now[0] += seconds

    settings = HttpSettings(sleep=sleep, clock=lambda: now[0])  # ERIC's default: 0.5 s between requests
    run(api, "eric", tmp_path, settings)
    assert len(api.requests_to("eric")) == 2 and waits == [0.5]


def test_retry_after_as_http_date(api: MockAPI, tmp_path: Path, settings: HttpSettings, sleeps: Sleeps) -> None:
    from datetime import datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    api.add_fault("eric", "429", at=1, retry_after=when)
    run(api, "eric", tmp_path, settings)
    assert 100 < sleeps[0] <= 120


def test_keys_never_reach_logs_or_outputs(
    api: MockAPI,
    tmp_path: Path,
    settings: HttpSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    for source in CASES:
        api.add_fault(source, "500", at=1)  # a retry warning names the request
        run(api, source, tmp_path, settings)
    api.add_fault("openalex", "500", at=len(api.requests_to("openalex")) + 1, times=settings.max_attempts)
    with pytest.raises(HarvestError) as failure:
        run(api, "openalex", tmp_path, settings, checkpoint_path=None, query="another query")

    # The keys were really sent...
    assert api.requests_to("openalex")[0].params["api_key"] == SECRETS["OPENALEX_API_KEY"]
    assert api.requests_to("pubmed")[0].params["api_key"] == SECRETS["NCBI_API_KEY"]
    assert api.requests_to("semanticscholar")[0].headers["x-api-key"] == SECRETS["SEMANTIC_SCHOLAR_API_KEY"]
    assert api.requests_to("crossref")[0].params["mailto"] == SECRETS[MAILTO_ENV]
    # ...and are nowhere else.
    written = "".join(p.read_text("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file())
    logged = caplog.text + str(failure.value)
    assert "GET" in caplog.text and "retrying" in caplog.text and "[redacted]" in logged
    for secret in SECRETS.values():
        assert secret not in logged and secret not in written


def test_client_errors_are_one_sentence_without_retry(api: MockAPI, tmp_path: Path, settings: HttpSettings) -> None:
    with pytest.raises(HarvestError, match=r"HTTP 404.*check --base-url"):
        harvest("openalex", "x", base_url=api.base_url("openalex") + "/v9", settings=settings)
    assert len(api.requests) == 1
    with pytest.raises(HarvestError, match="unknown source 'scopus'"):
        harvest("scopus", "x")
    with pytest.raises(HarvestError, match="query is empty"):
        harvest("eric", "  ")
    with pytest.raises(HarvestError, match="not a date; give it as YYYY-MM-DD"):
        harvest("eric", "x", since="last week")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HarvestError, match="checkpoint is not valid JSON.*delete"):
        harvest("eric", "x", checkpoint_path=bad)


def test_parse_since_forms() -> None:
    assert parse_since("2024").isoformat() == "2024-01-01T00:00:00+00:00"
    assert parse_since("2024-05-06").isoformat() == "2024-05-06T00:00:00+00:00"
    assert parse_since("2024-05-06T08:00:00+02:00").isoformat() == "2024-05-06T06:00:00+00:00"


def test_offline_reason(api: MockAPI) -> None:
    assert offline_reason(api.base_url("openalex")) is None
    port = api.port
    api.stop()
    reason = offline_reason(f"http://127.0.0.1:{port}/openalex")
    assert reason is not None and reason.startswith(f"cannot reach 127.0.0.1:{port}")
    assert offline_reason("ftp://example.org") == "'ftp://example.org' is not an http(s) URL"
