"""Generic senders on `/generic/<name>`: Standard Webhooks by default, else a sender's preset
(Stripe, GitHub, ...: `generic_presets`) or one plain HMAC header, as configured.

`<name>` comes from the request path (`/generic/<name>`; `/` or `/generic` mean `default`):
lowercase letters, digits and `-`, at most 64. Its settings are environment variables with
`<NAME>` = the name upper-cased, `-` turned into `_`. Spellings that read the same variables
(`ACME`, `Acme_EU` for `acme`, `acme-eu`) are refused with a 404 naming the one path served, so
an endpoint has one dedupe scope and one job-key scope, and a captured request cannot be replayed
at another spelling to pass dedupe again:

| variable | meaning | default |
|---|---|---|
| `GENERIC_<NAME>_PRESET` | a sender (`generic_presets.PRESETS`: stripe, github, ...): its whole scheme | (none) |
| `GENERIC_<NAME>_SCHEME` | `standard` (Standard Webhooks) or `hmac` | `standard` |
| `GENERIC_<NAME>_SECRET` | the secret(s), a JSON list during a rotation | `GENERIC_WEBHOOK_SECRET` |
| `GENERIC_<NAME>_SIGNATURE_HEADER` | hmac: header carrying the signature | `X-Signature` |
| `GENERIC_<NAME>_ENCODING` | hmac: `hex` or `base64` | `hex` |
| `GENERIC_<NAME>_PREFIX` | hmac: text before the signature, e.g. `sha256=` | (none) |
| `GENERIC_<NAME>_ID_HEADER` | hmac: header with the event id | sha256 of the body |
| `GENERIC_<NAME>_TYPE_FIELD` | dotted path of the event type in the body | `type` |
| `GENERIC_<NAME>_SIGNED_CONTENT` | preset: another signed-content template, e.g. `{body}{ts}` | the preset's |
| `GENERIC_<NAME>_TOLERANCE_SECONDS` | preset: another timestamp tolerance | the preset's |

A preset replaces SCHEME and the hmac settings (setting both is refused); a setting that cannot
mean anything (an unknown preset, a template without `{body}`) refuses every request (503).

Standard Webhooks: `webhook-id`, `webhook-timestamp` (seconds, ±300 s), `webhook-signature` (a
space-separated list of `v1,<base64>`; any match passes, other versions are skipped). The secret is
`whsec_` + base64 (the prefix is optional, missing padding tolerated) and the HMAC key is the
decoded bytes. Identity: `webhook-id`.

hmac: hex or base64 of HMAC-SHA256(secret as UTF-8, raw body), e.g. GitHub
(`X-Hub-Signature-256`, prefix `sha256=`) or Attio (`Attio-Signature`). No timestamp is signed, so
the scheme is replayable; dedupe (7 days) is its replay protection.

All three are data on one declarative scheme (`hmac_scheme.Scheme`), verified, signed and parsed
by the same code. The body is one JSON object: one source event (a preset may read a batch, as
Attio's `events`). Without a type it is acknowledged and dropped.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from timeline_bridge.config import Secrets, Settings, generic_prefix
from timeline_bridge.errors import NotFoundError, SecretNotConfiguredError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.keys import event_scope
from timeline_bridge.sources import hmac_scheme
from timeline_bridge.sources.base import (
    Clock,
    EndpointNames,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceSpec,
    require_secrets,
)
from timeline_bridge.sources.generic_presets import PRESETS
from timeline_bridge.sources.hmac_scheme import HEADER, Scheme, Timestamp

NAME = "generic"
SECRET_NAME = "GENERIC_WEBHOOK_SECRET"  # noqa: S105 - the variable name, not a value
DEFAULT_ENDPOINT = "default"

WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"

# What spells a name (the characters GENERIC_<NAME>_* variables can come from); only the
# canonical spelling of each is served.
_SPELLING = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PATH = re.compile(r"^/(?:generic(?:/(?P<name>[^/]*))?)?/?$")
NAME_RULE = "generic endpoint names are lowercase letters, digits and '-' (at most 64)"
SPELLING_RULE = "generic endpoint names are lowercase, with '-' for '_'"


def canonical_name(name: str) -> str | None:
    """The one spelling of the endpoint `name` stands for: lowercase, `-` for `_` (every spelling
    of it reads the same `GENERIC_<NAME>_*` settings). None when `name` spells no endpoint."""
    return name.lower().replace("_", "-") if _SPELLING.fullmatch(name) else None


def endpoint_name(raw_path: str) -> str:
    """`<name>` of `/generic/<name>`; NotFoundError for any other path, an invalid name, or
    another spelling of an endpoint's name (the message names the path to use)."""
    match = _PATH.match(raw_path or "/")
    if not match:
        raise NotFoundError("generic webhooks are posted to /generic/<name>")
    name = match.group("name") or DEFAULT_ENDPOINT
    canonical = canonical_name(name)
    if canonical is None:
        raise NotFoundError(NAME_RULE)
    if canonical != name:
        raise NotFoundError(f"use /generic/{canonical}: {SPELLING_RULE}")
    return name


def env_prefix(name: str) -> str:
    return generic_prefix(name)


@dataclass(frozen=True, slots=True)
class GenericConfig:
    """The settings of one generic endpoint (see the module doc)."""

    name: str = DEFAULT_ENDPOINT
    scheme: str = "standard"
    signature_header: str = "X-Signature"
    encoding: str = "hex"
    prefix: str = ""
    id_header: str | None = None
    type_field: str = "type"
    preset: str = ""  # a sender of generic_presets.PRESETS: its scheme replaces all of the above
    signed_content: str = ""  # preset: another signed-content template (Zendesk's older order)
    tolerance: float | None = None  # preset: another timestamp tolerance, in seconds

    @staticmethod
    def from_settings(settings: Settings, name: str) -> GenericConfig:
        """Endpoint `name` as the function's `settings` configure it (`GENERIC_<NAME>_*`)."""
        prefix = env_prefix(name)
        variables = settings.generic_endpoint(name)

        def get(key: str, default: str) -> str:
            return (variables.get(key) or "").strip() or default

        scheme = get("SCHEME", "standard").lower()
        encoding = get("ENCODING", "hex").lower()
        if scheme not in ("standard", "hmac") or encoding not in ("hex", "base64"):
            # A typo must not turn verification off or into something else: refuse everything.
            raise SecretNotConfiguredError(f"{prefix}SCHEME/{prefix}ENCODING has an unknown value")
        preset = get("PRESET", "").lower()
        if preset:
            return _preset_config(name, preset, variables, prefix)
        return GenericConfig(
            name=name,
            scheme=scheme,
            signature_header=get("SIGNATURE_HEADER", "X-Signature"),
            encoding=encoding,
            prefix=variables.get("PREFIX", ""),
            id_header=get("ID_HEADER", "") or None,
            type_field=get("TYPE_FIELD", "type"),
        )

    def secrets(self, secrets: Secrets) -> list[str]:
        """The endpoint's own secrets, else the shared ones; SecretNotConfiguredError when neither is set."""
        own, shared = secret_names(self.name)
        values = secrets.values(own) or secrets.values(shared)
        return require_secrets(values, f"{own} (or {shared})")


def _preset_config(name: str, preset: str, variables: Mapping[str, str], prefix: str) -> GenericConfig:
    """A preset endpoint's settings; SecretNotConfiguredError for anything it cannot mean."""
    if preset not in PRESETS:
        raise SecretNotConfiguredError(f"{prefix}PRESET names no preset (one of: {', '.join(PRESETS)})")
    if (variables.get("SCHEME") or "").strip():
        raise SecretNotConfiguredError(f"set {prefix}PRESET or {prefix}SCHEME, not both")
    content = (variables.get("SIGNED_CONTENT") or "").strip()
    if content and "{body}" not in content:
        raise SecretNotConfiguredError(f"{prefix}SIGNED_CONTENT must sign the body ({{body}})")
    tolerance = (variables.get("TOLERANCE_SECONDS") or "").strip()
    try:
        seconds = float(tolerance) if tolerance else None
    except ValueError:
        seconds = -1.0
    if seconds is not None and not 0 < seconds < math.inf:
        raise SecretNotConfiguredError(f"{prefix}TOLERANCE_SECONDS must be a positive number of seconds")
    return GenericConfig(name=name, preset=preset, signed_content=content, tolerance=seconds)


# --- the schemes -------------------------------------------------------------------------------

# Standard Webhooks: base64 HMAC-SHA256 of "{id}.{ts}.{body}", keyed with the base64 after `whsec_`.
STANDARD = Scheme(
    header=WEBHOOK_SIGNATURE,
    key="base64",
    key_prefix="whsec_",
    content="{id}.{ts}.{body}",
    encoding="base64",
    items=" ",
    pair=",",
    signature_key="v1",
    timestamp=Timestamp("header", WEBHOOK_TIMESTAMP, "s"),
    event_id=(HEADER + WEBHOOK_ID,),
    occurred_at=("timestamp", HEADER + WEBHOOK_TIMESTAMP),
    occurred_required=True,  # Standard Webhooks payloads always carry `timestamp`
)


def verifier(settings: GenericConfig) -> Scheme:
    """The scheme an endpoint's settings describe."""
    if settings.preset:
        scheme = PRESETS[settings.preset]
        if settings.signed_content:
            scheme = dataclasses.replace(scheme, content=settings.signed_content)
        if settings.tolerance is not None and scheme.timestamp is not None:
            stamp = dataclasses.replace(scheme.timestamp, tolerance=settings.tolerance)
            scheme = dataclasses.replace(scheme, timestamp=stamp)
        return scheme
    if settings.scheme == "hmac":
        return Scheme(
            header=settings.signature_header,
            encoding=settings.encoding,
            prefix=settings.prefix,
            event_id=(HEADER + settings.id_header,) if settings.id_header else (),
            event_type=(settings.type_field,),
            # Plain HMAC senders document no time field: a bad one is only informative (null).
            occurred_at=("timestamp", HEADER + WEBHOOK_TIMESTAMP),
        )
    return dataclasses.replace(STANDARD, event_type=(settings.type_field,))


def standard_signature(secret: str, msg_id: str, timestamp: str | int, body: bytes) -> str:
    """`v1,` + base64(HMAC-SHA256(key, msg_id + "." + timestamp + "." + body))."""
    return "v1," + hmac_scheme.signature(STANDARD, secret, body, stamp=str(timestamp), msg_id=msg_id)


def verify_standard(request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
    """Raise SignatureError unless one `v1` signature matches one of `secrets` within ±300 s."""
    hmac_scheme.verify(STANDARD, request, secrets, now=now)


def hmac_signature(secret: str, body: bytes, *, encoding: str = "hex", prefix: str = "") -> str:
    """`prefix` + hex or base64 of HMAC-SHA256(secret as UTF-8, body)."""
    return prefix + hmac_scheme.signature(Scheme(header="", encoding=encoding), secret, body)


def verify_hmac(
    request: WebhookRequest, secrets: Sequence[str], settings: GenericConfig, *, now: Clock = time.time
) -> None:
    """Raise SignatureError unless the configured header holds HMAC-SHA256(secret, body)."""
    hmac_scheme.verify(verifier(settings), request, secrets, now=now)


def parse(request: WebhookRequest, settings: GenericConfig | None = None) -> ParsedRequest:
    """The request's source events, typed and identified as its endpoint's scheme says."""
    return hmac_scheme.parse(verifier(settings or GenericConfig()), request)


class GenericSource(Source):
    name = NAME
    secret_name = SECRET_NAME

    def __init__(self, settings: GenericConfig | None = None) -> None:
        self.settings = settings or GenericConfig()
        self.scheme = verifier(self.settings)
        self.dedupe_seconds = self.scheme.dedupe_seconds
        self.endpoint_name = self.settings.name
        self.scope = event_scope(NAME, self.settings.name)

    @classmethod
    def for_request(cls, request: WebhookRequest, settings: Settings) -> GenericSource:
        return cls(GenericConfig.from_settings(settings, endpoint_name(request.raw_path)))

    def secrets(self, secrets: Secrets) -> list[str]:
        return self.settings.secrets(secrets)

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        hmac_scheme.verify(self.scheme, request, secrets, now=now)

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        return hmac_scheme.parse(self.scheme, request)


def sign(request: SigningRequest) -> dict[str, str]:
    """The headers the endpoint's sender adds (per its settings): Standard Webhooks (`webhook-id`
    defaults to a fresh `msg_...`), or the configured HMAC header (and id header, when one is
    configured)."""
    settings = _endpoint_config(request.settings, request.name)
    scheme = verifier(settings)
    # A preset's sample carries its sender's own delivery id (kept by `bridge send`).
    fresh = f"msg_{uuid.uuid4().hex}" if scheme.id_header and not settings.preset else None
    msg_id = request.message_id or fresh
    return hmac_scheme.sign(
        scheme, request.secret, request.body, now=request.now, msg_id=msg_id, url=request.url or ""
    )


def _endpoint_config(settings: Settings | None, name: str | None) -> GenericConfig:
    """Endpoint `name` (the default one when None) as `settings` configure it; defaults without them."""
    name = name or DEFAULT_ENDPOINT
    return GenericConfig.from_settings(settings, name) if settings else GenericConfig(name=name)


def _endpoint_scheme(settings: Settings | None, name: str | None) -> Scheme:
    return verifier(_endpoint_config(settings, name))


def sender_headers(settings: Settings, name: str | None) -> tuple[str, ...]:
    """The headers the endpoint's scheme reads an event's id, type or time from."""
    scheme = _endpoint_scheme(settings, name)
    paths = [
        part
        for path in (*scheme.event_id, *scheme.event_type, *scheme.occurred_at)
        for part in path.split("+")
    ]
    return tuple(sorted({p[len(HEADER) :].lower() for p in paths if p.startswith(HEADER)}))


def restamp(request: SigningRequest) -> bytes:
    """The body with the time it is sent at, for a scheme that signs a body field (Linear)."""
    return hmac_scheme.restamp(_endpoint_scheme(request.settings, request.name), request.body, request.now)


def secret_names(name: str | None) -> list[str]:
    """The endpoint's own secret variable, then the shared one."""
    return [f"{env_prefix(name or DEFAULT_ENDPOINT)}SECRET", SECRET_NAME]


SPEC = SourceSpec(
    name=NAME,
    source=GenericSource.for_request,
    identity=(
        "webhook-id (Standard Webhooks); the sender's event id (a preset, e.g. Stripe's id, "
        "X-GitHub-Delivery); the configured id header, else sha256 of the body (hmac)"
    ),
    secret_names=secret_names,
    sign=sign,
    endpoints=EndpointNames(
        default=DEFAULT_ENDPOINT,
        from_path=endpoint_name,
        canonical=canonical_name,
        name_rule=NAME_RULE,
        spelling_rule=SPELLING_RULE,
    ),
    message_id_header=WEBHOOK_ID,
    sender_headers=sender_headers,
    restamp=restamp,
    sample_path=f"/{NAME}/sample",
    local_variable_prefix="GENERIC_",
)
