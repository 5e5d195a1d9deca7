"""The local Function URL emulator builds the payload-format-2.0 events Lambda builds."""

from __future__ import annotations

import base64

from timeline_bridge.http import WebhookRequest
from timeline_bridge_tools.local.function_url import (
    HttpRequest,
    build_event,
    is_text_content,
    to_http_response,
)


def request(body: bytes, content_type: str = "application/json", **extra: str) -> HttpRequest:
    headers = [("Host", "127.0.0.1:3000"), ("Content-Type", content_type), *extra.items()]
    return HttpRequest("POST", "/hubspot", "a=1&b=2", headers, body, "127.0.0.1")


def test_form_body_is_base64_encoded_when_content_type_is_not_text() -> None:
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"

    event = build_event(request(body, "application/x-www-form-urlencoded"))

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_json_body_is_passed_as_text_when_content_type_is_json() -> None:
    event = build_event(request(b'[{"eventId":1}]', "application/json; charset=utf-8"))

    assert event["isBase64Encoded"] is False
    assert event["body"] == '[{"eventId":1}]'


def test_body_is_base64_encoded_when_json_is_not_valid_utf8() -> None:
    event = build_event(request(b'{"name":"\xff"}'))

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b'{"name":"\xff"}'


def test_event_has_lowercased_headers_and_request_context_when_built() -> None:
    event = build_event(request(b"{}", **{"X-HubSpot-Signature-v3": "abc", "User-Agent": "HubSpot"}))

    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/hubspot" and event["rawQueryString"] == "a=1&b=2"
    assert event["headers"]["x-hubspot-signature-v3"] == "abc"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert event["queryStringParameters"] == {"a": "1", "b": "2"}
    http = event["requestContext"]["http"]
    assert (http["method"], http["path"], http["sourceIp"], http["userAgent"]) == (
        "POST",
        "/hubspot",
        "127.0.0.1",
        "HubSpot",
    )
    assert event["requestContext"]["requestId"] and event["requestContext"]["timeEpoch"] > 0


def test_core_rebuilds_the_called_url_when_parsing_the_emulated_event() -> None:
    parsed = WebhookRequest.from_function_url_event(build_event(request(b"{}")), max_body_bytes=1024)

    assert parsed.url == "http://127.0.0.1:3000/hubspot?a=1&b=2"


def test_domain_name_is_the_host_reached_when_the_client_names_another_in_x_forwarded_host() -> None:
    event = build_event(request(b"{}", **{"X-Forwarded-Host": "other-stack.example"}))
    parsed = WebhookRequest.from_function_url_event(event, max_body_bytes=1024)

    assert event["requestContext"]["domainName"] == "127.0.0.1:3000"
    assert event["headers"]["x-forwarded-host"] == "other-stack.example"  # passed through, as Lambda does
    assert parsed.url == "http://127.0.0.1:3000/hubspot?a=1&b=2"


def test_repeated_headers_are_joined_with_commas_when_built() -> None:
    event = build_event(request(b"{}", **{"X-Forwarded-For": "1.1.1.1"}))
    event2 = build_event(HttpRequest("POST", "/", "", [("X-Thing", "a"), ("x-thing", "b")], b"", "127.0.0.1"))

    assert event["headers"]["x-forwarded-for"] == "1.1.1.1"
    assert event2["headers"]["x-thing"] == "a,b"
    assert "body" not in event2


def test_text_content_types_are_recognised_when_deciding_on_base64() -> None:
    assert is_text_content("text/plain")
    assert is_text_content("application/vnd.api+json")
    assert not is_text_content("application/x-www-form-urlencoded")
    assert not is_text_content("application/octet-stream")
    assert not is_text_content("")


def test_handler_answer_becomes_the_http_answer_when_it_has_a_status_code() -> None:
    answer = to_http_response(
        {"statusCode": 401, "headers": {"Content-Type": "application/json"}, "body": '{"error":"x"}'}
    )

    assert answer.status == 401
    assert answer.body == b'{"error":"x"}'
    assert ("content-type", "application/json") in answer.headers


def test_plain_return_value_becomes_a_200_json_answer_when_there_is_no_status_code() -> None:
    answer = to_http_response({"challenge": "abc"})

    assert answer.status == 200
    assert answer.body == b'{"challenge": "abc"}'


def test_base64_answer_is_decoded_when_flagged() -> None:
    answer = to_http_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )

    assert answer.body == b"\x00\x01"
