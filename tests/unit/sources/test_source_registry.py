"""The source registry: every shipped source declares its spec, and a new source needs only its own.

The throwaway `echo` source below is registered in-process and taken through ingest and
`sign_event` without any other module naming it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import timeline_bridge
from timeline_bridge import config, ingest
from timeline_bridge.errors import SignatureError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources import (
    SOURCE_SPECS,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceEvent,
    SourceSpec,
    for_request,
    register_source,
    source_spec,
    unregister_source,
)
from timeline_bridge.sources.base import Clock, equal, fixed_secret, load_json, require_secrets, scalar
from timeline_bridge_tools.signing import sign_event

SHIPPED = ("hubspot", "slack", "pipedrive", "salesforce", "generic")

ECHO_SECRET_NAME = "ECHO_SIGNING_SECRET"
ECHO_SECRET = "echo-test-secret-4f1c9a"
ECHO_SIGNATURE = "X-Echo-Signature"


def _echo_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class EchoSource(Source):
    """A sender that signs hex(HMAC-SHA256(secret, body)) and posts one JSON event."""

    name = "echo"
    secret_name = ECHO_SECRET_NAME
    scope = "echo"

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        keys = require_secrets(secrets, ECHO_SECRET_NAME)
        given = request.header(ECHO_SIGNATURE) or ""
        if not any(equal(_echo_signature(k, request.body), given) for k in keys):
            raise SignatureError(f"{ECHO_SIGNATURE} does not match")

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        body = load_json(request.body, "echo body")
        return ParsedRequest(
            events=[
                SourceEvent(
                    event_type=str(body["type"]),
                    event_id=scalar(body.get("id")),
                    occurred_at=None,
                    event=body,
                    fingerprint=body,
                )
            ]
        )


ECHO = SourceSpec(
    name="echo",
    source=lambda _request, _settings: EchoSource(),
    identity="id",
    secret_names=fixed_secret(ECHO_SECRET_NAME),
    sign=lambda request: {ECHO_SIGNATURE: _echo_signature(request.secret, request.body)},
)


@pytest.fixture
def echo() -> Iterator[SourceSpec]:
    register_source(ECHO)
    try:
        yield ECHO
    finally:
        unregister_source(ECHO.name)


def _function_url_event(body: dict[str, object]) -> dict[str, object]:
    return {
        "version": "2.0",
        "rawPath": "/echo",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.us-east-1.on.aws"},
        "requestContext": {
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "http": {"method": "POST", "path": "/echo"},
            "requestId": "req-echo-1",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def test_every_shipped_source_declares_its_spec_under_its_own_name():
    assert tuple(SOURCE_SPECS)[: len(SHIPPED)] == SHIPPED
    for name in SHIPPED:
        spec = source_spec(name)
        assert spec.name == name
        assert spec.secret_names(None)
        assert spec.identity


def test_sources_lists_the_registry():
    assert tuple(SOURCE_SPECS) == timeline_bridge.SOURCES


def test_unknown_source_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown source 'nope'.*hubspot"):
        source_spec("nope")


def test_registering_a_taken_name_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_source(source_spec("slack"))
    with pytest.raises(ValueError, match="ships with the bridge"):
        unregister_source("slack")


def test_registered_source_is_listed_and_built_until_unregistered():
    register_source(ECHO)
    try:
        assert "echo" in timeline_bridge.SOURCES
        request = WebhookRequest.from_function_url_event(_function_url_event({}), max_body_bytes=1024)
        assert isinstance(for_request("echo", request, config.Settings.from_environ({})), EchoSource)
    finally:
        unregister_source("echo")
    assert "echo" not in SOURCE_SPECS
    assert "echo" not in timeline_bridge.SOURCES


def test_signing_recipe_is_the_spec_sign():
    signed = source_spec("slack").sign(SigningRequest(body=b"{}", secret="s", now=1_700_000_000))
    assert signed["X-Slack-Request-Timestamp"] == "1700000000"
    assert signed["X-Slack-Signature"].startswith("v0=")


def test_registered_source_is_enqueued_when_a_signed_request_goes_through_ingest(
    echo, aws, lambda_context, monkeypatch
):
    monkeypatch.setenv(ECHO_SECRET_NAME, ECHO_SECRET)
    event = sign_event("echo", _function_url_event({"id": "evt-1", "type": "ping"}), ECHO_SECRET)

    answer = ingest.handle(event, lambda_context, source="echo")

    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["accepted"] == 1
    [envelope] = aws.receive()
    assert (envelope["source"], envelope["event_type"], envelope["event_id"]) == ("echo", "ping", "evt-1")


def test_registered_source_answers_401_when_the_signature_is_wrong(echo, aws, lambda_context, monkeypatch):
    monkeypatch.setenv(ECHO_SECRET_NAME, ECHO_SECRET)
    event = sign_event("echo", _function_url_event({"id": "evt-2", "type": "ping"}), "another-secret")

    assert ingest.handle(event, lambda_context, source="echo")["statusCode"] == 401
    assert aws.count() == 0


def test_readme_lists_each_shipped_source_with_the_identity_its_spec_dedupes_on():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("## Sources\n", 1)[1].split("\n## ", 1)[0]
    rows = {
        cells[1].strip("`"): cells[2]
        for cells in ([c.strip() for c in line.split("|")] for line in section.splitlines())
        if len(cells) > 3 and cells[1].strip("`") in SHIPPED and cells[1].startswith("`")
    }
    assert rows == {name: SOURCE_SPECS.get(name).identity for name in SHIPPED}
