"""The transport every target client shares: one pooled `requests` session, short timeouts, no
redirects, HTTPS only, and the parsing of the providers' throttle headers.

The host of every request comes from `config.base_url(target)` (operator configuration), never
from a job: a mapping or a webhook cannot point the bridge at another host.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from timeline_bridge import config
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.observability import logger

# Well under the deliver function's timeout, so a slow provider costs one job, not the batch.
CONNECT_TIMEOUT_MAX = 3.0
READ_TIMEOUT_MAX = 10.0
USER_AGENT = "timeline-bridge/0.1"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})

Clock = Callable[[], float]

# A CR or LF in a header value would end the header and start another (or a second request):
# no control character may reach the wire (a tab is legal in HTTP, but no header here has one).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Headers taken from configuration (credentials, API version, shop): an operator fixes those, so
# the jobs wait. Any other header comes from the job (idempotency keys): that job is refused.
CONFIGURED_HEADERS = frozenset({"authorization", "matter-version", "x-shop-id"})


class InsecureTargetError(ValueError):
    """The configured base URL is not HTTPS (and not a loopback sandbox)."""


@cache
def session() -> requests.Session:
    """The process-wide session: keep-alive connections are reused across invocations."""
    s = requests.Session()
    # No transport-level retries: the delivery stage owns retries, and a blind POST retry could
    # double-post where the provider does not dedupe.
    adapter = HTTPAdapter(pool_connections=8, pool_maxsize=32, max_retries=0)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = USER_AGENT
    s.trust_env = False  # proxies and .netrc from the environment must not reroute or add auth
    return s


def timeouts() -> tuple[float, float]:
    """(connect, read) seconds: `BRIDGE_HTTP_CONNECT_TIMEOUT`/`BRIDGE_HTTP_READ_TIMEOUT`, capped."""

    def read(name: str, cap: float) -> float:
        raw = os.environ.get(name, "").strip()
        try:
            value = float(raw) if raw else cap
        except ValueError:
            value = cap
        return min(max(value, 0.05), cap)

    return read("BRIDGE_HTTP_CONNECT_TIMEOUT", CONNECT_TIMEOUT_MAX), read(
        "BRIDGE_HTTP_READ_TIMEOUT", READ_TIMEOUT_MAX
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


def check_base_url(url: str) -> str:
    """`url` if it may carry credentials: HTTPS, or HTTP to loopback or with BRIDGE_ALLOW_HTTP_TARGETS."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname:
        allowed = os.environ.get("BRIDGE_ALLOW_HTTP_TARGETS", "").strip().lower() == "true"
        if allowed or is_loopback(parts.hostname):
            return url.rstrip("/")
    raise InsecureTargetError(f"refusing target base URL {url!r}: HTTPS required")


def check_headers(headers: Mapping[str, str], target: str) -> None:
    """Refuse header names or values holding CR, LF or another control character. The error names
    the header, never its value (it may be a credential)."""
    for name, value in headers.items():
        if not _CONTROL.search(name) and not _CONTROL.search(str(value)):
            continue
        message = f"{target}: the {name!r} header holds a control character (CR, LF, ...); not sent"
        if name.lower() in CONFIGURED_HEADERS:
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


class Transport:
    """POSTs JSON to one target's configured host."""

    def __init__(self, target: str, *, timeout: tuple[float, float] | None = None) -> None:
        self.target = target
        self._timeout = timeout

    def base_url(self, override: str | None = None) -> str:
        """The checked base URL; `override` is for a provider-specific host rule (Matter test keys)."""
        return check_base_url(override or config.base_url(self.target))

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
        timeout = self._timeout or timeouts()
        started = time.monotonic()
        try:
            response = session().post(
                url, data=encode_json(body), headers=dict(headers), timeout=timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            error = transport_error(exc, self.target)
            logger.warning(
                "target request failed",
                extra={"target": self.target, "path": path, "code": error.code, "ambiguous": error.ambiguous},
            )
            raise error from None
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
