"""Outbound safety (FM-23): the bridge calls only its four configured hosts, with headers it builds
itself, and never follows a redirect. A mapping or an event cannot choose the URL, the host or a
header, and a CR or LF can reach neither a header nor an identifier field.

The transport is replaced by a recording session for the request-shape tests; the redirect test
uses two real loopback servers.
"""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from target_clients import CLIENTS, built
from timeline_bridge import TARGETS, keys
from timeline_bridge.errors import MappingError, PermanentDeliveryError, RetryLaterError
from timeline_bridge.mapping.loader import check_text
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.targets import applied, http, hubspot, matter, stora
from timeline_bridge.targets.base import Delivered
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.local.template import functions, load_template

ROOT = Path(__file__).resolve().parents[3]

BASE_URLS = {t: f"https://{t}.api.example.test" for t in TARGETS}


# What each target's request is: fixed path, fixed header names.
ENDPOINTS = {
    "stora": (stora.EVENTS_PATH, {"Authorization", "Accept", "Content-Type", "Idempotency-Key"}),
    "hubspot": (
        hubspot.APIS["v3"].single,
        {"Authorization", "Accept", "Content-Type"},
    ),
    "matter": (
        matter.EVENTS_PATH,
        {"Authorization", "Matter-Version", "Idempotency-Key", "Accept", "Content-Type"},
    ),
    "applied": (applied.EVENTS_PATH, {"Authorization", "X-Shop-Id", "Accept", "Content-Type"}),
}
# Valid bodies, plus every transport-looking key a hostile job could carry.
BODIES: dict[str, dict[str, Any]] = {
    "stora": {"source": {"id": "tsrc_1"}, "template": {"id": "aetpl_1"}, "description": "moved"},
    "hubspot": {"eventTemplateId": "1001298", "objectId": "98442", "tokens": {"stage": "won"}},
    "matter": {"kind": "audit", "title": "moved", "occurred_at": "2026-01-01T00:00:00Z"},
    "applied": {"name": "Deal won", "metric": {"metric_name": "deal_won"}},
}
HOSTILE = {
    "url": "http://169.254.169.254/latest/meta-data/",
    "__url__": "http://127.0.0.1:2773/secretsmanager/get",
    "host": "evil.example",
    "Host": "evil.example",
    "headers": {"Authorization": "Bearer attacker-0000", "X-Forwarded-Host": "evil.example"},
    "method": "DELETE",
    "path": "/../../admin",
}


class RecordingSession:
    """Stands for `requests.Session`: records each call and answers 201."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"url": url, **kwargs})
        response = requests.Response()
        response.status_code = 201
        response._content = json.dumps({"id": "evt_1", "event": {"id": "evt_1"}}).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = url
        return response


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> RecordingSession:
    session = RecordingSession()
    monkeypatch.setattr(http, "session", lambda: session)
    for target, url in BASE_URLS.items():
        monkeypatch.setenv(f"{target.upper()}_BASE_URL", url)
    monkeypatch.delenv("BRIDGE_ALLOW_HTTP_TARGETS", raising=False)
    return session


def job(target: str, body: dict[str, Any], *, key: str | None = None) -> DeliveryJob:
    return DeliveryJob(
        key=key or keys.job_key("hubspot", "evt-1", f"test-to-{target}"),
        target=target,
        mapping=f"test-to-{target}",
        mapping_file=f"mappings/test-to-{target}.yaml",
        source="hubspot",
        event_id="evt-1",
        event_type="deal.propertyChange",
        occurred_at="2026-01-01T00:00:00Z",
        body=body,
    )


# --- the host, path and headers are the adapter's ----------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_request_goes_to_the_configured_host_when_the_job_body_names_another(recorder, target):
    (outcome,) = CLIENTS[target]().send([job(target, BODIES[target] | HOSTILE)])

    assert isinstance(outcome, Delivered)
    (call,) = recorder.calls
    path, header_names = ENDPOINTS[target]
    assert call["url"] == BASE_URLS[target] + path
    assert set(call["headers"]) == header_names
    assert call["allow_redirects"] is False
    assert "attacker" not in json.dumps(call["headers"])


@pytest.mark.parametrize("target", TARGETS)
def test_request_never_leaves_the_configured_host_when_the_base_url_has_userinfo_tricks(
    recorder, monkeypatch, target
):
    # urlsplit reads the host after the "@": the configured host is the one called.
    monkeypatch.setenv(f"{target.upper()}_BASE_URL", f"https://evil.example@{target}.api.example.test")
    CLIENTS[target]().send([job(target, BODIES[target])])

    (call,) = recorder.calls
    assert urlsplit(call["url"]).hostname == f"{target}.api.example.test"


def test_rendered_event_fields_stay_in_the_body_when_the_mapping_copies_the_whole_event(recorder):
    mapping, errors = check_text(
        textwrap.dedent(
            """\
            name: copies-everything
            source: hubspot
            target: hubspot
            body:
              eventTemplateId: "1001298"
              objectId: "${{ to_string(event.objectId) }}"
              tokens:
                stage: "${{ event.propertyValue }}"
              extraData: "${{ event }}"
            """
        ),
        "copies-everything.yaml",
    )
    assert mapping is not None, errors
    event = {"objectId": 98442, "propertyValue": "closedwon", **HOSTILE}
    envelope = Envelope("hubspot", "deal.propertyChange", "evt-1", None, "2026-01-01T00:00:00Z", event)

    (outcome,) = CLIENTS["hubspot"]().send([mapping.render(envelope)])

    assert isinstance(outcome, Delivered)
    (call,) = recorder.calls
    assert call["url"] == BASE_URLS["hubspot"] + ENDPOINTS["hubspot"][0]
    assert set(call["headers"]) == ENDPOINTS["hubspot"][1]
    assert json.loads(call["data"])["extraData"]["Host"] == "evil.example"  # data, nothing more


def test_session_ignores_proxies_and_netrc_from_the_environment_when_built():
    http.session.cache_clear()
    try:
        assert http.session().trust_env is False
    finally:
        http.session.cache_clear()


# --- https only (loopback http for the sandboxes) ----------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://public-api.stora.co",
        "https://api.hubapi.com/",
        "http://127.0.0.1:8080",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_base_url_accepted_when_https_or_loopback_http(url):
    assert http.check_base_url(url, allow_http=False) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://public-api.stora.co",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://0x7f000001",
        "ftp://public-api.stora.co",
        "https://",
        "//public-api.stora.co",
        "file:///etc/passwd",
    ],
)
def test_base_url_refused_when_not_https_nor_loopback(url):
    with pytest.raises(http.InsecureTargetError):
        http.check_base_url(url, allow_http=False)


@pytest.mark.parametrize("target", TARGETS)
def test_nothing_sent_and_job_kept_when_the_base_url_is_plain_http(recorder, monkeypatch, target):
    monkeypatch.setenv(f"{target.upper()}_BASE_URL", f"http://{target}.api.example.test")

    (outcome,) = CLIENTS[target]().send([job(target, BODIES[target])])

    assert isinstance(outcome, RetryLaterError) and outcome.code == "target_misconfigured"
    assert recorder.calls == []


def test_deployed_stack_allows_https_base_urls_only_when_configured():
    template = load_template(ROOT / "template.yaml")
    for target in TARGETS:
        parameter = template["Parameters"][f"{target.capitalize()}BaseUrl"]
        assert parameter["AllowedPattern"] == "^https://[^/]+$"
        assert parameter["Default"].startswith("https://")
    for fn in functions(template).values():
        assert "BRIDGE_ALLOW_HTTP_TARGETS" not in fn.environment, fn.logical_id


# --- redirects are never followed --------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str]
    location = ""

    def do_POST(self) -> None:
        self.hits.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.location:
            self.send_response(307)
            self.send_header("Location", self.location)
        else:
            self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _server(location: str = "") -> tuple[ThreadingHTTPServer, list[str]]:
    hits: list[str] = []
    handler = type("Handler", (_Recorder,), {"hits": hits, "location": location})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, hits


@pytest.fixture
def redirecting() -> Iterator[tuple[str, list[str], list[str]]]:
    """A loopback server answering 307 to a second one; yields (base URL, hits of each)."""
    elsewhere, elsewhere_hits = _server()
    location = f"http://127.0.0.1:{elsewhere.server_address[1]}/collect"
    first, first_hits = _server(location)
    try:
        yield f"http://127.0.0.1:{first.server_address[1]}", first_hits, elsewhere_hits
    finally:
        for server in (first, elsewhere):
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize("target", TARGETS)
def test_redirect_not_followed_and_job_refused_when_the_provider_answers_307(
    monkeypatch, redirecting, target
):
    base, first_hits, elsewhere_hits = redirecting
    monkeypatch.setenv(f"{target.upper()}_BASE_URL", base)

    (outcome,) = CLIENTS[target]().send([job(target, BODIES[target])])

    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "redirect_not_followed"
    assert first_hits == [ENDPOINTS[target][0]]
    assert elsewhere_hits == []


# --- CR/LF: refused where a value is an identifier or a header; kept in text ---------------------

HEAD = {
    "hubspot": 'eventTemplateId: "1001298"\n  objectId: "98442"\n  tokens: {stage: won}\n',
    "stora": "source: {id: tsrc_1}\n  template: {id: aetpl_1}\n",
    "matter": 'kind: audit\n  title: moved\n  occurred_at: "2026-01-01T00:00:00Z"\n',
    "applied": "name: Deal won\n  metric: {metric_name: deal_won}\n",
}
# (target, body line taking the event's `value`, path of the field in the rendered body)
IDENTIFIER_FIELDS = [
    ("hubspot", 'id: "${{ event.value }}"', ("id",)),
    ("hubspot", 'utk: "${{ event.value }}"', ("utk",)),
    ("stora", 'external: {id: "${{ event.value }}"}', ("external", "id")),
    ("stora", 'external: {id: x, url: "${{ event.value }}"}', ("external", "url")),
    ("matter", 'ref: "${{ event.value }}"', ("ref",)),
    ("matter", 'actor: "${{ event.value }}"', ("actor",)),
    ("applied", 'contact: {email: "${{ event.value }}"}', ("contact", "email")),
    ("applied", 'contact: {remote_id: "${{ event.value }}"}', ("contact", "remote_id")),
]
TEXT_FIELDS = [
    ("stora", 'description: "${{ event.value }}"', ("description",)),
    ("stora", 'variables: {note: "${{ event.value }}"}', ("variables", "note")),
    ("hubspot", 'extraData: {note: "${{ event.value }}"}', ("extraData", "note")),
    ("applied", 'description: "${{ event.value }}"', ("description",)),
]
INJECTIONS = ["abc\r\nX-Injected: 1", "abc\n", "abc\rdef", "a\x00b"]


def _mapping(target: str, line: str) -> Any:
    text = f"name: one-line-check\nsource: hubspot\ntarget: {target}\nbody:\n  {HEAD[target]}  {line}\n"
    mapping, errors = check_text(text, "one-line-check.yaml")
    assert mapping is not None, [str(e) for e in errors]
    return mapping


def _render(mapping: Any, value: str) -> DeliveryJob:
    envelope = Envelope(
        "hubspot", "deal.propertyChange", "evt-1", None, "2026-01-01T00:00:00Z", {"value": value}
    )
    return mapping.render(envelope)


@pytest.mark.parametrize("value", INJECTIONS, ids=repr)
@pytest.mark.parametrize(("target", "line", "path"), IDENTIFIER_FIELDS, ids=lambda p: str(p))
def test_render_refused_when_an_identifier_field_gets_a_control_character(target, line, path, value):
    mapping = _mapping(target, line)

    with pytest.raises(MappingError) as caught:
        _render(mapping, value)

    assert caught.value.field == ".".join(("body", *path))
    assert "contract" in caught.value.reason


@pytest.mark.parametrize(("target", "line", "path"), IDENTIFIER_FIELDS, ids=lambda p: str(p))
def test_render_accepted_when_the_identifier_field_is_one_line(target, line, path):
    value = "https://app.example.test/deal/1" if path[-1] == "url" else "deal-98442@example.test"
    body = _render(_mapping(target, line), value).body
    for part in path:
        body = body[part]
    assert body == value


@pytest.mark.parametrize(("target", "line", "path"), TEXT_FIELDS, ids=lambda p: str(p))
def test_render_keeps_line_breaks_when_the_field_is_text(target, line, path):
    body = _render(_mapping(target, line), "Stage: won\r\nAmount: 1200").body
    for part in path:
        body = body[part]
    assert body == "Stage: won\r\nAmount: 1200"


@pytest.mark.parametrize("name", ['"ok\\n"', '"ok\\r\\nX-Injected: 1"'])
def test_mapping_refused_when_its_name_ends_a_line(name):
    text = f"name: {name}\nsource: hubspot\ntarget: matter\nbody:\n  {HEAD['matter']}"
    mapping, errors = check_text(text, "m.yaml")
    assert mapping is None
    assert [e.field for e in errors] == ["name"]


@pytest.mark.parametrize("key", ["tb-1\r\nX-Injected: 1", "tb-1\n", "tb-\x001"], ids=repr)
def test_job_refused_unsent_when_its_idempotency_key_holds_a_line_break(recorder, key):
    (outcome,) = CLIENTS["stora"]().send([job("stora", BODIES["stora"], key=key)])

    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "invalid_header_value"
    assert "Idempotency-Key" in str(outcome)
    assert recorder.calls == []


@pytest.mark.parametrize("target", TARGETS)
def test_jobs_wait_unsent_when_a_configured_credential_holds_a_line_break(recorder, target):
    client = {
        "stora": lambda: built(stora.StoraClient, token=lambda: "tok\r\nX-Injected: 1"),
        "hubspot": lambda: built(hubspot.HubspotClient, token=lambda: "tok\r\nX-Injected: 1"),
        "matter": lambda: built(matter.MatterClient, token=lambda: "tok\r\nX-Injected: 1"),
        "applied": lambda: built(
            applied.AppliedClient, token=lambda: "tok\r\nX-Injected: 1", shop_id=lambda: "shop-1"
        ),
    }[target]()

    (outcome,) = client.send([job(target, BODIES[target])])

    assert isinstance(outcome, RetryLaterError) and outcome.code == "target_misconfigured"
    assert "X-Injected" not in str(outcome)  # the value is never repeated
    assert recorder.calls == []


# --- enrichment reads: event data is a path segment, never a path ----------------------------------


class RecordingReads(RecordingSession):
    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        self.calls.append({"method": method, "url": url, **kwargs})
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"id": "1", "results": []}'
        response.url = url
        return response


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> RecordingReads:
    session = RecordingReads()
    monkeypatch.setattr(http, "session", lambda: session)
    monkeypatch.setenv("HUBSPOT_BASE_URL", BASE_URLS["hubspot"])
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "hubspot-token-1")
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN_SECRET_ID", raising=False)
    return session


def hubspot_crm() -> Any:
    """The HubSpot CRM client of an Enrichment on this test's environment."""
    from timeline_bridge.enrichment import Enrichment

    return Enrichment.of(Dependencies.from_environ()).sources.hubspot


@pytest.mark.parametrize("fetch", ["deal", "deal_contacts"])
@pytest.mark.parametrize("deal_id", ["..", ".", " .. ", ""])
def test_enrichment_read_refused_unsent_when_the_id_would_climb_the_path(reads, fetch, deal_id):
    from timeline_bridge.enrichment import hubspot

    with pytest.raises(PermanentDeliveryError) as caught:
        getattr(hubspot, fetch)(hubspot_crm(), {"id": deal_id})
    assert caught.value.code == "invalid_argument"
    assert reads.calls == []


def test_enrichment_read_stays_on_its_path_when_the_id_holds_url_syntax(reads):
    from timeline_bridge.enrichment import hubspot

    hubspot.deal(hubspot_crm(), {"id": "1/../../settings?x=1#y"})

    (call,) = reads.calls
    assert call["url"] == BASE_URLS["hubspot"] + "/crm/v3/objects/deals/1%2F..%2F..%2Fsettings%3Fx%3D1%23y"
    assert call["allow_redirects"] is False
    prepared = requests.Request("GET", call["url"]).prepare()
    assert urlsplit(prepared.url).path.startswith("/crm/v3/objects/deals/")
