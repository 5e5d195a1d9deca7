"""Files `bridge dev` keeps in `.bridge/` (git-ignored): the development secrets, generated once and
reused, and `dev.json`, which lets `bridge send` and `bridge dlq` find the running instance.

`dev.json` (written at start, removed on exit):

    {
      "version": 1,
      "pid": 4242,                          # the bridge dev process
      "started_at": "2026-01-01T10:00:00.000Z",
      "url": "http://127.0.0.1:3000",       # Function URL emulator and console
      "port": 3000,
      "aws_endpoint_url": "http://127.0.0.1:50123",
      "region": "us-east-1",
      "webhook_urls": {"hubspot": ".../hubspot", "slack": ..., "pipedrive": ..., "generic": ".../generic/"},
      "queues": {"EventsQueue": "<url>", "EventsDeadLetterQueue": "<url>", "StoraDeliveryQueue": ...},
      "tables": {"IdempotencyTable": "IdempotencyTable", "IdentityTable": "IdentityTable"},
      "sandboxes": {"stora": {"url": "http://127.0.0.1:50124", "real": false}, ...},
      "env": {"AWS_ENDPOINT_URL": ..., "AWS_DEFAULT_REGION": ..., "AWS_ACCESS_KEY_ID": ...,
              "AWS_SECRET_ACCESS_KEY": ..., "EVENTS_QUEUE_URL": ..., "EVENTS_DLQ_URL": ...,
              "STORA_QUEUE_URL": ..., "STORA_DLQ_URL": ..., ..., "IDEMPOTENCY_TABLE": ...,
              "IDENTITY_TABLE": ...}
    }

`env` holds what a command needs to act on the local stack through the usual settings
(`Settings.from_environ()`, boto3's endpoint): `apply_env(state)` sets it. No secret is written there.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATE_DIR = ".bridge"
STATE_FILE = "dev.json"
SECRETS_FILE = "secrets.json"
STATE_VERSION = 1
LOCAL_AWS_UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")

# How each credential looks, so the development values pass the same format checks as real ones.
_GENERATORS: dict[str, Callable[[], str]] = {
    "HUBSPOT_CLIENT_SECRET": lambda: str(uuid.uuid4()),
    "SLACK_SIGNING_SECRET": lambda: secrets.token_hex(16),
    "PIPEDRIVE_BASIC_AUTH": lambda: f"bridge:{secrets.token_urlsafe(18)}",
    "GENERIC_WEBHOOK_SECRET": lambda: "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    "STORA_TOKEN": lambda: f"stora_dev_{secrets.token_hex(16)}",
    "HUBSPOT_ACCESS_TOKEN": lambda: f"pat-eu1-{uuid.uuid4()}",
    "MATTER_API_KEY": lambda: f"sk_test_{secrets.token_hex(16)}",
    "APPLIED_API_KEY": lambda: f"AL_dev_{secrets.token_hex(16)}",
    # Slack bot tokens start xoxb- (the Slack Web API sandbox, like Slack, answers invalid_auth otherwise).
    "SLACK_BOT_TOKEN": lambda: f"xoxb-dev-{secrets.token_hex(16)}",
}


def state_dir(root: str | Path | None = None) -> Path:
    return Path(root or ".") / STATE_DIR


def generate_secret(name: str) -> str:
    """A random development value for credential `name`, in the provider's format."""
    return _GENERATORS.get(name, lambda: secrets.token_urlsafe(24))()


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def load_secrets(root: str | Path | None = None) -> dict[str, str]:
    """The development secrets saved by an earlier `bridge dev` ({} when there are none)."""
    path = state_dir(root) / SECRETS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def ensure_secrets(names: list[str], root: str | Path | None = None) -> tuple[dict[str, str], list[str]]:
    """The development value of each of `names`, generating (and saving) the missing ones.

    Returns (values, names generated now).
    """
    saved = load_secrets(root)
    created = [n for n in names if not saved.get(n)]
    for name in created:
        saved[name] = generate_secret(name)
    if created:
        _write_private(state_dir(root) / SECRETS_FILE, saved)
    return {n: saved[n] for n in names}, created


def write_state(state: dict[str, Any], root: str | Path | None = None) -> Path:
    path = state_dir(root) / STATE_FILE
    _write_private(path, {"version": STATE_VERSION, **state})
    return path


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(root: str | Path | None = None) -> dict[str, Any] | None:
    """The running `bridge dev` (from `.bridge/dev.json`), or None when none is running."""
    path = state_dir(root) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not _alive(int(state.get("pid") or 0)):
        return None  # left behind by a process that was killed: not a running instance
    return state


def remove_state(root: str | Path | None = None, pid: int | None = None) -> None:
    """Remove `dev.json` if it belongs to `pid` (default: this process)."""
    path = state_dir(root) / STATE_FILE
    with contextlib.suppress(OSError, ValueError):
        owner = json.loads(path.read_text()).get("pid")
        if owner == (pid or os.getpid()):
            path.unlink()


def apply_env(state: dict[str, Any]) -> None:
    """Point the settings and AWS clients this process makes from here on at the running `bridge dev`."""
    # A profile or session token from the shell would otherwise win over the dummy credentials.
    for name in LOCAL_AWS_UNSET:
        os.environ.pop(name, None)
    os.environ.update({k: str(v) for k, v in (state.get("env") or {}).items()})
