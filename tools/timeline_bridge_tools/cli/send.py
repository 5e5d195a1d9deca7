"""`bridge send SOURCE FILE [--url URL] [--name NAME]`: sign a sample as the real sender does and POST it.

FILE is a Function URL event from `events/<source>/` (the body inside is sent, with its content
type) or a raw body file. The signature uses the secret the bridge is configured with: the
environment (or `.env`), else the development secret `bridge dev` generated in `.bridge/`.
Without `--url`, the request goes to the running `bridge dev` (found through `.bridge/dev.json`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from timeline_bridge.sources import source_names, source_spec

# Headers of a sample event that describe the sender rather than the hop (kept when re-sending).
KEPT_HEADERS = ("content-type", "user-agent", "webhook-id")


def add_arguments(parser: argparse.ArgumentParser) -> None:
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


def secret_name(source: str, name: str | None = None) -> list[str]:
    """The variables that may hold `source`'s secret, most specific first."""
    return source_spec(source).secret_names(name)


def find_secret(source: str, name: str | None = None) -> str | None:
    """The secret to sign with: the environment's, else `bridge dev`'s development value."""
    from timeline_bridge.config import parse_secret_value

    from timeline_bridge_tools.local.state import load_secrets

    saved = load_secrets()
    for variable in secret_name(source, name):
        for value in (os.environ.get(variable), saved.get(variable)):
            values = parse_secret_value(value)
            if values:
                return values[0]
    return None


def load_sample(path: Path) -> tuple[bytes, dict[str, str], str | None]:
    """(body, sender headers, rawPath) of a sample file."""
    from timeline_bridge_tools import signing

    raw = path.read_bytes()
    try:
        parsed: Any = json.loads(raw)
    except ValueError:
        parsed = None
    if signing.is_function_url_event(parsed):
        headers = {str(k).lower(): str(v) for k, v in (parsed.get("headers") or {}).items()}
        kept = {k: headers[k] for k in KEPT_HEADERS if k in headers}
        return signing.body_bytes(parsed), kept, parsed.get("rawPath")
    return raw, {}, None


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
    from timeline_bridge.errors import IngestError

    from timeline_bridge_tools import signing
    from timeline_bridge_tools.local.state import read_state

    try:
        body, headers, raw_path = load_sample(args.file)
    except OSError as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    spec = source_spec(args.source)
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
        names = " or ".join(secret_name(args.source, name))
        print(f"no secret to sign with: set {names} (or run bridge dev once)", file=sys.stderr)
        return 2
    headers.setdefault("content-type", spec.sample_content_type(body))
    headers.setdefault("user-agent", "timeline-bridge-send")
    # Senders that sign the URL sign the one they call; behind a public URL the bridge checks that one.
    public = os.environ.get(spec.public_url_variable) if spec.public_url_variable else None
    options: dict[str, Any] = {"url": public or called_url(url)}
    if spec.endpoints is not None:
        options["name"] = name
    if spec.message_id_header:
        options["webhook_id"] = headers.pop(spec.message_id_header.lower(), None)
    headers.update(signing.sign_request(args.source, body, secret, **options))
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
