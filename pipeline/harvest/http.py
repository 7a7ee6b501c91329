"""A polite HTTP session shared by every harvesting client (requests + tenacity).

- Rate limit: at most one request per `min_interval` seconds per session (each source has its default).
- 429 / 503 with `Retry-After`: wait exactly that long (seconds or an HTTP date), capped.
- 5xx, timeouts, dropped connections, a truncated or invalid JSON/XML body: retried with exponential
  backoff and full jitter (tenacity's `wait_random_exponential`). A body is parsed whole before any
  record is read from it, so a page is never half-parsed.
- Other 4xx: not retried; a `HarvestError` names the status and how to fix it.
- Keys come from the environment (`OPENALEX_API_KEY`, `SEMANTIC_SCHOLAR_API_KEY`, `NCBI_API_KEY`,
  `CROSSREF_PLUS_API_TOKEN`; `REVIEW_MAILTO` for the polite pools). Every URL this module logs or
  returns is redacted, and a filter on urllib3's logger redacts the URLs it logs at DEBUG.

A request that is not safe to replay (Crossref's scroll cursor advances on the server each time it is
used) is retried only when the server cannot have answered it (429, 5xx, no connection); otherwise
`ReplayUnsafe` tells the caller to restart its scroll instead of losing a page.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, quote_plus, urlencode, urlsplit

from pipeline import __version__
from pipeline.errors import ReviewError

log = logging.getLogger(__name__)

BodyKind = Literal["json", "xml"]

KEY_ENV: dict[str, str] = {
    "openalex": "OPENALEX_API_KEY",
    "crossref": "CROSSREF_PLUS_API_TOKEN",
    "semanticscholar": "SEMANTIC_SCHOLAR_API_KEY",
    "pubmed": "NCBI_API_KEY",
}
MAILTO_ENV = "REVIEW_MAILTO"
# Query parameters whose values never leave this module unredacted (keys and the contact address).
SECRET_PARAMS = frozenset({"api_key", "apikey", "key", "mailto", "email"})
REDACTED = "[redacted]"
USER_AGENT = f"living-review/{__version__} (literature-review harvester)"

_SECRET_QUERY = re.compile(r"(?<=[?&])(" + "|".join(sorted(SECRET_PARAMS)) + r")=[^&#\s\"']*", re.IGNORECASE)
_REDACT_LOCK = threading.Lock()
_KNOWN_SECRETS: set[str] = set()  # every key/mailto a session has used, for the urllib3 log filter


class HarvestError(ReviewError):
    """A harvest that cannot go on: the message says what failed, where, and what to do."""


class ReplayUnsafe(Exception):
    """A non-replayable request failed after the server may have answered it: restart the scroll."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retryable(Exception):
    """A failure worth another attempt; `retry_after` is the server's own wait, when it gave one."""

    def __init__(self, reason: str, *, retry_after: float | None = None, server_answered: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.server_answered = server_answered  # the server may have produced the page


@dataclass(frozen=True)
class Credentials:
    """A source's key and the contact address, read from the environment."""

    api_key: str | None = None
    mailto: str | None = None

    def secrets(self) -> list[str]:
        return [value for value in (self.api_key, self.mailto) if value]


def credentials_for(source: str, environ: Mapping[str, str] | None = None) -> Credentials:
    env = os.environ if environ is None else environ
    key_name = KEY_ENV.get(source)
    api_key = (env.get(key_name) or "").strip() if key_name else ""
    mailto = (env.get(MAILTO_ENV) or "").strip()
    return Credentials(api_key=api_key or None, mailto=mailto or None)


@dataclass
class HttpSettings:
    """Timeouts, retry policy and the clock; tests inject `sleep` and `clock` to observe waits."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_attempts: int = 6
    backoff_base: float = 1.0  # seconds; the n-th wait is uniform in [0, base * 2**n], capped
    backoff_max: float = 60.0
    retry_after_max: float = 900.0
    min_interval: float | None = None  # None: the source's default
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    user_agent: str = USER_AGENT


@dataclass
class Fetched:
    """One successful response: the raw bytes, the parsed document, and redacted provenance."""

    body: bytes
    document: Any
    status: int
    url: str  # redacted
    params: dict[str, str]  # redacted
    fetched_at: str  # UTC ISO 8601
    content_type: str = ""
    attempts: int = 1
    waits: list[float] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Redaction
# ---------------------------------------------------------------------------------------------


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """The text with secret query values and every known secret (plain or URL-encoded) replaced."""
    if not text:
        return text
    out = _SECRET_QUERY.sub(rf"\1={REDACTED}", text)
    with _REDACT_LOCK:
        known = set(_KNOWN_SECRETS)
    for secret in sorted(set(secrets) | known, key=len, reverse=True):
        if len(secret) < 4:
            continue  # too short to redact without mangling ordinary text
        for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
            out = out.replace(form, REDACTED)
    return out


def public_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Request parameters as they may be written to provenance: secret values replaced."""
    return {k: (REDACTED if k.lower() in SECRET_PARAMS else str(v)) for k, v in params.items()}


class _RedactingFilter(logging.Filter):
    """urllib3 logs each request line (with its query string) at DEBUG: redact it there."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactingFilter()


def _register_secrets(secrets: Iterable[str]) -> None:
    values = [s for s in secrets if s]
    if not values:
        return
    with _REDACT_LOCK:
        _KNOWN_SECRETS.update(values)
    for name in ("urllib3.connectionpool", "urllib3.util.retry", "requests"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


# ---------------------------------------------------------------------------------------------
# The session
# ---------------------------------------------------------------------------------------------


class _Limiter:
    """At most one request per `interval` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.interval = max(0.0, interval)
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if self._next is not None and now < self._next:
                self._sleep(self._next - now)
                now = self._next
            self._next = now + self.interval


class PoliteSession:
    """One source's HTTP session: rate limit, retries, body validation, redaction."""

    def __init__(
        self,
        label: str,
        *,
        min_interval: float,
        settings: HttpSettings | None = None,
        credentials: Credentials | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        import requests

        self.label = label
        self.settings = settings or HttpSettings()
        self.credentials = credentials or Credentials()
        interval = self.settings.min_interval if self.settings.min_interval is not None else min_interval
        self._limiter = _Limiter(interval, self.settings.clock, self.settings.sleep)
        self._http = requests.Session()
        agent = self.settings.user_agent
        if self.credentials.mailto:  # Crossref's and OpenAlex's etiquette: say who is asking
            agent = f"{agent[:-1]}; mailto:{self.credentials.mailto})" if agent.endswith(")") else agent
        self._http.headers.update({"User-Agent": agent, "Accept-Encoding": "gzip, deflate"})
        self._http.headers.update(dict(headers or {}))
        self._secrets = self.credentials.secrets() + [v for v in (headers or {}).values() if v]
        _register_secrets(self._secrets)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PoliteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def get(
        self,
        url: str,
        params: Mapping[str, Any],
        *,
        kind: BodyKind,
        validate: Callable[[Any], None] | None = None,
        replayable: bool = True,
        what: str = "page",
    ) -> Fetched:
        """GET and parse one response, retrying what is worth retrying; raise HarvestError when spent."""
        import tenacity

        settings = self.settings
        waits: list[float] = []
        backoff = tenacity.wait_random_exponential(multiplier=settings.backoff_base, max=settings.backoff_max)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                seconds = min(exc.retry_after, settings.retry_after_max)
            else:
                seconds = float(backoff(state))
            waits.append(seconds)
            return seconds

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s: %s failed (%s), attempt %d of %d; retrying in %.1f s",
                self.label,
                what,
                getattr(exc, "reason", exc),
                state.attempt_number,
                settings.max_attempts,
                waits[-1] if waits else 0.0,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(settings.max_attempts),
            wait=wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=settings.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        shown = _shorten(self.redact(_full_url(url, params)))
        try:
            fetched: Fetched = retrying(self._attempt, url, params, kind, validate, replayable)
        except _Retryable as exc:
            raise HarvestError(
                f"{self.label}: the {what} request {shown} failed {settings.max_attempts} times "
                f"(last: {self.redact(exc.reason)}); the source may be down or limiting us, try again later "
                "(with a checkpoint, the next harvest resumes from its last page)"
            ) from None
        fetched.waits = waits
        fetched.attempts = len(waits) + 1
        return fetched

    def _attempt(
        self,
        url: str,
        params: Mapping[str, Any],
        kind: BodyKind,
        validate: Callable[[Any], None] | None,
        replayable: bool,
    ) -> Fetched:
        try:
            return self._request(url, params, kind, validate)
        except _Retryable as exc:
            if exc.server_answered and not replayable:
                raise ReplayUnsafe(self.redact(exc.reason)) from None
            raise

    def _request(
        self, url: str, params: Mapping[str, Any], kind: BodyKind, validate: Callable[[Any], None] | None
    ) -> Fetched:
        import requests

        self._limiter.wait()
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        log.debug("%s: GET %s", self.label, self.redact(_full_url(url, params)))
        timeout = (self.settings.connect_timeout, self.settings.read_timeout)
        try:
            response = self._http.get(url, params=dict(params), timeout=timeout)
            body = response.content  # reading the body can itself fail (a cut connection)
        except requests.exceptions.RequestException as exc:
            raise _Retryable(_describe(exc), server_answered=not _never_sent(exc)) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}", retry_after=_retry_after(response.headers.get("Retry-After")))
        if status >= 400:
            raise HarvestError(self._client_error(status, body, url, params))
        try:
            document = parse_body(body, kind)
            if validate is not None:
                validate(document)
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Retryable(f"invalid {kind.upper()} body ({len(body)} bytes: {exc})", server_answered=True) from None
        return Fetched(
            body=body,
            document=document,
            status=status,
            url=self.redact(response.url),
            params=public_params(params),
            fetched_at=fetched_at,
            content_type=response.headers.get("Content-Type", ""),
        )

    def _client_error(self, status: int, body: bytes, url: str, params: Mapping[str, Any]) -> str:
        snippet = " ".join(body[:300].decode("utf-8", "replace").split())
        fix = {
            400: "check the query and filters are in the source's syntax",
            401: "check the API key in the environment",
            403: "check the API key in the environment (or that this source allows this request)",
            404: "check --base-url points at the API root the source documents",
        }.get(status, "check the query, filters and base URL")
        return (
            f"{self.label} refused the request {_shorten(self.redact(_full_url(url, params)))} "
            f"(HTTP {status}: {self.redact(snippet) or 'no message'}); {fix}"
        )


def _shorten(text: str, limit: int = 240) -> str:
    """Crossref cursors run to 1,500 characters: keep messages readable."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _full_url(url: str, params: Mapping[str, Any]) -> str:
    return f"{url}?{urlencode({k: str(v) for k, v in params.items()})}" if params else url


def parse_body(body: bytes, kind: BodyKind) -> Any:
    """The whole body parsed as JSON or XML; ValueError if it is empty, cut short or not well-formed."""
    if not body.strip():
        raise ValueError("empty body")
    if kind == "json":
        return json.loads(body.decode("utf-8"))
    from lxml import etree

    # No DTD loading, no entities resolved, no network: efetch XML declares a remote DTD.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        return etree.fromstring(body, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(str(exc)) from None


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: Exception) -> str:
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the body was cut short"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection failed" if _never_sent(exc) else "the connection dropped during the response"
    return type(exc).__name__


def _never_sent(exc: Exception) -> bool:
    """True when the request cannot have reached the server (so no server-side state moved)."""
    import requests
    import urllib3.exceptions as u3

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, "reason", reason)
        return isinstance(inner, (u3.NewConnectionError, u3.NameResolutionError, ConnectionRefusedError))
    return False


# ---------------------------------------------------------------------------------------------
# Offline check
# ---------------------------------------------------------------------------------------------


def offline_reason(base_url: str, timeout: float = 2.0) -> str | None:
    """None when the API host (or the proxy that reaches it) accepts a TCP connection within
    `timeout` seconds; otherwise one short reason, e.g. "cannot reach api.openalex.org:443 (…)".

    DNS is resolved in a worker thread so that a resolver that hangs cannot stall the caller.
    """
    target = _connect_target(base_url)
    if target is None:
        return f"{base_url!r} is not an http(s) URL"
    host, port, via = target
    outcome: list[str | None] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(None)
        except socket.gaierror:
            outcome.append("name lookup failed")
        except TimeoutError:
            outcome.append(f"no answer within {timeout:g} s")
        except OSError as exc:
            outcome.append(exc.strerror or type(exc).__name__)

    worker = threading.Thread(target=probe, name="offline-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    if outcome and outcome[0] is None:
        return None
    problem = outcome[0] if outcome else f"no answer within {timeout:g} s"
    return f"cannot reach {host}:{port}{via} ({problem})"


def _connect_target(base_url: str) -> tuple[str, int, str] | None:
    import requests.utils

    try:
        parts = urlsplit(base_url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    proxy = requests.utils.get_environ_proxies(base_url).get(parts.scheme)
    if proxy:
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.hostname:
            return proxy_parts.hostname, proxy_parts.port or 8080, f" via proxy for {parts.hostname}"
    return parts.hostname, port or (443 if parts.scheme == "https" else 80), ""
