"""Settings and secrets: read once, lazily, from the environment (and Secrets Manager in AWS).

A secret `NAME` is read from env `NAME` if set, else from the Secrets Manager secret whose id is
in `NAME_SECRET_ID`. A value may hold a JSON list of strings: several active secrets during a
rotation. Values are cached for `SECRETS_MAX_AGE` seconds, so a rotation needs no deploy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from timeline_bridge.target_registry import is_target, target_spec

ONE_MIB = 1024 * 1024

# One outbound call (connect, send, the whole answer) ends within this many seconds, however slowly
# the provider answers. A deliverer stops sending DELIVERY_TIME_MARGIN_SECONDS (15 s) before its
# 60 s function timeout, so a call started just before that margin still ends in time; the route
# function (30 s) makes a few enrichment reads per event.
HTTP_DEADLINE_DEFAULT = 10.0
HTTP_DEADLINE_MIN, HTTP_DEADLINE_MAX = 0.1, 14.0
# The most of a provider's answer that is read (an answer is a few KiB; a bigger one is refused).
HTTP_MAX_ANSWER_BYTES_DEFAULT = ONE_MIB
HTTP_MAX_ANSWER_BYTES_MIN, HTTP_MAX_ANSWER_BYTES_MAX = 1024, 16 * ONE_MIB


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _env_bounded(name: str, default: float, low: float, high: float) -> float:
    """A number from env `name` within [low, high]; `default` when unset or not a finite number."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    if not math.isfinite(value):
        value = default
    return min(max(value, low), high)


@dataclass(frozen=True, slots=True)
class Settings:
    events_queue_url: str
    idempotency_table: str
    mappings_dir: Path
    max_body_bytes: int
    hubspot_webhook_url: str | None
    hubspot_signature_versions: tuple[str, ...]
    secrets_max_age: int
    # BRIDGE_HTTP_DEADLINE_SECONDS: total seconds for one outbound call (default 10, at most 14)
    http_deadline: float = HTTP_DEADLINE_DEFAULT
    # BRIDGE_HTTP_MAX_ANSWER_BYTES: the most of an answer read (default 1 MiB, at most 16 MiB)
    http_max_answer_bytes: int = HTTP_MAX_ANSWER_BYTES_DEFAULT
    # HUBSPOT_ACCOUNT_TIMEZONE: the HubSpot account's time zone (IANA name), where its DAILY
    # limit resets at midnight; UTC unless set
    hubspot_account_timezone: str = "UTC"
    # BRIDGE_TRACING=true: X-Ray tracing (opt-in: the SDK costs about 0.4 s of cold start)
    tracing: bool = False

    @staticmethod
    def from_env() -> Settings:
        versions = os.environ.get("HUBSPOT_SIGNATURE_VERSIONS", "v3")
        return Settings(
            events_queue_url=os.environ.get("EVENTS_QUEUE_URL", ""),
            idempotency_table=os.environ.get("IDEMPOTENCY_TABLE", ""),
            mappings_dir=Path(os.environ.get("BRIDGE_MAPPINGS_DIR", "mappings")),
            max_body_bytes=_env_int("MAX_BODY_BYTES", ONE_MIB),
            hubspot_webhook_url=os.environ.get("HUBSPOT_WEBHOOK_URL") or None,
            hubspot_signature_versions=tuple(v.strip().lower() for v in versions.split(",") if v.strip()),
            secrets_max_age=_env_int("SECRETS_MAX_AGE", 300),
            http_deadline=_env_bounded(
                "BRIDGE_HTTP_DEADLINE_SECONDS", HTTP_DEADLINE_DEFAULT, HTTP_DEADLINE_MIN, HTTP_DEADLINE_MAX
            ),
            http_max_answer_bytes=int(
                _env_bounded(
                    "BRIDGE_HTTP_MAX_ANSWER_BYTES",
                    HTTP_MAX_ANSWER_BYTES_DEFAULT,
                    HTTP_MAX_ANSWER_BYTES_MIN,
                    HTTP_MAX_ANSWER_BYTES_MAX,
                )
            ),
            hubspot_account_timezone=os.environ.get("HUBSPOT_ACCOUNT_TIMEZONE", "").strip() or "UTC",
            tracing=os.environ.get("BRIDGE_TRACING", "false").lower() == "true",
        )


@cache
def settings() -> Settings:
    """The process-wide settings; `settings.cache_clear()` after changing the environment."""
    return Settings.from_env()


def queue_url(target: str, *, dead_letter: bool = False) -> str:
    """URL of a target's delivery queue (`STORA_QUEUE_URL`) or its DLQ (`STORA_DLQ_URL`)."""
    if not is_target(target):
        raise ValueError(f"unknown target {target!r}")
    name = f"{target.upper()}_{'DLQ' if dead_letter else 'QUEUE'}_URL"
    url = os.environ.get(name, "")
    if not url:
        raise RuntimeError(f"{name} is not set")
    return url


def base_url(target: str) -> str:
    """Scheme and host of a target (or enrichment API): `<TARGET>_BASE_URL`, else the provider's."""
    return os.environ.get(f"{target.upper()}_BASE_URL", "").rstrip("/") or target_spec(target).base_url


# HubSpot's timeline APIs: `v3` (event templates and tokens; a known id replaces the event) and
# its successor `2026-03`, the app events API (event types and properties; occurrences are
# immutable). v3 is open only to app partners that already have v3 templates. Each mapping's body
# says which it writes (`eventTemplateId` or `eventTypeName`); the setting is the default for a
# body that names neither.
HUBSPOT_TIMELINE_APIS = ("v3", "2026-03")


def hubspot_timeline_api() -> str:
    """The default HubSpot timeline API (`HUBSPOT_TIMELINE_API`, v3 unless set): the one a body
    naming neither a template nor an app event type is checked against."""
    api = os.environ.get("HUBSPOT_TIMELINE_API", "").strip() or "v3"
    if api not in HUBSPOT_TIMELINE_APIS:
        supported = ", ".join(HUBSPOT_TIMELINE_APIS)
        raise ValueError(f"HUBSPOT_TIMELINE_API={api!r} is not supported (supported: {supported})")
    return api


def secret_values(name: str) -> list[str]:
    """Every active value of secret `name` (several during a rotation); [] when none is set."""
    raw = os.environ.get(name)
    if raw is None:
        secret_id = os.environ.get(f"{name}_SECRET_ID")
        if not secret_id:
            return []
        raw = _secrets_provider().get(secret_id, max_age=settings().secrets_max_age)
    return parse_secret_value(raw)


_provider: tuple[Any, Any] | None = None  # (boto3 client, Powertools SecretsProvider on it)


def _secrets_provider() -> Any:
    """Powertools' Secrets Manager provider (values cached for `max_age`) on the shared boto3
    client. `parameters.get_secret()` builds its provider on a new boto3 Session, which loads
    botocore's endpoint and model data again: about 200 ms of every cold start that reads a secret.
    A new client (`aws.reset_clients()`) gets a new provider, with an empty cache."""
    global _provider
    from timeline_bridge import aws

    client = aws.client("secretsmanager")
    if _provider is None or _provider[0] is not client:
        from aws_lambda_powertools.utilities import parameters  # lazy: only deployed functions pay

        _provider = (client, parameters.SecretsProvider(boto3_client=client))
    return _provider[1]


def secret(name: str) -> str | None:
    """The current (first) value of secret `name`, or None."""
    values = secret_values(name)
    return values[0] if values else None


def parse_secret_value(raw: str | bytes | None) -> list[str]:
    """A plain string, or a JSON list of strings (rotation). Blank entries are dropped."""
    if raw is None:
        return []
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(v).strip() for v in items if isinstance(v, str) and v.strip()]
    return [text] if text else []


def load_dotenv(path: str | Path = ".env") -> None:
    """Local runs: set variables from `.env` (KEY=VALUE lines) without overriding the environment."""
    p = Path(path)
    if not p.is_file():
        return
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))
