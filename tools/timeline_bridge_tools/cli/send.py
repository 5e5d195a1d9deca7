"""`bridge send SOURCE FILE [--url URL] [--name NAME] [--print-event]`: sign a sample as the real
sender does and POST it, or print it as the signed Function URL event Lambda would hand the function.

FILE is a Function URL event from `events/<source>/` (the body inside is sent, with its content
type) or a raw body file. The signature uses the secret the bridge is configured with: the
environment (or `.env`), else the development secret `bridge dev` generated in `.bridge/`.
Without `--url`, the request goes to the running `bridge dev` (found through `.bridge/dev.json`).
With `--print-event`, nothing is posted: the event, signed now, is written to stdout for
`sam local invoke -e`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timeline_bridge.sources import source_names, source_spec

# Headers of a sample event that describe the sender rather than the hop (kept when re-sending).
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id")
# The Function URL a printed event claims to come through when neither the sample nor --url names one.
FUNCTION_URL_HOST = "abcdefghijklmnopqrstuvwxyz234567.lambda-url.eu-west-1.on.aws"

EXAMPLES = """examples:
  bridge send hubspot events/hubspot/deal-stage-change.json      to the running bridge dev
  bridge send generic invoice.json --name billing                a raw body, to /generic/billing
  bridge send hubspot events/hubspot/deal-stage-change.json --print-event > /tmp/event.json
  sam local invoke HubspotWebhookFunction -e /tmp/event.json --env-vars env.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", choices=source_names(), help="the sender to act as")
    parser.add_argument(
        "file", type=Path, help="events/<source>/*.json (a Function URL event) or a raw body file"
    )
    parser.add_argument("--url", help="where to POST (default: the running bridge dev's URL for SOURCE)")
    parser.add_argument(
        "--name",
        help="generic: the endpoint name of /generic/<name>, lowercase letters, digits and '-' "
        "(default: from the event)",
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the answer (15)")
    parser.add_argument(
        "--print-event",
        action="store_true",
        help="post nothing: write the signed Function URL event (signed now) to stdout, for "
        "`sam local invoke -e`; --url is then the Function URL it claims to reach (default: the sample's)",
    )


def secret_name(source: str, name: str | None = None) -> list[str]:
    """The variables that may hold `source`'s secret, most specific first."""
    return source_spec(source).secret_names(name)


def find_secret(source: str, name: str | None = None) -> str | None:
    """The secret to sign with: the environment's (a generic endpoint's own may sit in
    BRIDGE_GENERIC_SECRETS, as the bridge reads it), else `bridge dev`'s development value."""
    from timeline_bridge.config import GENERIC_SECRETS_NAME, generic_secret_values, parse_secret_value
    from timeline_bridge.errors import SecretNotConfiguredError

    from timeline_bridge_tools.local.state import load_secrets

    saved = load_secrets()
    for variable in secret_name(source, name):
        for value in (os.environ.get(variable), saved.get(variable)):
            values = parse_secret_value(value)
            if values:
                return values[0]
        if variable.startswith("GENERIC_") and variable != GENERIC_SECRETS_NAME:
            try:
                bundled = generic_secret_values(os.environ.get(GENERIC_SECRETS_NAME), variable)
            except SecretNotConfiguredError:
                bundled = []  # the bridge refuses that endpoint too (503): the answer says so
            if bundled:
                return bundled[0]
    return None


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample file, read once: a Function URL event's body, headers, path and URL, or a raw body."""

    body: bytes
    headers: dict[str, str]  # every header of the event, names lowercased; {} for a raw body
    raw_path: str | None
    event: dict[str, Any] | None  # the Function URL event itself; None for a raw body

    def sender_headers(self, keep: tuple[str, ...] = ()) -> dict[str, str]:
        """The headers a re-send keeps: KEPT_HEADERS and `keep` (a generic endpoint's event type
        or delivery id header)."""
        return {k: self.headers[k] for k in (*KEPT_HEADERS, *keep) if k in self.headers}

    def url(self) -> str | None:
        """The Function URL the event came through; None for a raw body."""
        from timeline_bridge_tools import signing

        return signing.event_url(self.event) if self.event is not None else None


def load_sample(path: Path) -> Sample:
    from timeline_bridge_tools import signing

    raw = path.read_bytes()
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = None
    if signing.is_function_url_event(parsed):
        headers = {str(k).lower(): str(v) for k, v in (parsed.get("headers") or {}).items()}
        return Sample(signing.body_bytes(parsed), headers, parsed.get("rawPath"), parsed)
    return Sample(raw, {}, None, None)


def called_url(url: str) -> str:
    """The URL a receiver rebuilds for a POST to `url`: the scheme, the `Host` header this client
    sends (lowercased, without a default port or credentials), the path and query as sent.

    `bridge dev`, like Lambda, rebuilds the URL HubSpot signed from the host the request reached,
    so this is the URL to sign."""
    from requests import Request
    from urllib3.util import parse_url

    sent = parse_url(Request("POST", url).prepare().url or url)
    default = {"http": 80, "https": 443}.get(sent.scheme or "")
    port = f":{sent.port}" if sent.port and sent.port != default else ""
    query = f"?{sent.query}" if sent.query else ""
    return f"{sent.scheme}://{sent.host}{port}{sent.path or '/'}{query}"


def run(args: argparse.Namespace) -> int:
    import requests
    from timeline_bridge.config import Settings
    from timeline_bridge.errors import IngestError

    from timeline_bridge_tools import signing
    from timeline_bridge_tools.local.state import read_state

    try:
        sample = load_sample(args.file)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    spec = source_spec(args.source)
    body, raw_path = sample.body, sample.raw_path
    name = None
    if spec.endpoints is not None:
        # The bridge serves one spelling of each endpoint name: say which, rather than post a 404.
        try:
            path = f"/{spec.name}/{args.name}" if args.name else raw_path or "/"
            name = spec.endpoints.from_path(path)
        except IngestError as exc:
            where = f"--name {args.name}" if args.name else f"{args.file} (rawPath {raw_path})"
            print(f"{where}: {exc}", file=sys.stderr)
            return 2
    try:
        # Read only for a sender whose headers or body depend on the endpoint's settings.
        settings = Settings.from_environ() if spec.sender_headers or spec.restamp else None
        # The sample's own id and type headers (a re-send keeps its delivery id: a duplicate).
        keep = spec.sender_headers(settings, name) if spec.sender_headers and settings else ()
        headers = sample.sender_headers(keep)
        # Linear's webhookTimestamp: now.
        body = signing.fresh_body(args.source, body, name=name, settings=settings)
    except IngestError as exc:  # the endpoint's settings name no scheme
        print(f"{args.source} {name or ''}: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "print_event", False):  # callers may build the namespace themselves
        return print_event(args, body, headers, name, sample.url())
    url = args.url
    state = read_state()
    if not url:
        if state is None:
            print("no bridge dev is running here: start it with `make dev`, or pass --url", file=sys.stderr)
            return 2
        url = state["url"].rstrip("/") + f"/{args.source}" + (f"/{name}" if name else "")
    if spec.local_sample and state is not None:
        # What the sample points back at (Slack's response_url) goes to bridge dev's sandboxes.
        sandboxes = {k: v["url"] for k, v in (state.get("sandboxes") or {}).items() if not v.get("real")}
        body = spec.local_sample(body, sandboxes)
    secret = find_secret(args.source, name)
    if not secret:
        print(no_secret_message(args.source, name), file=sys.stderr)
        return 2
    headers = signed_headers(args.source, body, headers, secret, called_url(url), name)
    # A credential carried in the URL (Salesforce's ?token=) is posted, never printed.
    posted = spec.signed_url(url, secret) if spec.signed_url else url
    try:
        answer = requests.post(posted, data=body, headers=headers, timeout=args.timeout)
    except requests.RequestException as exc:
        # The error names the URL it was given: with a token in it, only its kind is shown.
        print(f"POST {url} failed: {exc if posted == url else type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"{answer.status_code} {answer.reason}  POST {url}")
    if answer.text:
        print(answer.text)
    return 0 if 200 <= answer.status_code < 300 else 1


def no_secret_message(source: str, name: str | None) -> str:
    names = " or ".join(secret_name(source, name))
    return f"no secret to sign with: set {names} (or run bridge dev once)"


def signed_headers(
    source: str, body: bytes, headers: dict[str, str], secret: str, url: str, name: str | None
) -> dict[str, str]:
    """`headers` with the sender's defaults and signature for posting `body` to `url`."""
    from timeline_bridge_tools import signing

    spec = source_spec(source)
    headers = dict(headers)
    headers.setdefault("content-type", spec.sample_content_type(body))
    headers.setdefault("user-agent", "timeline-bridge-send")
    # Senders that sign the URL sign the one they call; behind a public URL the bridge checks that one.
    public = os.environ.get(spec.public_url_variable) if spec.public_url_variable else None
    options: dict[str, Any] = {"url": public or url}
    if spec.endpoints is not None:
        options["name"] = name
    if spec.message_id_header:
        options["webhook_id"] = headers.pop(spec.message_id_header.lower(), None)
    headers.update(signing.sign_request(source, body, secret, **options))
    return headers


def event_target(args: argparse.Namespace, name: str | None, sample_url: str | None) -> str:
    """The URL a printed event reaches: --url, else the sample's own Function URL, else a
    placeholder one; a named endpoint's path is /<source>/<name>."""
    from urllib.parse import urlsplit, urlunsplit

    url = args.url or sample_url or f"https://{FUNCTION_URL_HOST}/"
    parts = urlsplit(called_url(url))
    if name:
        parts = parts._replace(path=f"/{args.source}/{name}")
    return urlunsplit(parts)


def print_event(
    args: argparse.Namespace, body: bytes, headers: dict[str, str], name: str | None, sample_url: str | None
) -> int:
    """Write the Function URL event of this request, signed now, to stdout (`sam local invoke -e`)."""
    from urllib.parse import urlsplit

    from timeline_bridge_tools.local.function_url import HttpRequest, build_event

    secret = find_secret(args.source, name)
    if not secret:
        print(no_secret_message(args.source, name), file=sys.stderr)
        return 2
    spec = source_spec(args.source)
    url = event_target(args, name, sample_url)
    signed = signed_headers(args.source, body, headers, secret, url, name)
    if spec.signed_url:
        # The event is the request as Lambda receives it: a token in the URL is in the event too.
        url = spec.signed_url(url, secret)
        print("the event holds the URL's token: keep the file to yourself", file=sys.stderr)
    parts = urlsplit(url)
    request = HttpRequest(
        method="POST",
        path=parts.path or "/",
        query=parts.query,
        headers=[("host", parts.netloc), ("x-forwarded-proto", parts.scheme), *signed.items()],
        body=body,
        client_ip="127.0.0.1",
    )
    event = build_event(request, api_id=(parts.hostname or "local").split(".")[0])
    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0
