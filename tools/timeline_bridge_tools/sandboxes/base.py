"""What every provider sandbox shares: a real HTTP server on loopback in a thread, a store of
accepted events, a request log, fault injection, fixed-window rate limits and idempotency records.

A provider module subclasses `Sandbox` and implements `handle(request)`; it decides where an
injected `server_error` happens (inside or outside its idempotency records) and how its throttle
answer looks.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from timeline_bridge_tools.local import loopback

FAULT_KINDS = frozenset(
    {"pass", "rate_limit", "server_error", "slow", "drop_connection", "lose_response", "redirect", "respond"}
)
CONTROL_PREFIX = "/_sandbox"


@dataclass
class SandboxRequest:
    """One request as the sandbox received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    fault: Fault | None = None  # an injected server_error the provider applies where it belongs
    client: str = ""  # "host:port" of the caller: tells reused keep-alive connections apart

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The parsed body; raises ValueError when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))

    def bearer(self) -> str | None:
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    def content_type_is_json(self) -> bool:
        media = (self.header("content-type") or "").split(";")[0].strip().lower()
        return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@dataclass
class SandboxResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> SandboxResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": content_type, **(headers or {})})


@dataclass
class Fault:
    kind: str
    remaining: int
    params: dict[str, Any]


@dataclass(frozen=True)
class RateState:
    """The tightest rate-limit window after counting this request."""

    limit: int
    remaining: int
    reset_at: float  # epoch seconds when the window resets
    window: float  # seconds (after time_scale)
    exceeded: bool


class _Drop:
    """Answer nothing: close the connection."""


DROP = _Drop()


class IdempotencyRecords:
    """Stored answers per idempotency key, with TTL and "wait for the in-flight original"."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._done: dict[str, tuple[float, Any]] = {}
        self._inflight: dict[str, threading.Event] = {}

    def begin(self, key: str) -> Any | None:
        """The stored record for `key`, or None after reserving `key` (then call `finish`)."""
        while True:
            with self._lock:
                stored = self._done.get(key)
                if stored and stored[0] > time.time():
                    return stored[1]
                waiting = self._inflight.get(key)
                if waiting is None:
                    self._inflight[key] = threading.Event()
                    return None
            waiting.wait(30)

    def finish(self, key: str, record: Any | None) -> None:
        """Store `record` (None: store nothing, the next request runs fresh) and release `key`."""
        with self._lock:
            if record is not None:
                self._done[key] = (time.time() + self.ttl, record)
            event = self._inflight.pop(key, None)
        if event:
            event.set()

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    sandbox: Sandbox


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the clients' connection pooling is exercised
    # Measured: with Nagle on, each answer waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    timeout = 60  # idle keep-alive connections end on their own
    server: _Server

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        request = SandboxRequest(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client="{}:{}".format(*self.client_address[:2]),
        )
        answer = self.server.sandbox.serve(request)
        if isinstance(answer, _Drop):
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True  # the client gave up (read timeout): nothing to tell it

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def version_string(self) -> str:
        return f"{self.server.sandbox.name}-sandbox"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is in `Sandbox.requests`."""


class Sandbox:
    """A provider stand-in. Subclasses set `name`, `default_rate_limits` and implement `handle`."""

    name = "sandbox"
    # (requests, window seconds) pairs, all enforced at once.
    default_rate_limits: tuple[tuple[int, float], ...] = ()

    def __init__(
        self,
        *,
        rate_limits: Iterable[tuple[int, float]] | None = None,
        time_scale: float = 1.0,
        idempotency_ttl: float = 24 * 3600,
        log_size: int = 10_000,
    ) -> None:
        self.time_scale = time_scale
        self._rate_limits = tuple(self.default_rate_limits if rate_limits is None else rate_limits)
        self._lock = threading.RLock()
        self._events: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._requests: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._faults: deque[Fault] = deque()
        self._windows: dict[tuple[int, float], tuple[float, int]] = {}
        self.idempotency = IdempotencyRecords(idempotency_ttl)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> Sandbox:
        """Listen on `host:port` (0: any free port) in a background thread; returns self."""
        server = _Server((host, port), _Handler)
        server.sandbox = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=f"{self.name}-sandbox", daemon=True)
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self.name} sandbox is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL (scheme and host): what `<TARGET>_BASE_URL` should be set to."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            stopping = threading.Thread(target=server.shutdown, daemon=True)
            stopping.start()
            # Wake the serving loop now instead of at its next poll.
            with contextlib.suppress(OSError):
                socket.create_connection(
                    (str(server.server_address[0]), int(server.server_address[1])), timeout=0.5
                ).close()
            stopping.join(5)
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget events, requests, faults, idempotency records and rate-limit windows."""
        with self._lock:
            self._events.clear()
            self._requests.clear()
            self._faults.clear()
            self._windows.clear()
            self.idempotency.clear()
            self.clear_state()

    def clear_state(self) -> None:
        """Subclasses: forget provider-specific state."""

    # --- what tests look at -----------------------------------------------------------------

    def events(self) -> list[dict[str, Any]]:
        """What the provider stored, oldest first (newest last)."""
        with self._lock:
            return [json.loads(json.dumps(e)) for e in self._events.values()]

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every request received (method, path, query, headers, json, status, fault), in order."""
        with self._lock:
            return list(self._requests)

    def store(self, event: dict[str, Any], key: str | None = None) -> None:
        """Keep `event`; with `key`, replace the event stored under it (and move it to newest)."""
        with self._lock:
            key = key or uuid.uuid4().hex
            self._events.pop(key, None)
            self._events[key] = event

    def stored(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self._events.get(key)

    # --- fault injection and rate limits ----------------------------------------------------

    def inject(self, kind: str, count: int = 1, **params: Any) -> None:
        """Apply `kind` to the next `count` API requests (faults queue up in order).

        kinds: pass (answer normally: spaces out the faults queued after it), rate_limit (the
        provider's own 429), server_error (5xx in the provider's envelope; `status=`), slow
        (`delay=` seconds, then answer normally), drop_connection (close without answering,
        nothing stored), lose_response (process and store, then close without answering), redirect
        (`status=`, `location=`), respond (`status=`, `json=`/`body=`, `headers=`: a scripted
        answer, e.g. an error envelope copied from the docs).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(Fault(kind, count, dict(params)))

    def pending_faults(self) -> int:
        with self._lock:
            return sum(f.remaining for f in self._faults)

    def set_rate_limits(
        self, limits: Iterable[tuple[int, float]] | None, time_scale: float | None = None
    ) -> None:
        """Replace the limits (None: the provider's documented defaults; empty: unlimited)."""
        with self._lock:
            self._rate_limits = tuple(self.default_rate_limits if limits is None else limits)
            if time_scale is not None:
                self.time_scale = time_scale
            self._windows.clear()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            head = self._faults[0]
            head.remaining -= 1
            if head.remaining <= 0:
                self._faults.popleft()
            return Fault(head.kind, 1, head.params)

    def rate_state(self, *, count: bool = True) -> RateState | None:
        """Count this request in every window; the tightest (or the exceeded) window's state."""
        if not self._rate_limits:
            return None
        now = time.time()
        states = []
        with self._lock:
            for limit, seconds in self._rate_limits:
                window = seconds * self.time_scale
                start = (now // window) * window
                started, used = self._windows.get((limit, seconds), (start, 0))
                if started != start:
                    used = 0
                used += 1 if count else 0
                self._windows[(limit, seconds)] = (start, used)
                states.append(RateState(limit, max(limit - used, 0), start + window, window, used > limit))
        exceeded = [s for s in states if s.exceeded]
        if exceeded:
            return max(exceeded, key=lambda s: s.reset_at)
        return min(states, key=lambda s: (s.remaining, s.reset_at))

    # --- serving ----------------------------------------------------------------------------

    def serve(self, request: SandboxRequest) -> SandboxResponse | _Drop:
        """One request through faults, rate limits and the provider's `handle`.

        Only requests addressed to this loopback server are served, and control requests only
        from its own origin (`local.loopback`): a web page must not read what the sandbox stored
        or queue faults."""
        control = request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/")
        refused = loopback.refusal(
            request.header("host"),
            request.header("origin") if control else None,
            self.port,
            f"the {self.name} sandbox",
        )
        if refused is not None:
            status, message = refused
            return SandboxResponse.json(status, {"error": "refused", "message": message})
        if control:
            return self._control(request)
        entry: dict[str, Any] = {
            "at": time.time(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": dict(request.headers),
            "json": _try_json(request.body),
            "body": request.body.decode("utf-8", "replace"),
            "status": None,
            "fault": None,
            "client": request.client,
        }
        with self._lock:
            self._requests.append(entry)
        fault = self._next_fault()
        if fault is not None and fault.kind == "pass":
            fault = None
        answer = self._serve_with(request, fault)
        entry["fault"] = fault.kind if fault else None
        entry["status"] = None if isinstance(answer, _Drop) else answer.status
        return answer

    def _serve_with(self, request: SandboxRequest, fault: Fault | None) -> SandboxResponse | _Drop:
        if fault and fault.kind == "slow":
            time.sleep(float(fault.params.get("delay", 1.0)))
            fault = None
        if fault and fault.kind == "drop_connection":
            return DROP
        if fault and fault.kind == "respond":
            return _scripted(fault.params)
        if fault and fault.kind == "redirect":
            location = str(fault.params.get("location", self.url + request.path))
            return SandboxResponse(int(fault.params.get("status", 301)), b"", {"Location": location})
        rate = self.rate_state()
        if fault and fault.kind == "rate_limit":
            return self.rate_limited(request, rate, fault.params)
        if rate is not None and rate.exceeded:
            return self.rate_limited(request, rate, {})
        if fault and fault.kind == "server_error":
            request.fault = fault
        answer = self.handle(request)
        answer = self.decorate(answer, rate)
        if fault and fault.kind == "lose_response":
            return DROP
        return answer

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """The provider's API. Subclasses implement it."""
        raise NotImplementedError

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        """The provider's own 429. Subclasses implement it."""
        raise NotImplementedError

    def server_error(self, request: SandboxRequest) -> SandboxResponse | None:
        """The injected 5xx for `request`, if one was injected; providers call it where it belongs."""
        fault, request.fault = request.fault, None
        if fault is None or fault.kind != "server_error":
            return None
        return self.server_error_response(request, int(fault.params.get("status", 500)))

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        """The provider's 5xx in its own envelope. Subclasses implement it."""
        raise NotImplementedError

    def decorate(self, response: SandboxResponse, rate: RateState | None) -> SandboxResponse:
        """Headers a provider adds to every answer (Matter's X-RateLimit-*)."""
        return response

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        """/_sandbox/*: the console's and other processes' window into the sandbox."""
        sub = request.path[len(CONTROL_PREFIX) :].strip("/")
        if request.method == "GET" and sub in ("", "events"):
            return SandboxResponse.json(200, {"provider": self.name, "events": self.events()})
        if request.method == "GET" and sub == "requests":
            return SandboxResponse.json(
                200, {"provider": self.name, "requests": [_redacted(r) for r in self.requests]}
            )
        if request.method == "POST" and sub == "reset":
            self.reset()
            return SandboxResponse.json(200, {"provider": self.name, "reset": True})
        if request.method == "POST" and sub == "faults":
            try:
                spec = dict(request.json())
                self.inject(str(spec.pop("kind")), int(spec.pop("count", 1)), **spec)
            except (ValueError, KeyError, TypeError) as exc:
                return SandboxResponse.json(400, {"error": str(exc)})
            return SandboxResponse.json(200, {"provider": self.name, "pending_faults": self.pending_faults()})
        return SandboxResponse.json(404, {"error": "unknown sandbox control route"})


def _try_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError:
        return None


def _redacted(entry: dict[str, Any]) -> dict[str, Any]:
    headers = {k: ("***" if k in ("authorization", "x-api-key") else v) for k, v in entry["headers"].items()}
    return {**entry, "headers": headers}


def _scripted(params: dict[str, Any]) -> SandboxResponse:
    status = int(params.get("status", 200))
    headers = {str(k): str(v) for k, v in dict(params.get("headers") or {}).items()}
    if "json" in params:
        headers.setdefault("Content-Type", "application/json")
        return SandboxResponse(status, json.dumps(params["json"]).encode(), headers)
    body = params.get("body", b"")
    return SandboxResponse(status, body.encode() if isinstance(body, str) else bytes(body), headers)


def new_request_id() -> str:
    return str(uuid.uuid4())


def utc_iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parses_as_datetime(value: Any) -> bool:
    """An ISO 8601 date or date-time (`Z` allowed), as Python reads it; each provider adds its rules."""
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
