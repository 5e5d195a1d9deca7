"""A Lambda Function URL on loopback: HTTP requests become payload-format-2.0 events, and the
handler's answer becomes the HTTP answer, with the conversions Lambda applies.

Only the standard library: the emulator must start in milliseconds and add no dependency.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

# Lambda's synchronous invocation payload limit (BUFFERED Function URLs): 6 MB.
MAX_REQUEST_BYTES = 6 * 1024 * 1024
_DRAIN_LIMIT = 64 * 1024 * 1024

# Content types Lambda hands over as text; every other body arrives base64-encoded.
_TEXT_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/yaml",
    "application/x-yaml",
    "application/graphql",
)


@dataclass(slots=True)
class HttpRequest:
    """One request as the local server received it."""

    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str

    def header(self, name: str, default: str = "") -> str:
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), default)


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, payload: Any) -> HttpResponse:
        return cls(status, json.dumps(payload).encode(), [("content-type", "application/json")])

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> HttpResponse:
        return cls(status, text.encode(), [("content-type", content_type)])


def is_text_content(content_type: str) -> bool:
    """True when Lambda passes a body of this content type as text rather than base64."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        return False
    return (
        media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+json") or media.endswith("+xml")
    )


def build_event(request: HttpRequest, *, api_id: str = "local") -> dict[str, Any]:
    """The payload-format-2.0 event a Function URL hands its function for `request`."""
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        # Lambda joins repeated headers with commas.
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-proto", "http")
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": api_id,
            "domainName": headers.get("host", ""),
            "domainPrefix": api_id,
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": request.client_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": formatdate(now, usegmt=True),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if request.query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(request.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    if request.body:
        text = None
        if is_text_content(headers.get("content-type", "")):
            try:
                text = request.body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        if text is None:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
        else:
            event["body"] = text
    return event


def to_http_response(result: Any) -> HttpResponse:
    """Turn a handler's return value into the HTTP answer, as a Function URL does.

    A dict with `statusCode` is a full answer; any other value is serialised as a 200 JSON body.
    """
    if not (isinstance(result, dict) and "statusCode" in result):
        if isinstance(result, str):
            return HttpResponse(200, result.encode(), [("content-type", "application/json")])
        return HttpResponse.json(200, result)
    status = int(result.get("statusCode") or 200)
    headers = [(str(k).lower(), str(v)) for k, v in (result.get("headers") or {}).items()]
    headers += [("set-cookie", str(c)) for c in result.get("cookies") or []]
    raw = result.get("body")
    if raw is None:
        body = b""
    elif result.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    elif isinstance(raw, str):
        body = raw.encode("utf-8")
    else:
        body = json.dumps(raw).encode()
    if body and not any(k == "content-type" for k, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResponse(status, body, headers)


App = Callable[[HttpRequest], HttpResponse]


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"
    # Small answers on a keep-alive connection otherwise wait for the peer's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "timeline-bridge-local"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the console and the journal show every request."""

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        length_header = self.headers.get("content-length")
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            self._answer(HttpResponse.json(411, {"message": "Length Required"}), close=True)
            return
        try:
            length = int(length_header or 0)
        except ValueError:
            self._answer(HttpResponse.json(400, {"message": "Bad Request"}), close=True)
            return
        if length > MAX_REQUEST_BYTES:
            # Lambda refuses the invocation before the function runs. The body is read and dropped
            # (up to a bound) so the client sees the answer rather than a reset while sending.
            remaining = length if length <= _DRAIN_LIMIT else 0
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            self._answer(HttpResponse.json(413, {"message": "Request Entity Too Large"}), close=True)
            return
        body = self.rfile.read(length) if length else b""
        request = HttpRequest(
            method=self.command,
            path=path or "/",
            query=query,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
        )
        try:
            response = self.server.app(request)
        except Exception:  # the emulator must answer like Lambda does when a function crashes
            self.server.on_error()
            response = HttpResponse.json(502, {"message": "Internal Server Error"})
        self._answer(response)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _answer(self, response: HttpResponse, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        if close:
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class LocalHttpServer(ThreadingHTTPServer):
    """A threaded loopback HTTP server that hands every request to `app`."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, port: int, app: App, on_error: Callable[[], None] | None = None) -> None:
        self.app = app
        self.on_error = on_error or (lambda: None)
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="function-url", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)
