"""The harvest loop every source shares: plan (fresh, resumed or incremental), page, store, checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__
from pipeline.harvest.base import SourceClient
from pipeline.harvest.checkpoint import HarvestState, load_state, query_identity, save_state
from pipeline.harvest.http import (
    Credentials,
    Fetched,
    HarvestError,
    HttpSettings,
    PoliteSession,
    ReplayUnsafe,
    credentials_for,
    parse_body,
)
from pipeline.harvest.raw import store_raw
from pipeline.records import Record

log = logging.getLogger(__name__)

SOURCES = ("openalex", "crossref", "semanticscholar", "eric", "pubmed")


@dataclass
class HarvestResult:
    """What one harvest call gave: unique records in harvest order, and how it went."""

    records: list[Record]
    raw_files: list[Path]
    pages: int
    complete: bool
    cursor_state: dict[str, Any]
    since: str | None = None  # the 'new since' date this run applied (None: everything)
    total_reported: int | None = None  # the source's own count for the query, where it gives one
    duplicates: int = 0  # items seen twice in this harvest (dropped)
    known: int = 0  # items dropped because their id was in known_ids
    capped: bool = False  # stopped at max_records
    resumed: bool = False


def client_class(source: str) -> type[SourceClient]:
    from pipeline.harvest.crossref import CrossrefClient
    from pipeline.harvest.eric import EricClient
    from pipeline.harvest.openalex import OpenAlexClient
    from pipeline.harvest.pubmed import PubMedClient
    from pipeline.harvest.semanticscholar import SemanticScholarClient

    classes: dict[str, type[SourceClient]] = {
        "openalex": OpenAlexClient,
        "crossref": CrossrefClient,
        "semanticscholar": SemanticScholarClient,
        "eric": EricClient,
        "pubmed": PubMedClient,
    }
    try:
        return classes[source]
    except KeyError:
        raise HarvestError(f"unknown source {source!r}; use one of: {', '.join(SOURCES)}") from None


def harvest(
    source: str,
    query: str,
    *,
    since: str | None = None,
    max_records: int | None = None,
    base_url: str | None = None,
    filters: dict[str, Any] | None = None,
    raw_dir: Path | None = None,
    checkpoint_path: Path | None = None,
    page_size: int | None = None,
    known_ids: Collection[str] | None = None,
    settings: HttpSettings | None = None,
) -> HarvestResult:
    """Harvest one source for one query; see pipeline.harvest for the full contract."""
    cls = client_class(source)
    query = (query or "").strip()
    if not query:
        raise HarvestError(f"{source}: the query is empty; give the search terms to harvest")
    if max_records is not None and max_records <= 0:
        raise HarvestError(f"{source}: max_records is {max_records}; give a positive number or none")
    if since is not None:
        parse_since(since)  # fail early on a bad date
    filters = dict(filters or {})
    credentials = credentials_for(source)
    raw_dir = Path(raw_dir) if raw_dir is not None else None
    checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else None
    previous = load_state(checkpoint_path) if checkpoint_path else None
    state, resumed = _plan(previous, source, query, filters, since, raw_dir)
    run_filters = dict(filters)
    if state.run_since:
        run_filters.update(cls.since_filters(parse_since(state.run_since), bool(credentials.api_key)))
    client = cls(
        base_url=base_url or cls.default_base_url,
        query=query,
        filters=run_filters,
        page_size=min(page_size or cls.default_page_size, max_records or cls.max_page_size),
        credentials=credentials,
    )
    run = _Run(client, state, credentials, settings or HttpSettings(), raw_dir, checkpoint_path, known_ids, max_records)
    return run.go(resumed)


def incremental_since(source: str, last_run_iso: str, *, has_key: bool | None = None) -> dict[str, Any]:
    """The filters a source is sent to ask only for what is new since `last_run_iso`.

    - openalex: `from_updated_date` (date of the last run) with OPENALEX_API_KEY set; otherwise
      `from_publication_date` 90 days before it (publication dates lag indexing).
    - crossref: `from-index-date` (date of the last run).
    - semanticscholar: `publicationDateOrYear` = '<90 days before>:' (open-ended window).
    - eric: `publicationdateyear` = '[<year 90 days before> TO *]' (ERIC has year granularity only).
    - pubmed: `datetype=edat`, `mindate` (YYYY/MM/DD of the last run), `maxdate=3000`.
    Windows with an overlap re-fetch some records: drop them by source id (`known_ids`) and dedup.
    `has_key` defaults to whether the source's key is set in the environment.
    """
    cls = client_class(source)
    key = bool(credentials_for(source).api_key) if has_key is None else has_key
    return cls.since_filters(parse_since(last_run_iso), key)


def parse_since(text: str) -> datetime:
    """'2024', '2024-05-01' or an ISO 8601 date-time, as an aware UTC datetime."""
    value = (text or "").strip()
    try:
        if len(value) == 4 and value.isdigit():
            return datetime(int(value), 1, 1, tzinfo=UTC)
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise HarvestError(f"since {text!r} is not a date; give it as YYYY-MM-DD (or an ISO 8601 date-time)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _later(first: str | None, second: str | None) -> str | None:
    if not first or not second:
        return first or second
    return first if parse_since(first) >= parse_since(second) else second


def _plan(
    previous: HarvestState | None,
    source: str,
    query: str,
    filters: dict[str, Any],
    since: str | None,
    raw_dir: Path | None,
) -> tuple[HarvestState, bool]:
    """Resume an interrupted run of the same query, or start one (incremental after a complete run)."""
    identity = query_identity(source, query, filters)
    same = previous is not None and previous.identity == identity
    if previous is not None and same and not previous.complete and previous.requested_since == since:
        if raw_dir is not None or previous.pages == 0:
            return previous, True
        log.info(
            "%s: a harvest was interrupted, but without raw_dir its pages cannot be re-read; starting again", source
        )
    elif previous is not None and not same:
        log.info("%s: the query or filters changed since the last harvest; harvesting everything again", source)
    baseline = previous.last_complete_start if previous is not None and same else None
    started = _now()
    state = HarvestState(
        source=source,
        identity=identity,
        query=query,
        filters=filters,
        requested_since=since,
        run_since=_later(since, baseline),
        started_at=started,
        updated_at=started,
        last_complete_start=baseline,
    )
    return state, False


class _Collector:
    """Unique records in harvest order; duplicates and already-known ids dropped and counted."""

    def __init__(self, known_ids: Collection[str] | None) -> None:
        self.known_ids = {str(k).casefold() for k in known_ids or ()}
        self.seen: set[str] = set()
        self.records: list[Record] = []
        self.duplicates = 0
        self.known = 0

    def add(self, records: list[Record], raw_sha: str, limit: int | None) -> None:
        for record in records:
            if limit is not None and len(self.records) >= limit:
                return
            key = record.id.casefold()
            if key in self.seen:
                self.duplicates += 1
                continue
            self.seen.add(key)
            if key in self.known_ids:
                self.known += 1
                continue
            record.position = len(self.records) + 1
            if raw_sha:
                record.extra["raw_sha256"] = raw_sha
            self.records.append(record)


class _Run:
    """One harvest run: the session, the state it checkpoints, the records it collects."""

    def __init__(
        self,
        client: SourceClient,
        state: HarvestState,
        credentials: Credentials,
        settings: HttpSettings,
        raw_dir: Path | None,
        checkpoint_path: Path | None,
        known_ids: Collection[str] | None,
        max_records: int | None,
    ) -> None:
        self.client = client
        self.state = state
        self.credentials = credentials
        self.settings = settings
        self.raw_dir = raw_dir
        self.checkpoint_path = checkpoint_path
        self.max_records = max_records
        self.collector = _Collector(known_ids)
        self.raw_files: list[Path] = []
        self.total: int | None = None

    def go(self, resumed: bool) -> HarvestResult:
        client, state = self.client, self.state
        if resumed and not self._replay():
            resumed = False
        if resumed:
            cursor = client.resume_cursor(state.cursor) if state.cursor else client.first_cursor()
            log.info(
                "%s: resuming the harvest at page %d (%d records so far)",
                client.label,
                state.pages + 1,
                len(self.collector.records),
            )
        else:
            cursor = client.first_cursor()
        with PoliteSession(
            client.label,
            min_interval=client.interval(self.credentials),
            settings=self.settings,
            credentials=self.credentials,
            headers=client.headers(),
        ) as session:
            for fetched in client.prepare(session):
                self._store(fetched, page=0)
            self._pages(session, cursor)
        log.info(
            "%s: %d record(s) in %d page(s)%s%s",
            client.label,
            len(self.collector.records),
            state.pages,
            f", {self.collector.duplicates} duplicate(s) dropped" if self.collector.duplicates else "",
            f", {self.collector.known} already known" if self.collector.known else "",
        )
        return HarvestResult(
            records=self.collector.records,
            raw_files=list(dict.fromkeys(self.raw_files)),
            pages=state.pages,
            complete=state.complete,
            cursor_state=state.to_dict(),
            since=state.run_since,
            total_reported=self.total,
            duplicates=self.collector.duplicates,
            known=self.collector.known,
            capped=state.capped,
            resumed=resumed,
        )

    def _replay(self) -> bool:
        """Re-read the records of the pages an interrupted run already stored; False if one is gone."""
        assert self.raw_dir is not None or not self.state.page_files
        for relative in self.state.page_files:
            path = (self.raw_dir or Path()) / relative
            try:
                body = path.read_bytes()
            except FileNotFoundError:
                log.warning(
                    "%s: stored page %s is missing; harvesting from the first page again", self.client.label, path
                )
                self._restart_state()
                return False
            document = parse_body(body, self.client.kind)
            self.collector.add(self.client.items(document), path.stem, self.max_records)
            self.raw_files.append(path)
        return True

    def _restart_state(self) -> None:
        self.state.cursor, self.state.page_files, self.state.pages, self.state.records = {}, [], 0, 0
        self.collector = _Collector(self.collector.known_ids)
        self.raw_files = []

    def _pages(self, session: PoliteSession, cursor: dict[str, Any]) -> None:
        client, state = self.client, self.state
        restarts = 0
        while not state.complete:
            if self._capped():
                self._finish(capped=True)
                break
            url, params = client.request(cursor)
            try:
                fetched = session.get(
                    url,
                    params,
                    kind=client.kind,
                    validate=client.validate,
                    replayable=client.replayable(cursor),
                    what=f"page {state.pages + 1}",
                )
            except ReplayUnsafe as exc:
                restarts += 1
                if restarts >= self.settings.max_attempts:
                    raise HarvestError(
                        f"{client.label}: page {state.pages + 1} kept failing ({exc.reason}) and the cursor cannot be "
                        "replayed; try again later (the next harvest starts the scroll again and skips what it has)"
                    ) from None
                log.warning(
                    "%s: page %d was lost in transit (%s); restarting the scroll and skipping what we have",
                    client.label,
                    state.pages + 1,
                    exc.reason,
                )
                self.settings.sleep(min(self.settings.backoff_base * 2**restarts, self.settings.backoff_max))
                cursor = client.restart_cursor()
                continue
            cursor = self._page(fetched, cursor)

    def _page(self, fetched: Fetched, cursor: dict[str, Any]) -> dict[str, Any]:
        client, state = self.client, self.state
        page = state.pages + 1
        path = self._store(fetched, page=page)
        items = client.items(fetched.document)
        self.collector.add(items, path.stem if path else "", self.max_records)
        if self.total is None:
            self.total = client.total(fetched.document)
        following = client.next_cursor(fetched.document, cursor, len(items))
        if following is not None and following == cursor and client.replayable(cursor):
            log.warning("%s: the source returned the same cursor again; stopping here", client.label)
            following = None
        state.pages = page
        state.cursor = following or {}
        if path is not None and self.raw_dir is not None:
            state.page_files.append(path.relative_to(self.raw_dir).as_posix())
        log.info(
            "%s: page %d, %d item(s)%s",
            client.label,
            page,
            len(items),
            f" of {self.total} reported" if self.total is not None else "",
        )
        if following is None:
            self._finish(capped=False)
        else:
            self._save()
        return following or cursor

    def _capped(self) -> bool:
        return self.max_records is not None and len(self.collector.records) >= self.max_records

    def _finish(self, *, capped: bool) -> None:
        self.state.complete = True
        self.state.capped = capped
        self.state.last_complete_start = self.state.started_at
        if capped:
            log.info("%s: stopped at max_records=%s", self.client.label, self.max_records)
        self._save()

    def _save(self) -> None:
        self.state.records = len(self.collector.records)
        self.state.updated_at = _now()
        if self.checkpoint_path is not None:
            save_state(self.checkpoint_path, self.state)

    def _store(self, fetched: Fetched, *, page: int) -> Path | None:
        if self.raw_dir is None:
            return None
        provenance = {
            "source": self.client.name,
            "source_label": self.client.label,
            "query": self.client.query,
            "filters": self.client.filters,
            "since": self.state.run_since,
            "request_url": fetched.url,
            "params": fetched.params,
            "fetched_at": fetched.fetched_at,
            "http_status": fetched.status,
            "content_type": fetched.content_type,
            "attempts": fetched.attempts,
            "page": page,
            "client": f"pipeline.harvest.{self.client.name}",
            "client_version": __version__,
            "harvest_started_at": self.state.started_at,
        }
        path = store_raw(self.raw_dir, self.client.name, fetched.body, self.client.suffix, provenance)
        self.raw_files.append(path)
        return path
