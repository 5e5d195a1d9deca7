"""The Slack Web API methods enrichment calls, as a sandbox: `users.info` and `chat.getPermalink`;
and Slack's hooks host, where replies to a click's `response_url` go.

Slack's conventions: `Authorization: Bearer xoxb-…` (or a `token` argument), arguments in the
query string or a form body, HTTP 200 with `{"ok": false, "error": "<code>"}` for failures, and
HTTP 429 `{"ok": false, "error": "ratelimited"}` with `Retry-After` when throttled.

Seeded with the user and message of `events/slack/approve-button.json`.

Response URLs (`/actions/…`, `/app/…`, `/commands/…` on the hooks host; `bridge dev` points
`SLACK_HOOKS_BASE_URL` here and `bridge send slack` rewrites a sample's `response_url` to it): a
JSON post is kept as one of the sandbox's events (`{"response_url": path, "message": body}`), and
answered 200 `ok` as Slack does. Slack takes five posts per URL in 30 minutes; the sixth is
refused here with 404 `used_url` (Slack documents the limit, not the answer), so a test sees a
bridge that overspends.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from typing import Any
from urllib.parse import parse_qs

from timeline_bridge_tools.sandboxes.base import RateState, Sandbox, SandboxRequest, SandboxResponse

SAMPLE_TEAM_ID = "T01ABCDEF12"
SAMPLE_TEAM_DOMAIN = "acme-storage"
SAMPLE_USER_ID = "U04ABCD1234"
SAMPLE_USER_NAME = "Maria Lopez"
SAMPLE_USER_EMAIL = "maria.lopez@acme-storage.example"
SAMPLE_CHANNEL_ID = "C05QWERTY12"
SAMPLE_MESSAGE_TS = "1763900123.000200"
RESPONSE_URL_PREFIXES = ("/actions/", "/app/", "/commands/")
RESPONSE_URL_POSTS = 5  # per URL ...
RESPONSE_URL_WINDOW = 30 * 60.0  # ... in this many seconds


def slack_error(code: str, status: int = 200, headers: dict[str, str] | None = None) -> SandboxResponse:
    return SandboxResponse.json(status, {"ok": False, "error": code}, headers)


class SlackApiSandbox(Sandbox):
    name = "slack"
    # users.info is Tier 4 (100+ per minute).
    default_rate_limits = ((100, 60.0),)

    def __init__(self, token: str = "xoxb-sandbox-token", **kwargs: Any) -> None:  # noqa: S107 - fake credential
        super().__init__(**kwargs)
        self.tokens = {token}
        self._data_lock = threading.Lock()
        self.users: dict[str, dict[str, Any]] = {}
        self.messages: set[tuple[str, str]] = set()
        self.channels: set[str] = set()
        self._response_posts: dict[str, list[float]] = {}
        self.seed()

    def clear_state(self) -> None:
        self.seed()

    def seed(self) -> None:
        with self._data_lock:
            self.users.clear()
            self.messages.clear()
            self.channels.clear()
            self._response_posts.clear()
        self.add_user(SAMPLE_USER_ID, real_name=SAMPLE_USER_NAME, email=SAMPLE_USER_EMAIL, name="maria.lopez")
        self.add_message(SAMPLE_CHANNEL_ID, SAMPLE_MESSAGE_TS)

    def add_user(
        self, user_id: str, *, real_name: str, email: str | None = None, name: str | None = None
    ) -> None:
        display = name or real_name.lower().replace(" ", ".")
        profile: dict[str, Any] = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display,
            "display_name_normalized": display,
            "first_name": real_name.split(" ")[0],
            "last_name": " ".join(real_name.split(" ")[1:]),
            "team": SAMPLE_TEAM_ID,
            "image_24": "https://avatars.slack-edge.com/sample_24.png",
        }
        if email:
            profile["email"] = email
        user = {
            "id": user_id,
            "team_id": SAMPLE_TEAM_ID,
            "name": display,
            "deleted": False,
            "real_name": real_name,
            "tz": "Europe/London",
            "tz_label": "Greenwich Mean Time",
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": 1763800000,
        }
        with self._data_lock:
            self.users[user_id] = user

    def add_message(self, channel: str, ts: str) -> None:
        with self._data_lock:
            self.channels.add(channel)
            self.messages.add((channel, ts))

    def _arguments(self, request: SandboxRequest) -> dict[str, str]:
        args = {k: v[0] for k, v in request.query.items() if v}
        if request.body:
            media = (request.header("content-type") or "").split(";")[0].strip().lower()
            if media == "application/x-www-form-urlencoded":
                args.update(
                    {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items() if v}
                )
            elif request.content_type_is_json():
                with contextlib.suppress(ValueError, TypeError):
                    args.update({k: str(v) for k, v in dict(request.json()).items()})
        return args

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        failure = self.server_error(request)
        if failure is not None:
            return failure
        if request.path.startswith(RESPONSE_URL_PREFIXES):
            return self._response_url(request)
        if not request.path.startswith("/api/"):
            return SandboxResponse(404, b"", {"Content-Type": "text/html"})
        method = request.path[len("/api/") :]
        args = self._arguments(request)
        token = request.bearer() or args.get("token")
        if not token:
            return slack_error("not_authed")
        if not token.startswith(("xoxb-", "xoxp-")) or token not in self.tokens:
            return slack_error("invalid_auth")
        if method == "users.info":
            return self._users_info(args)
        if method == "chat.getPermalink":
            return self._permalink(args)
        return slack_error("unknown_method")

    def replies(self, path: str | None = None) -> list[dict[str, Any]]:
        """The messages posted to response URLs (to the one at `path` when given), oldest first."""
        return [e for e in self.events() if "response_url" in e and path in (None, e["response_url"])]

    def _response_url(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST":
            return SandboxResponse(405, b"", {"Content-Type": "text/plain"})
        try:
            message = dict(request.json())
        except (ValueError, TypeError):
            return SandboxResponse(400, b"invalid_payload", {"Content-Type": "text/plain"})
        now = time.time()
        with self._data_lock:
            posts = [t for t in self._response_posts.get(request.path, []) if now - t < RESPONSE_URL_WINDOW]
            if len(posts) >= RESPONSE_URL_POSTS:
                return SandboxResponse(404, b"used_url", {"Content-Type": "text/plain"})
            self._response_posts[request.path] = [*posts, now]
        self.store({"response_url": request.path, "message": message, "at": now})
        return SandboxResponse(200, b"ok", {"Content-Type": "text/plain"})

    def _users_info(self, args: dict[str, str]) -> SandboxResponse:
        if not args.get("user"):
            return slack_error("invalid_arguments")
        with self._data_lock:
            user = copy.deepcopy(self.users.get(args["user"]))
        if user is None:
            return slack_error("user_not_found")
        return SandboxResponse.json(200, {"ok": True, "user": user})

    def _permalink(self, args: dict[str, str]) -> SandboxResponse:
        channel, ts = args.get("channel", ""), args.get("message_ts", "")
        if not channel or not ts:
            return slack_error("invalid_arguments")
        with self._data_lock:
            known_channel = channel in self.channels
            known_message = (channel, ts) in self.messages
        if not known_channel:
            return slack_error("channel_not_found")
        if not known_message:
            return slack_error("message_not_found")
        link = f"https://{SAMPLE_TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        return SandboxResponse.json(200, {"ok": True, "channel": channel, "permalink": link})

    def rate_limited(
        self, request: SandboxRequest, rate: RateState | None, params: dict[str, Any]
    ) -> SandboxResponse:
        retry_after = params.get("retry_after")
        if retry_after is None:
            retry_after = max(1, round(rate.reset_at - time.time())) if rate else 30
        return slack_error("ratelimited", 429, {"Retry-After": str(retry_after)})

    def server_error_response(self, request: SandboxRequest, status: int) -> SandboxResponse:
        return slack_error("internal_error", status)
