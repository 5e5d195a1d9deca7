"""Settings and secrets: parsed once per cold start from the environment (and Secrets Manager).

This is the only module of the core that reads the environment. `Settings.from_environ()` parses
every knob of one function from its environment (a Lambda function's, or the variables the local
runtime gives one function), a bad value failing it naming the variable; the stages receive the
result (`timeline_bridge.wiring`) and pass it to what they build.

A secret `NAME` is read from the settings' variable `NAME` if set, else from the Secrets Manager
secret whose id is in `NAME_SECRET_ID` (`Secrets`). A value may hold a JSON list of strings:
several active secrets during a rotation. Values are cached for `SECRETS_MAX_AGE` seconds, so a
rotation needs no deploy.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from timeline_bridge.target_registry import is_target, target_names, target_spec

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

# Slack gives a request 3 s in all; the app behind the bridge gets the most of it that still
# leaves ingest time to answer.
SLACK_FORWARD_DEADLINE_DEFAULT = 2.0
SLACK_FORWARD_DEADLINE_MIN, SLACK_FORWARD_DEADLINE_MAX = 0.1, 2.5
SLACK_HOOKS_BASE_URL = "https://hooks.slack.com"


Environ = Mapping[str, str]


def _env_int(env: Environ, name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None


def _env_str(env: Environ, name: str) -> str:
    """Variable `name`, stripped; "" when unset."""
    return env.get(name, "").strip()


def _env_number(env: Environ, name: str) -> float | None:
    """A number from variable `name`; None when unset or not a number (the caller's default applies)."""
    raw = env.get(name, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _forward_url(env: Environ, name: str) -> str:
    """A URL the bridge passes requests on to: HTTPS, or HTTP to a loopback host (a local app)."""
    raw = _env_str(env, name)
    if not raw:
        return ""
    from timeline_bridge.targets.http import InsecureTargetError, check_base_url  # only when set

    try:
        check_base_url(raw, allow_http=False)
    except InsecureTargetError:
        raise ValueError(f"{name} must be an https:// URL (http:// only to a loopback host)") from None
    return raw


def _env_finite(env: Environ, name: str, default: float) -> float:
    """A finite number from variable `name`; `default` when unset or not a finite number."""
    value = _env_number(env, name)
    return value if value is not None and math.isfinite(value) else default


def _env_bounded(env: Environ, name: str, default: float, low: float, high: float) -> float:
    """A number from variable `name` within [low, high]; `default` when unset or not a finite number."""
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = default
    if not math.isfinite(value):
        value = default
    return min(max(value, low), high)


_ORGANIZATION_ID = re.compile(r"00D[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?")


def _organization_ids(env: Environ, name: str) -> tuple[str, ...]:
    """Salesforce org ids (`00D` + 12 or 15 characters) separated by commas or spaces; a value
    that is none fails the cold start naming it, rather than refusing every message."""
    ids = tuple(part for part in re.split(r"[\s,]+", _env_str(env, name)) if part)
    bad = [part for part in ids if not _ORGANIZATION_ID.fullmatch(part)]
    if bad:
        raise ValueError(
            f"{name}: {bad[0]!r} is not a Salesforce organization id (00D + 12 or 15 characters)"
        )
    return ids


# Delivered records expire no sooner: senders retry for up to 3 days; plus the DLQ redrive window.
MIN_RECORD_TTL = 7 * 86_400


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """How long and how often a delivery job is retried. Every knob is an environment variable."""

    max_attempts: int = 16  # DELIVERY_MAX_ATTEMPTS: counted failures before retries_exhausted
    max_throttled: int = 200  # DELIVERY_MAX_THROTTLED: 429s before retries_exhausted
    backoff_base: float = 5.0  # DELIVERY_BACKOFF_BASE_SECONDS
    backoff_cap: float = 900.0  # DELIVERY_BACKOFF_CAP_SECONDS
    max_delay: float = 86_400.0  # DELIVERY_MAX_DELAY_SECONDS: longest provider-requested wait honoured
    throttle_pause: float = 10.0  # DELIVERY_THROTTLE_PAUSE_SECONDS: a 429 that names no delay
    credentials_pause: float = 60.0  # DELIVERY_CREDENTIALS_PAUSE_SECONDS: after a rejected credential
    time_margin: float = 15.0  # DELIVERY_TIME_MARGIN_SECONDS: stop sending this close to the timeout
    max_pace_sleep: float = 2.0  # DELIVERY_MAX_PACE_SLEEP_SECONDS: longer pacing waits re-enqueue
    busy_recheck: float = 10.0  # DELIVERY_BUSY_RECHECK_SECONDS: look again at a job another worker holds
    record_ttl: int = 14 * 86_400  # DELIVERY_RECORD_TTL_SECONDS: delivered-record expiry (>= 7 days)

    @staticmethod
    def from_environ(env: Environ) -> RetrySettings:
        """The policy from `env`; a value that is not a finite number keeps the default."""
        d = RetrySettings()

        def number(name: str, default: float) -> float:
            return max(0.0, _env_finite(env, name, default))

        return RetrySettings(
            max_attempts=max(1, int(_env_finite(env, "DELIVERY_MAX_ATTEMPTS", d.max_attempts))),
            max_throttled=max(1, int(_env_finite(env, "DELIVERY_MAX_THROTTLED", d.max_throttled))),
            backoff_base=number("DELIVERY_BACKOFF_BASE_SECONDS", d.backoff_base),
            backoff_cap=number("DELIVERY_BACKOFF_CAP_SECONDS", d.backoff_cap),
            max_delay=number("DELIVERY_MAX_DELAY_SECONDS", d.max_delay),
            throttle_pause=number("DELIVERY_THROTTLE_PAUSE_SECONDS", d.throttle_pause),
            credentials_pause=number("DELIVERY_CREDENTIALS_PAUSE_SECONDS", d.credentials_pause),
            time_margin=number("DELIVERY_TIME_MARGIN_SECONDS", d.time_margin),
            max_pace_sleep=number("DELIVERY_MAX_PACE_SLEEP_SECONDS", d.max_pace_sleep),
            busy_recheck=number("DELIVERY_BUSY_RECHECK_SECONDS", d.busy_recheck),
            record_ttl=max(
                MIN_RECORD_TTL, int(_env_finite(env, "DELIVERY_RECORD_TTL_SECONDS", d.record_ttl))
            ),
        )


RateLimits = tuple[tuple[int, float], ...]  # (requests, window seconds), all enforced at once


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """What the delivery workers pace themselves under, besides each target's documented limits."""

    # <TARGET>_RATE_LIMITS ("count/seconds,..."): replaces the documented limits of that target
    rate_limits: Mapping[str, RateLimits] = field(default_factory=lambda: MappingProxyType({}))
    # <TARGET>_MAX_REQUESTS_PER_SECOND / _PER_MINUTE: replaces one window ({window seconds: count})
    max_requests: Mapping[str, Mapping[float, int]] = field(default_factory=lambda: MappingProxyType({}))
    time_scale: float = 1.0  # DELIVERY_RATE_TIME_SCALE: windows are scaled by it (sandbox runs)
    fraction: float = 0.8  # DELIVERY_PACE_FRACTION: the share of each limit used
    workers: int = 1  # DELIVER_MAX_CONCURRENCY: the workers sharing a provider's limit

    @staticmethod
    def from_environ(env: Environ) -> PacingSettings:
        """A malformed `<TARGET>_RATE_LIMITS` is logged and ignored (the documented limits apply)."""
        limits: dict[str, RateLimits] = {}
        max_requests: dict[str, Mapping[float, int]] = {}
        for target in target_names():
            prefix = target.upper()
            spec = _env_str(env, f"{prefix}_RATE_LIMITS")
            if spec:
                try:
                    parsed: dict[float, int] = {}
                    for part in spec.split(","):
                        count_text, _, seconds = part.strip().partition("/")
                        parsed[float(seconds or 1)] = int(count_text)
                    limits[target] = tuple((count, window) for window, count in parsed.items())
                except ValueError:
                    from timeline_bridge.observability import logger

                    logger.warning(
                        "ignoring malformed rate limits", extra={"variable": f"{prefix}_RATE_LIMITS"}
                    )
            windows = {
                window: int(_env_finite(env, f"{prefix}_MAX_REQUESTS_PER_{name}", 0))
                for window, name in ((1.0, "SECOND"), (60.0, "MINUTE"))
            }
            windows = {window: count for window, count in windows.items() if count > 0}
            if windows:
                max_requests[target] = MappingProxyType(windows)
        return PacingSettings(
            rate_limits=MappingProxyType(limits),
            max_requests=MappingProxyType(max_requests),
            time_scale=max(_env_finite(env, "DELIVERY_RATE_TIME_SCALE", 1.0), 1e-6),
            fraction=min(max(_env_finite(env, "DELIVERY_PACE_FRACTION", 0.8), 0.01), 1.0),
            workers=max(1, int(_env_finite(env, "DELIVER_MAX_CONCURRENCY", 1))),
        )


def generic_prefix(name: str) -> str:
    """The prefix of a generic endpoint's variables: `GENERIC_<NAME>_` (`-` becomes `_`)."""
    return f"GENERIC_{name.upper().replace('-', '_')}_"


# Generic endpoints are configured without a variable per setting in the template: the
# GenericEndpointSettings parameter becomes BRIDGE_GENERIC_SETTINGS (non-secret settings,
# `GENERIC_<NAME>_<KEY>=VALUE` pairs separated by commas), and the GenericEndpointSecrets secret,
# BRIDGE_GENERIC_SECRETS, holds each endpoint's own secret as a JSON object
# (`{"GENERIC_STRIPE_SECRET": ["whsec_..."]}`).
GENERIC_SETTINGS_VARIABLE = "BRIDGE_GENERIC_SETTINGS"
GENERIC_SECRETS_NAME = "BRIDGE_GENERIC_SECRETS"
_GENERIC_VARIABLE = re.compile(r"GENERIC_[A-Z0-9_]+")


def _generic_variables(env: Environ) -> Mapping[str, str]:
    """Every `GENERIC_<NAME>_<KEY>` setting: BRIDGE_GENERIC_SETTINGS's pairs, then the function's own
    `GENERIC_*` variables (set on the function, they win). A malformed pair or a secret among them
    fails the cold start naming the entry (never its value: it may be a misplaced secret)."""
    found: dict[str, str] = {}
    for number, entry in enumerate(env.get(GENERIC_SETTINGS_VARIABLE, "").split(","), start=1):
        if not entry.strip():
            continue
        key, equals, value = entry.partition("=")
        key = key.strip()
        if not equals or not _GENERIC_VARIABLE.fullmatch(key):
            raise ValueError(f"{GENERIC_SETTINGS_VARIABLE}: entry {number} is not GENERIC_<NAME>_<KEY>=VALUE")
        if key.endswith("_SECRET"):
            raise ValueError(
                f"{GENERIC_SETTINGS_VARIABLE}: {key} is a secret: put it in {GENERIC_SECRETS_NAME} "
                "(the GenericEndpointSecrets secret), which is not shown in the stack's parameters"
            )
        found[key] = value.strip()
    found.update({k: v for k, v in env.items() if k.startswith("GENERIC_")})
    return MappingProxyType(found)


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
    # HUBSPOT_TIMELINE_API: as set (v3 unless set); `hubspot_api()` checks it where used
    hubspot_timeline_api: str = "v3"
    # TARGET: the target a delivery function delivers to ("" outside the delivery functions)
    target: str = ""
    # IDENTITY_TABLE: the DynamoDB identity map ("" where none is configured)
    identity_table: str = ""
    # EVENTS_ARCHIVE_BUCKET: the S3 bucket the route stage archives events in ("" = no archive)
    archive_bucket: str = ""
    # SLACK_API_BASE_URL: the Slack Web API host ("" for Slack's own)
    slack_api_base_url: str = ""
    # SLACK_FORWARD_URL: the app every verified Slack request is passed on to ("" = none); HTTPS,
    # or HTTP to loopback (checked here: a bad value fails the cold start)
    slack_forward_url: str = ""
    # SLACK_FORWARD_DEADLINE_SECONDS: how long ingest waits for that app's answer (default 2, at
    # most 2.5: Slack gives the whole request 3 s)
    slack_forward_deadline: float = SLACK_FORWARD_DEADLINE_DEFAULT
    # SLACK_HOOKS_BASE_URL: where a click's `response_url` must point for a reply to be posted
    # (Slack's hooks host unless set; the Slack sandbox locally)
    slack_hooks_base_url: str = SLACK_HOOKS_BASE_URL
    # MATTER_VERSION: the Matter-Version header ("" for the client's default)
    matter_version: str = ""
    # APPLIED_SHOP_ID: the Applied Labs shop (X-Shop-Id); checked by the client, not here
    applied_shop_id: str | None = None
    # BRIDGE_HTTP_CONNECT_TIMEOUT / BRIDGE_HTTP_READ_TIMEOUT: seconds (None: the transport's caps)
    http_connect_timeout: float | None = None
    http_read_timeout: float | None = None
    # BRIDGE_ALLOW_HTTP_TARGETS=true: plain HTTP to a host that is not loopback is allowed
    allow_http_targets: bool = False
    retry: RetrySettings = field(default_factory=RetrySettings)
    pacing: PacingSettings = field(default_factory=PacingSettings)
    # SALESFORCE_ORGANIZATION_IDS: the orgs whose Outbound Messages are accepted (15 or 18
    # characters each, separated by commas or spaces); none: every message is refused
    salesforce_organization_ids: tuple[str, ...] = ()
    # GENERIC_<NAME>_<KEY>: every generic endpoint's variables, as set at cold start (the function's
    # own GENERIC_* variables over BRIDGE_GENERIC_SETTINGS's pairs)
    generic_variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def generic_endpoint(self, name: str) -> Mapping[str, str]:
        """The variables of generic endpoint `name` (`GENERIC_<NAME>_<KEY>`), keyed by `<KEY>`."""
        prefix = generic_prefix(name)
        return {k[len(prefix) :]: v for k, v in self.generic_variables.items() if k.startswith(prefix)}

    # The variables these settings were parsed from: the knobs named after a target, a queue or
    # a secret (`<TARGET>_QUEUE_URL`, `<SERVICE>_BASE_URL`, `NAME` / `NAME_SECRET_ID`) are looked
    # up in it. Kept out of repr: it can hold a secret set as a plain variable.
    environ: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False
    )

    @staticmethod
    def from_environ(environ: Environ | None = None) -> Settings:
        """Every knob of one function, from `environ` (default: this process's environment)."""
        env: Environ = MappingProxyType(dict(os.environ if environ is None else environ))
        versions = env.get("HUBSPOT_SIGNATURE_VERSIONS", "v3")
        return Settings(
            events_queue_url=env.get("EVENTS_QUEUE_URL", ""),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
            mappings_dir=Path(env.get("BRIDGE_MAPPINGS_DIR", "mappings")),
            max_body_bytes=_env_int(env, "MAX_BODY_BYTES", ONE_MIB),
            hubspot_webhook_url=env.get("HUBSPOT_WEBHOOK_URL") or None,
            hubspot_signature_versions=tuple(v.strip().lower() for v in versions.split(",") if v.strip()),
            secrets_max_age=_env_int(env, "SECRETS_MAX_AGE", 300),
            http_deadline=_env_bounded(
                env,
                "BRIDGE_HTTP_DEADLINE_SECONDS",
                HTTP_DEADLINE_DEFAULT,
                HTTP_DEADLINE_MIN,
                HTTP_DEADLINE_MAX,
            ),
            http_max_answer_bytes=int(
                _env_bounded(
                    env,
                    "BRIDGE_HTTP_MAX_ANSWER_BYTES",
                    HTTP_MAX_ANSWER_BYTES_DEFAULT,
                    HTTP_MAX_ANSWER_BYTES_MIN,
                    HTTP_MAX_ANSWER_BYTES_MAX,
                )
            ),
            hubspot_account_timezone=_env_str(env, "HUBSPOT_ACCOUNT_TIMEZONE") or "UTC",
            hubspot_timeline_api=_env_str(env, "HUBSPOT_TIMELINE_API") or "v3",
            target=_env_str(env, "TARGET").lower(),
            identity_table=_env_str(env, "IDENTITY_TABLE"),
            archive_bucket=_env_str(env, "EVENTS_ARCHIVE_BUCKET"),
            slack_api_base_url=_env_str(env, "SLACK_API_BASE_URL").rstrip("/"),
            slack_forward_url=_forward_url(env, "SLACK_FORWARD_URL"),
            slack_forward_deadline=_env_bounded(
                env,
                "SLACK_FORWARD_DEADLINE_SECONDS",
                SLACK_FORWARD_DEADLINE_DEFAULT,
                SLACK_FORWARD_DEADLINE_MIN,
                SLACK_FORWARD_DEADLINE_MAX,
            ),
            slack_hooks_base_url=_env_str(env, "SLACK_HOOKS_BASE_URL").rstrip("/") or SLACK_HOOKS_BASE_URL,
            matter_version=_env_str(env, "MATTER_VERSION"),
            applied_shop_id=_env_str(env, "APPLIED_SHOP_ID") or None,
            http_connect_timeout=_env_number(env, "BRIDGE_HTTP_CONNECT_TIMEOUT"),
            http_read_timeout=_env_number(env, "BRIDGE_HTTP_READ_TIMEOUT"),
            allow_http_targets=_env_str(env, "BRIDGE_ALLOW_HTTP_TARGETS").lower() == "true",
            retry=RetrySettings.from_environ(env),
            pacing=PacingSettings.from_environ(env),
            salesforce_organization_ids=_organization_ids(env, "SALESFORCE_ORGANIZATION_IDS"),
            generic_variables=_generic_variables(env),
            environ=env,
        )

    def queue_url(self, target: str, *, dead_letter: bool = False) -> str:
        """URL of a target's delivery queue (`STORA_QUEUE_URL`) or its DLQ (`STORA_DLQ_URL`)."""
        if not is_target(target):
            raise ValueError(f"unknown target {target!r}")
        name = f"{target.upper()}_{'DLQ' if dead_letter else 'QUEUE'}_URL"
        url = self.environ.get(name, "")
        if not url:
            raise RuntimeError(f"{name} is not set")
        return url

    def base_url_override(self, service: str) -> str | None:
        """`<SERVICE>_BASE_URL` when set (an operator's host for a target or enrichment API), else None."""
        return self.environ.get(f"{service.upper()}_BASE_URL", "").strip().rstrip("/") or None

    def base_url(self, target: str) -> str:
        """Scheme and host of a target: `<TARGET>_BASE_URL`, else the provider's."""
        return self.base_url_override(target) or target_spec(target).base_url

    def hubspot_api(self) -> str:
        """The default HubSpot timeline API (`HUBSPOT_TIMELINE_API`, v3 unless set): the one a body
        naming neither a template nor an app event type is checked against."""
        api = self.hubspot_timeline_api
        if api not in HUBSPOT_TIMELINE_APIS:
            supported = ", ".join(HUBSPOT_TIMELINE_APIS)
            raise ValueError(f"HUBSPOT_TIMELINE_API={api!r} is not supported (supported: {supported})")
        return api


# HubSpot's timeline APIs: `v3` (event templates and tokens; a known id replaces the event) and
# its successor `2026-03`, the app events API (event types and properties; occurrences are
# immutable). v3 is open only to app partners that already have v3 templates. Each mapping's body
# says which it writes (`eventTemplateId` or `eventTypeName`); the setting is the default for a
# body that names neither.
HUBSPOT_TIMELINE_APIS = ("v3", "2026-03")


def service_name() -> str:
    """The Powertools service name (`POWERTOOLS_SERVICE_NAME`, timeline-bridge unless set)."""
    return os.environ.get("POWERTOOLS_SERVICE_NAME", "timeline-bridge")


def metrics_namespace() -> str:
    """The CloudWatch metrics namespace (`POWERTOOLS_METRICS_NAMESPACE`, TimelineBridge unless set)."""
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TimelineBridge")


def tracing_enabled() -> bool:
    """`BRIDGE_TRACING=true`: X-Ray is a process's concern (one daemon per Lambda sandbox)."""
    return os.environ.get("BRIDGE_TRACING", "false").lower() == "true"


class Secrets:
    """The secrets of one function: `NAME` from its settings' variables when set, else the Secrets
    Manager secret whose id is in `NAME_SECRET_ID`, read through Powertools' provider (each value
    cached for `SECRETS_MAX_AGE` seconds, so a rotation needs no deploy).

    The provider is built on the function's own boto3 client at the first read: Powertools'
    `get_secret()` would build one on a new boto3 Session, loading botocore's endpoint and model
    data again (about 200 ms of every cold start that reads a secret)."""

    def __init__(self, settings: Settings, client: Callable[[], Any]) -> None:
        self.settings = settings
        self._client = client  # the Secrets Manager client, built when first needed
        self._provider: Any = None
        self._lock = threading.Lock()

    def values(self, name: str) -> list[str]:
        """Every active value of secret `name` (several during a rotation); [] when none is set.
        A generic endpoint's secret (`GENERIC_<NAME>_SECRET`) set neither way is looked up in
        BRIDGE_GENERIC_SECRETS, the JSON object of every endpoint's own secret."""
        raw = self._raw(name)
        if raw is None and name.startswith("GENERIC_") and name != GENERIC_SECRETS_NAME:
            return generic_secret_values(self._raw(GENERIC_SECRETS_NAME), name)
        return parse_secret_value(raw)

    def _raw(self, name: str) -> str | None:
        """Secret `name` as stored: its variable, else its Secrets Manager secret; None if neither is set."""
        environ = self.settings.environ
        raw = environ.get(name)
        if raw is None:
            secret_id = environ.get(f"{name}_SECRET_ID")
            if not secret_id:
                return None
            raw = self._secrets_provider().get(secret_id, max_age=self.settings.secrets_max_age)
        return raw.decode() if isinstance(raw, bytes) else raw

    def get(self, name: str) -> str | None:
        """The current (first) value of secret `name`, or None."""
        values = self.values(name)
        return values[0] if values else None

    def _secrets_provider(self) -> Any:
        with self._lock:
            if self._provider is None:
                from aws_lambda_powertools.utilities import parameters  # lazy: only deployed functions pay

                self._provider = parameters.SecretsProvider(boto3_client=self._client())
            return self._provider


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


def generic_secret_values(raw: str | None, name: str) -> list[str]:
    """The values of `name` in BRIDGE_GENERIC_SECRETS's JSON object (a string, or a list during a
    rotation); [] when it is unset, empty (`[]`, `{}`) or has no such key. Anything else refuses
    the endpoint (SecretNotConfiguredError, a 503) rather than let it fall back to the shared
    secret: one mistyped character must not have an endpoint accept another sender's signature."""
    from timeline_bridge.errors import SecretNotConfiguredError

    text = (raw or "").strip()
    try:
        bundle = json.loads(text) if text else {}
    except ValueError:
        bundle = None
    if bundle == []:
        bundle = {}  # the stack creates every secret as "[]"
    if not isinstance(bundle, dict):
        raise SecretNotConfiguredError(f"{GENERIC_SECRETS_NAME} is not a JSON object")
    value = bundle.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        return parse_secret_value(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise SecretNotConfiguredError(f"{GENERIC_SECRETS_NAME}: {name} is not a string or a list of strings")


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
