"""The transport every target client shares: one pooled `requests` session, short timeouts, no
redirects, HTTPS only, and the parsing of the providers' throttle headers.

Every exchange is bounded twice: a total deadline (`BRIDGE_HTTP_DEADLINE_SECONDS`) and a cap on
the answer read (`BRIDGE_HTTP_MAX_ANSWER_BYTES`). The timeouts of `requests` apply to each socket
read, so a provider sending one byte a second would hold a deliverer forever; here a watchdog
shuts the socket down when the deadline passes, and the answer is streamed and dropped at the cap.

The host of every request comes from the function's settings (`Settings.base_url(target)`, the
operator's configuration), never from a job: a mapping or a webhook cannot point the bridge at
another host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from timeline_bridge import target_registry
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.observability import logger

if TYPE_CHECKING:
    from timeline_bridge.config import Settings

# Well under the deliver function's timeout, so a slow provider costs one job, not the batch.
CONNECT_TIMEOUT_MAX = 3.0
READ_TIMEOUT_MAX = 10.0
USER_AGENT = "timeline-bridge/0.1"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

Clock = Callable[[], float]

# A CR or LF in a header value would end the header and start another (or a second request):
# no control character may reach the wire (a tab is legal in HTTP, but no header here has one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

ANSWER_CHUNK_BYTES = 64 * 1024  # one read of a streamed answer: the cap is overshot by at most this
EXCERPT_CHARS = 300  # the most of an answer a log line quotes


class InsecureTargetError(ValueError):
    """The configured base URL is not HTTPS (and not a loopback sandbox)."""


# --- the total deadline ------------------------------------------------------------------------


class _Watch:
    """The deadline of one exchange: when it passes, the socket in use is shut down, which ends
    whatever read or write is blocked on it (a timeout cannot: it restarts with every byte)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.expired = False
        self.finished = False
        self.sent = False  # the request went out in full: the provider may act on it

    def attach(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            late = self.expired and not self.finished
        if late and sock is not None:
            _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self.finished:
                return
            self.expired = True
            sock = self._sock
        if sock is not None:
            _shut(sock)

    def finish(self) -> bool:
        """Stop watching; True when the deadline had passed."""
        with self._lock:
            self.finished = True
            return self.expired


def _shut(sock: socket.socket) -> None:
    # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would unwrap TLS state that
    # the reading thread is still using.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


_watching = threading.local()  # the `_Watch` of the exchange running on this thread


def _current_watch() -> _Watch | None:
    return getattr(_watching, "watch", None)


class _WatchedConnection(HTTPConnection):
    """Hands its socket to the exchange's watch: when connected, and again for each request on a
    reused keep-alive connection."""

    def connect(self) -> None:
        super().connect()
        watch = _current_watch()
        if watch is not None:
            watch.attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        watch = _current_watch()
        if watch is not None and self.sock is not None:
            watch.attach(self.sock)
        super().request(*args, **kwargs)

    def getresponse(self) -> Any:
        watch = _current_watch()
        if watch is not None:
            watch.sent = True
            watch.attach(self.sock)
        return super().getresponse()


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnection):
    pass


class _WatchedPool(HTTPConnectionPool):
    ConnectionCls = _WatchedConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose connections report to the exchange's watch."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedPool, "https": _WatchedHTTPSPool}


@cache
def session() -> requests.Session:
    """The process-wide session: keep-alive connections are reused across invocations."""
    s = requests.Session()
    # No transport-level retries: the delivery stage owns retries, and a blind POST retry could
    # double-post where the provider does not dedupe.
    adapter = _WatchedAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    s.trust_env = False  # proxies and .netrc from the environment must not reroute or add auth
    return s


def timeouts(settings: Settings) -> tuple[float, float]:
    """(connect, read) seconds: `BRIDGE_HTTP_CONNECT_TIMEOUT`/`BRIDGE_HTTP_READ_TIMEOUT`, capped."""

    def bounded(value: float | None, cap: float) -> float:
        return min(max(cap if value is None else value, 0.05), cap)

    return bounded(settings.http_connect_timeout, CONNECT_TIMEOUT_MAX), bounded(
        settings.http_read_timeout, READ_TIMEOUT_MAX
    )


def is_loopback(host: str | None) -> bool:
    """True for localhost and loopback addresses (the local sandboxes)."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_http: bool) -> str:
    """`url` if it may carry credentials: HTTPS, or HTTP to loopback or with `allow_http`
    (BRIDGE_ALLOW_HTTP_TARGETS)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    plain_http = parts.scheme == "http" and parts.hostname
    if plain_http and (allow_http or is_loopback(parts.hostname)):
        return url.rstrip("/")
    raise InsecureTargetError(f"refusing target base URL {url!r}: HTTPS required")


def check_headers(headers: Mapping[str, str], target: str) -> None:
    """Refuse header names or values holding CR, LF or another control character. The error names
    the header, never its value (it may be a credential)."""
    for name, value in headers.items():
        if not _CONTROL.search(name) and not _CONTROL.search(str(value)):
            continue
        message = f"{target}: the {name!r} header holds a control character (CR, LF, ...); not sent"
        # A header from configuration (credential, API version, shop: each target's spec names
        # its own) is the operator's to fix, so the jobs wait; one from the job refuses the job.
        if name.lower() in target_registry.configured_headers():
            raise RetryLaterError(message, code="target_misconfigured")
        raise PermanentDeliveryError(message, code="invalid_header_value")


def encode_json(body: Any) -> bytes:
    """Compact, stable JSON: a retried job sends the same bytes (Matter compares bodies per key)."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def json_body(response: requests.Response) -> Any:
    """The parsed JSON answer, or None when there is none or it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def scalar_text(value: Any) -> str:
    """A JSON scalar as an API that takes strings only spells it: `true`, `3` (not `3.0`), `2.5`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- throttle signals --------------------------------------------------------------------------


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as a delay in seconds: delta-seconds or an HTTP date; None when unusable."""
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)


def parse_ratelimit_reset(value: str | None, *, now: float | None = None) -> float | None:
    """`RateLimit-Reset` as a delay: Stora sends UTC epoch seconds; small values are delta-seconds
    (the IETF draft's form), so either reading works."""
    number = _number(value)
    if number is None:
        return None
    if number < 1e9:  # not an epoch: already a delay
        return max(number, 0.0)
    current = time.time() if now is None else now
    return max(number - current, 0.0)


# The longest wait a throttled answer (429) of a target may ask for is the longest window of its
# documented rate limits (`TargetSpec.max_throttle_wait`). A longer ask is a provider bug or a
# hostile answer: honoured, it would pause every worker of the target for up to a day. A target
# that documents no window, an enrichment API, and any answer that is not a 429 (a 5xx in
# maintenance), get MAX_ASKED_WAIT.
# 15 min: the longest SQS delay, so the retried job goes back on its queue delayed, is never held
# by visibility (and its receive count) for the wait, and an operator sees it move within minutes.
MAX_ASKED_WAIT = 900.0


def max_wait(target: str, *, throttled: bool) -> float:
    """The longest delay `target` may ask for: its documented window for a 429, else 15 min."""
    if not throttled or not target_registry.is_target(target):
        return MAX_ASKED_WAIT
    documented = target_registry.target_spec(target).max_throttle_wait
    return MAX_ASKED_WAIT if documented is None else documented


def capped_wait(target: str, seconds: float | None, *, throttled: bool, source: str) -> float | None:
    """`seconds` (a delay the provider asked for, read from `source`), at most `max_wait`; a longer
    ask is capped and logged."""
    if seconds is None:
        return None
    cap = max_wait(target, throttled=throttled)
    if seconds <= cap:
        return seconds
    logger.warning(
        "provider asked for a longer wait than its documented maximum; capped",
        extra={"target": target, "header": source, "asked_seconds": seconds, "capped_seconds": cap},
    )
    return cap


def retry_after(response: requests.Response, target: str, *, now: float | None = None) -> float | None:
    """The answer's `Retry-After`, capped for `target` (the documented window when it is a 429)."""
    return capped_wait(
        target,
        parse_retry_after(response.headers.get("Retry-After"), now=now),
        throttled=response.status_code == 429,
        source="Retry-After",
    )


def parse_interval_ms(value: str | None) -> float | None:
    """`X-HubSpot-RateLimit-Interval-Milliseconds` as seconds."""
    number = _number(value)
    return None if number is None or number < 0 else number / 1000.0


def seconds_until_next_midnight(now: float | None = None, zone: tzinfo = UTC) -> float:
    """Seconds until the next midnight on the clocks of `zone`, where a provider's daily limit
    resets (measured on the timeline, so a daylight saving change in between counts as it is)."""
    current = datetime.fromtimestamp(time.time() if now is None else now, zone)
    tomorrow = current.date() + timedelta(days=1)
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
    return max(midnight.timestamp() - current.timestamp(), 0.0)


def seconds_until_next_utc_midnight(now: float | None = None) -> float:
    return seconds_until_next_midnight(now, UTC)


# --- a bounded, safe excerpt of an answer, for a log line ----------------------------------------

_REDACTIONS = (
    # "Bearer <token>", "Basic <token>"
    re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"),
    # a credential-looking name with its value: authorization: x, "api_key": "x", token=x
    re.compile(
        r"(?i)[\"']?\b(?:authorization|proxy-authorization|cookie|set-cookie|x-api-key|api[_-]?key|"
        r"access[_-]?token|refresh[_-]?token|token|secret|client[_-]?secret|password)\b[\"']?\s*[:=]\s*"
        r"[\"']?[^\s\"',;}&]*[\"']?"
    ),
    # token shapes of the providers and the webhooks (sk_live_..., xoxb-..., pat-eu1-..., whsec_...)
    re.compile(r"\b(?:(?:sk|rk)_(?:test|live)_\w+|xox[abposr]-[\w-]+|pat-[a-z]{2}\d-[\w-]+|whsec_[\w+/=]+)"),
    # an e-mail address
    re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
)
_SPACES = re.compile(r"\s+")
_TRAILING_TOKEN = re.compile(r"[\w.~+/=-]*\Z")  # what a credential is made of, up to the end


def answer_excerpt(response: requests.Response, *, hide: Iterable[str] = ()) -> str:
    """The start of an answer, fit for a log line: at most EXCERPT_CHARS characters on one line,
    with `hide` (the credentials sent), credential-looking values and e-mail addresses replaced by
    `[redacted]`."""
    content = response.content or b""
    # A bounded piece keeps the patterns cheap on any answer; what it cuts in two at its end could
    # be half a credential that neither `hide` nor a pattern recognises, so that goes.
    text = content[: EXCERPT_CHARS * 4].decode("utf-8", "replace")
    if len(content) > EXCERPT_CHARS * 4:
        text = _TRAILING_TOKEN.sub("", text)
    for value in hide:
        if value:
            text = text.replace(value, "[redacted]")
    for pattern in _REDACTIONS:
        text = pattern.sub("[redacted]", text)
    text = _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


# --- requests exceptions -> delivery errors ----------------------------------------------------


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps (requests and urllib3 nest their errors several levels deep)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        stack.extend(n for n in nested if isinstance(n, BaseException))


def _wraps(exc: BaseException, names: tuple[str, ...]) -> bool:
    return any(type(e).__name__ in names for e in _causes(exc))


def transport_error(exc: requests.RequestException, target: str) -> RetryLaterError:
    """Classify a failed exchange. Ambiguous means the request left this process and the provider
    may have stored the event before the answer was lost."""
    if isinstance(exc, requests.ConnectTimeout) or _wraps(
        exc, ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError", "SSLError")
    ):
        return RetryLaterError(f"{target}: could not connect ({type(exc).__name__})", code="connect_error")
    if isinstance(exc, requests.ReadTimeout) or _wraps(exc, ("ReadTimeoutError",)):
        return RetryLaterError(
            f"{target}: no answer within the read timeout; the provider may have stored the event",
            code="read_timeout",
            ambiguous=True,
        )
    return RetryLaterError(
        f"{target}: connection lost after sending ({type(exc).__name__}); the provider may have stored the event",
        code="connection_lost",
        ambiguous=True,
    )


def deadline_error(target: str, deadline: float, *, sent: bool) -> RetryLaterError:
    """The exchange outlived its deadline. Ambiguous once the request went out in full."""
    if sent:
        return RetryLaterError(
            f"{target}: no complete answer within the {deadline:g} s deadline; "
            "the provider may have stored the event",
            code="deadline_exceeded",
            ambiguous=True,
        )
    return RetryLaterError(
        f"{target}: the request was not sent within the {deadline:g} s deadline", code="deadline_exceeded"
    )


def answer_too_large(
    target: str, status: int, limit: int, *, read: int, declared: int | None = None
) -> RetryLaterError:
    """The answer is bigger than anything a provider sends: not read further. Unless it is a
    refusal (4xx), the provider may have stored the event behind it."""
    details: dict[str, Any] = {"read_bytes": read}
    if declared is not None:
        details["declared_bytes"] = declared
    details["limit_bytes"] = limit
    return RetryLaterError(
        f"{target} answered {status} with more than {limit} bytes; the answer was not read",
        status=status,
        code="answer_too_large",
        details=[details],
        ambiguous=not 400 <= status < 500,
    )


def _declared_length(response: requests.Response) -> int | None:
    try:
        return int(response.headers.get("Content-Length", ""))
    except ValueError:
        return None


def _read_capped(response: requests.Response, target: str, limit: int) -> None:
    """Read the streamed answer into `response.content`, or raise `answer_too_large` once more
    than `limit` bytes came (after decompression, so a small compressed answer cannot expand)."""
    if response.raw is None:  # already in memory (an adapter that does not stream)
        content = response.content or b""
        if len(content) > limit:
            raise answer_too_large(target, response.status_code, limit, read=len(content))
        return
    declared = _declared_length(response)
    if declared is not None and declared > limit:
        raise answer_too_large(target, response.status_code, limit, read=0, declared=declared)
    parts: list[bytes] = []
    received = 0
    for chunk in response.iter_content(ANSWER_CHUNK_BYTES):
        received += len(chunk)
        if received > limit:
            raise answer_too_large(target, response.status_code, limit, read=received)
        parts.append(chunk)
    response._content = b"".join(parts)


def _close(response: requests.Response | None) -> None:
    """Release the connection: back to the pool when the answer was read in full, else closed."""
    if response is not None and response.raw is not None:
        response.close()


def exchange(
    target: str, send: Callable[[], requests.Response], *, deadline: float, max_bytes: int
) -> requests.Response:
    """Run `send` (a call on `session()` with `stream=True`) and read its answer, all within
    `deadline` seconds and at most `max_bytes` of answer. Returns the response with its content
    read; raises RetryLaterError when there is no usable answer (`transport_error`,
    `deadline_error`, `answer_too_large`)."""
    watch = _Watch()
    timer = threading.Timer(deadline, watch.expire)
    timer.daemon = True
    _watching.watch = watch
    response: requests.Response | None = None
    timer.start()
    try:
        response = send()
        _read_capped(response, target, max_bytes)
        late = watch.finish()
    except RetryLaterError:
        _close(response)  # unread bytes left: the connection is closed, not reused
        if watch.finish():
            raise deadline_error(target, deadline, sent=watch.sent) from None
        raise
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        _close(response)
        if watch.finish():
            raise deadline_error(target, deadline, sent=watch.sent) from None
        wrapped = exc if isinstance(exc, requests.RequestException) else requests.ConnectionError(exc)
        raise transport_error(wrapped, target) from None
    finally:
        timer.cancel()
        _watching.watch = None
    if late:
        # Cut off at the deadline (an answer without a declared length would look complete): its
        # socket is shut down, so the connection is closed rather than pooled.
        if response.raw is not None:
            response.raw.close()
        _close(response)
        raise deadline_error(target, deadline, sent=watch.sent)
    _close(response)
    return response


def post_within(
    label: str,
    url: str,
    data: bytes,
    headers: Mapping[str, str],
    *,
    timeout: tuple[float, float],
    deadline: float,
    max_bytes: int,
) -> requests.Response:
    """POST `data` to `url` on the shared session, never following a redirect, within `deadline`
    and `max_bytes` of answer (`exchange`; `label` names the peer in its errors)."""
    return exchange(
        label,
        lambda: session().post(
            url, data=data, headers=dict(headers), timeout=timeout, allow_redirects=False, stream=True
        ),
        deadline=deadline,
        max_bytes=max_bytes,
    )


def bounded_timeouts(timeout: tuple[float, float], deadline: float) -> tuple[float, float]:
    """No single connect or read may outlast the whole exchange."""
    return min(timeout[0], deadline), min(timeout[1], deadline)


class Transport:
    """POSTs JSON to one target's host, within the bounds of one function's settings: its base URL
    (`<TARGET>_BASE_URL` or the provider's), whether plain HTTP is allowed, the deadline, the
    timeouts (`timeout` replaces the configured ones) and the answer cap."""

    def __init__(
        self, target: str, settings: Settings, *, timeout: tuple[float, float] | None = None
    ) -> None:
        self.target = target
        self._base_url = settings.base_url(target)
        self._allow_http = settings.allow_http_targets
        self._deadline = settings.http_deadline
        self._max_answer_bytes = settings.http_max_answer_bytes
        self._timeout = bounded_timeouts(timeout or timeouts(settings), self._deadline)

    def base_url(self, override: str | None = None) -> str:
        """The checked base URL; `override` is for a provider-specific host rule (Matter test keys)."""
        return check_base_url(override or self._base_url, allow_http=self._allow_http)

    def post(
        self, path: str, body: Any, headers: Mapping[str, str], *, base_url: str | None = None
    ) -> requests.Response:
        """POST `body` as JSON to base URL + `path`. Raises RetryLaterError when no answer came back,
        PermanentDeliveryError for a header value a job made unsendable (see `check_headers`)."""
        try:
            url = self.base_url(base_url) + path
        except InsecureTargetError as exc:
            # Configuration, not the job: retry so a fix (and a redrive) loses nothing.
            raise RetryLaterError(str(exc), code="target_misconfigured") from None
        check_headers(headers, self.target)
        timeout, deadline = self._timeout, self._deadline
        data = encode_json(body)
        started = time.monotonic()
        try:
            response = post_within(
                self.target,
                url,
                data,
                headers,
                timeout=timeout,
                deadline=deadline,
                max_bytes=self._max_answer_bytes,
            )
        except RetryLaterError as error:
            logger.warning(
                "target request failed",
                extra={"target": self.target, "path": path, "code": error.code, "ambiguous": error.ambiguous},
            )
            raise
        logger.debug(
            "target answered",
            extra={
                "target": self.target,
                "path": path,
                "status": response.status_code,
                "ms": round((time.monotonic() - started) * 1000, 1),
            },
        )
        return response


def redirect_error(response: requests.Response, target: str) -> PermanentDeliveryError:
    """A 3xx: never followed (the credentials would go to wherever it points)."""
    return PermanentDeliveryError(
        f"{target} answered {response.status_code} redirect; redirects are not followed "
        "(check the base URL and path)",
        status=response.status_code,
        code="redirect_not_followed",
    )
