"""Outbound calls are bounded in time and size: every call to a target or an enrichment API ends
within `BRIDGE_HTTP_DEADLINE_SECONDS`, however slowly the provider answers, and reads at most
`BRIDGE_HTTP_MAX_ANSWER_BYTES` of its answer.

The providers here are raw loopback servers: one dribbles its answer a byte at a time (each byte
well inside the per-read timeout, so only a total deadline ends the call), one sends a huge body.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from target_clients import CLIENTS
from timeline_bridge import TARGETS, config, keys
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets import http
from timeline_bridge.wiring import Dependencies

DRIBBLE_GAP = 0.3  # seconds between two bytes: far inside the 10 s read timeout
DRIBBLE_GIVES_UP = 6.0  # the dribbling server closes after this long (a bound for unfixed code)
CEILING = 4.0  # generous: the deadline is 1 s
HUGE = 64 * 1024 * 1024


BODIES: dict[str, dict[str, Any]] = {
    "stora": {"source": {"id": "tsrc_1"}, "template": {"id": "aetpl_1"}, "description": "moved"},
    "hubspot": {"eventTemplateId": "1001298", "objectId": "98442", "tokens": {"stage": "won"}},
    "matter": {"kind": "audit", "title": "moved", "occurred_at": "2026-01-01T00:00:00Z"},
    "applied": {"name": "Deal won", "metric": {"metric_name": "deal_won"}},
}
APPLIED_CONTACT = {"name": "Deal won", "contact": {"remote_id": "c-1"}}


def job(target: str, body: dict[str, Any]) -> DeliveryJob:
    return DeliveryJob(
        key=keys.job_key("hubspot", "evt-1", f"test-to-{target}"),
        target=target,
        mapping=f"test-to-{target}",
        mapping_file=f"mappings/test-to-{target}.yaml",
        source="hubspot",
        event_id="evt-1",
        event_type="deal.propertyChange",
        occurred_at="2026-01-01T00:00:00Z",
        body=body,
    )


# --- loopback providers ------------------------------------------------------------------------


@dataclass
class Provider:
    """A raw TCP server answering every request with `answer(connection)`; counts bytes sent."""

    mode: str
    tls: ssl.SSLContext | None = None
    sent: int = 0
    requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def serve(self, listener: socket.socket) -> None:
        listener.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.settimeout(5)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._read_request(conn)
            self.requests += 1
            if self.mode == "dribble_body":
                conn.sendall(
                    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                )
                self._dribble(conn, b'{"id": "' + b"x" * 990)
            elif self.mode == "dribble_headers":
                self._dribble(conn, b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n" * 20)
            elif self.mode in ("huge_chunked", "huge_declared"):
                self._huge(conn, chunked=self.mode == "huge_chunked")

    @staticmethod
    def _read_request(conn: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536) or b"\r\n\r\n"
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            rest += chunk

    def _dribble(self, conn: socket.socket, data: bytes) -> None:
        started = time.monotonic()
        for byte in data:
            if self.stop.is_set() or time.monotonic() - started > DRIBBLE_GIVES_UP:
                return
            conn.sendall(bytes([byte]))
            self.sent += 1
            time.sleep(DRIBBLE_GAP)

    def _huge(self, conn: socket.socket, *, chunked: bool) -> None:
        piece = b'{"x": "' + b"y" * (64 * 1024 - 7)
        if chunked:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
        else:
            conn.sendall(
                f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n".encode()
            )
        for _ in range(HUGE // len(piece)):
            if self.stop.is_set():
                return
            conn.sendall(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            self.sent += len(piece)


@contextlib.contextmanager
def provider(mode: str, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, Provider]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    server = Provider(mode, tls)
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{listener.getsockname()[1]}", server
    finally:
        server.stop.set()
        thread.join(2)
        listener.close()


@pytest.fixture
def tls_context(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1, trusted by the session."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    monkeypatch.setattr(http.session(), "verify", str(cert_file))
    return context


@pytest.fixture
def one_second_deadline(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """A 1 s total deadline; the per-read timeout stays at its 10 s default."""
    monkeypatch.setenv("BRIDGE_HTTP_DEADLINE_SECONDS", "1")
    monkeypatch.delenv("BRIDGE_HTTP_READ_TIMEOUT", raising=False)
    yield 1.0


@pytest.fixture
def default_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("BRIDGE_HTTP_DEADLINE_SECONDS", "BRIDGE_HTTP_MAX_ANSWER_BYTES"):
        monkeypatch.delenv(name, raising=False)
    yield


def point_at(monkeypatch: pytest.MonkeyPatch, target: str, url: str) -> None:
    monkeypatch.setenv(f"{target.upper()}_BASE_URL", url)


# --- the settings ------------------------------------------------------------------------------


def test_deadline_and_answer_cap_have_documented_defaults_when_not_configured(default_settings):
    settings = config.Settings.from_environ()
    assert settings.http_deadline == 10.0
    assert settings.http_max_answer_bytes == 1024 * 1024


@pytest.mark.parametrize(("raw", "expected"), [("2.5", 2.5), ("3600", 14.0), ("0", 0.1), ("soon", 10.0)])
def test_deadline_stays_under_the_deliver_time_margin_when_configured_higher(monkeypatch, raw, expected):
    monkeypatch.setenv("BRIDGE_HTTP_DEADLINE_SECONDS", raw)
    assert config.Settings.from_environ().http_deadline == expected


# --- a dribbling provider: the deadline ends the call ------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_call_ends_at_the_deadline_as_ambiguous_when_the_provider_dribbles_its_answer(
    monkeypatch, one_second_deadline, target
):
    with provider("dribble_body") as (url, server):
        point_at(monkeypatch, target, url)
        started = time.monotonic()
        (outcome,) = CLIENTS[target]().send([job(target, BODIES[target])])
        elapsed = time.monotonic() - started

    assert isinstance(outcome, RetryLaterError), outcome
    # The request was sent: the provider may have stored the event (each target's retry dedupes).
    assert (outcome.code, outcome.ambiguous) == ("deadline_exceeded", True)
    assert elapsed < CEILING
    assert server.sent < 1000  # the answer was never read to its end


def test_call_ends_at_the_deadline_when_the_provider_dribbles_its_status_line(
    monkeypatch, one_second_deadline
):
    with provider("dribble_headers") as (url, _server):
        point_at(monkeypatch, "stora", url)
        started = time.monotonic()
        (outcome,) = CLIENTS["stora"]().send([job("stora", BODIES["stora"])])
        elapsed = time.monotonic() - started

    assert isinstance(outcome, RetryLaterError) and outcome.code == "deadline_exceeded" and outcome.ambiguous
    assert elapsed < CEILING


def test_call_ends_at_the_deadline_when_a_tls_provider_dribbles_its_answer(
    monkeypatch, one_second_deadline, tls_context
):
    with provider("dribble_body", tls_context) as (url, server):
        point_at(monkeypatch, "matter", url)
        started = time.monotonic()
        (outcome,) = CLIENTS["matter"]().send([job("matter", BODIES["matter"])])
        elapsed = time.monotonic() - started

    assert isinstance(outcome, RetryLaterError), outcome
    assert (outcome.code, outcome.ambiguous) == ("deadline_exceeded", True)
    assert server.requests == 1 and elapsed < CEILING


def test_applied_contact_activity_is_ambiguous_timeout_not_resent_when_the_deadline_passes(
    monkeypatch, one_second_deadline
):
    with provider("dribble_body") as (url, server):
        point_at(monkeypatch, "applied", url)
        started = time.monotonic()
        (outcome,) = CLIENTS["applied"]().send([job("applied", APPLIED_CONTACT)])
        elapsed = time.monotonic() - started

    # Applied adds a contact activity on every request: a person checks before any resend.
    assert isinstance(outcome, PermanentDeliveryError)
    assert outcome.code == "ambiguous_timeout"
    assert outcome.details == [{"transport": "deadline_exceeded"}]
    assert server.requests == 1
    assert elapsed < CEILING


def test_enrichment_read_ends_at_the_deadline_and_is_retried_when_the_api_dribbles(
    monkeypatch, one_second_deadline
):
    from timeline_bridge.enrichment import Enrichment, hubspot

    with provider("dribble_body") as (url, _server):
        monkeypatch.setenv("HUBSPOT_BASE_URL", url)
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "hubspot-token-1")
        monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN_SECRET_ID", raising=False)
        crm = Enrichment.of(Dependencies.from_environ()).sources.hubspot
        started = time.monotonic()
        with pytest.raises(RetryLaterError) as caught:
            hubspot.deal(crm, {"id": "98442"})
        elapsed = time.monotonic() - started

    # A read stores nothing: never ambiguous.
    assert (caught.value.code, caught.value.ambiguous) == ("deadline_exceeded", False)
    assert elapsed < CEILING


# --- a huge answer: read up to the cap, then refused -------------------------------------------


def test_answer_cut_at_the_cap_when_the_provider_streams_a_huge_body(monkeypatch, default_settings):
    cap = config.Settings.from_environ().http_max_answer_bytes
    with provider("huge_chunked") as (url, server):
        point_at(monkeypatch, "stora", url)
        tracemalloc.start()
        try:
            (outcome,) = CLIENTS["stora"]().send([job("stora", BODIES["stora"])])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

    assert isinstance(outcome, RetryLaterError), outcome
    assert (outcome.status, outcome.code, outcome.ambiguous) == (200, "answer_too_large", True)
    assert "1048576 bytes" in outcome.message
    (detail,) = outcome.details
    assert cap < detail["read_bytes"] <= cap + http.ANSWER_CHUNK_BYTES
    assert server.sent < HUGE // 4  # the provider was cut off, not read to the end
    assert peak < 8 * cap  # not the 64 MiB answer in memory


def test_answer_refused_unread_when_its_declared_length_exceeds_the_cap(monkeypatch, default_settings):
    with provider("huge_declared") as (url, _server):
        point_at(monkeypatch, "matter", url)
        (outcome,) = CLIENTS["matter"]().send([job("matter", BODIES["matter"])])

    assert isinstance(outcome, RetryLaterError), outcome
    assert (outcome.status, outcome.code) == (200, "answer_too_large")
    assert outcome.details == [{"read_bytes": 0, "declared_bytes": HUGE, "limit_bytes": 1024 * 1024}]


def test_enrichment_read_refused_when_the_api_answers_a_huge_body(monkeypatch, default_settings):
    from timeline_bridge.enrichment import Enrichment, stora

    with provider("huge_chunked") as (url, _server):
        monkeypatch.setenv("STORA_BASE_URL", url)
        monkeypatch.setenv("STORA_TOKEN", "stora-token-1")
        monkeypatch.delenv("STORA_TOKEN_SECRET_ID", raising=False)
        contacts = Enrichment.of(Dependencies.from_environ()).sources.stora
        with pytest.raises(RetryLaterError) as caught:
            stora.contact_by_email(contacts, {"email": "someone@example.test"})

    assert (caught.value.code, caught.value.ambiguous) == ("answer_too_large", False)
