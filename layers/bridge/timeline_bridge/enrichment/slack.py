"""Slack Web API reads: who clicked (`users.info`) and a link to the message (`chat.getPermalink`).

Base `SLACK_API_BASE_URL` (default https://slack.com), bot token `SLACK_BOT_TOKEN` (scopes
users:read, users:read.email). Slack answers most failures with HTTP 200 and
`{"ok": false, "error": "<code>"}`; throttling is HTTP 429 with `Retry-After` and
`error: ratelimited`.
"""

from __future__ import annotations

from typing import Any

import requests

from timeline_bridge.enrichment.api import NotFoundError, SourceApi
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets import http

DEFAULT_BASE_URL = "https://slack.com"

# Wait for a person (token rotated, app reinstalled) or for Slack: the event is not at fault.
RETRY_LATER_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "invalid_auth",
        "not_authed",
        "token_expired",
        "token_revoked",
        "account_inactive",
        "no_permission",
        "missing_scope",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
# The thing asked for does not exist (or is invisible to the app): retrying cannot help.
NOT_FOUND_ERRORS = frozenset(
    {"user_not_found", "users_not_found", "user_not_visible", "channel_not_found", "message_not_found"}
)


class SlackWebApi(SourceApi):
    name = "slack"
    credential = "SLACK_BOT_TOKEN"

    def base_url(self) -> str:
        return self.settings.slack_api_base_url or DEFAULT_BASE_URL

    def classify(self, response: requests.Response) -> Any:
        status = response.status_code
        body = http.as_dict(http.json_body(response))
        code = http.as_str(body.get("error"))
        # Capped: a 429 (or Slack's 200 `ratelimited`) asks for at most `http.max_wait("slack")`.
        retry_after = http.capped_wait(
            "slack",
            http.parse_retry_after(response.headers.get("Retry-After")),
            throttled=status == 429 or code in ("ratelimited", "rate_limited"),
            source="Retry-After",
        )
        if status == 429 or code in ("ratelimited", "rate_limited"):
            raise self.throttled(
                RetryLaterError(
                    f"Slack rate limited the call ({code or status})",
                    status=status,
                    code=code or "ratelimited",
                    retry_after=retry_after,
                    throttled=True,
                )
            )
        if status >= 500:
            raise RetryLaterError(
                f"Slack answered {status}", status=status, code=code, retry_after=retry_after
            )
        if status != 200:
            raise PermanentDeliveryError(f"Slack answered {status}", status=status, code=code)
        if body.get("ok") is True:
            return body
        message = f"Slack answered ok:false, error {code or 'missing'}"
        needed = http.as_str(body.get("needed"))
        if needed:
            message += f" (needs scope {needed})"
        if code in NOT_FOUND_ERRORS:
            raise NotFoundError(message, status=status, code=code)
        if code in RETRY_LATER_ERRORS:
            raise RetryLaterError(message, status=status, code=code, retry_after=retry_after)
        raise PermanentDeliveryError(message, status=status, code=code)


def user(web_api: SlackWebApi, args: dict[str, Any]) -> dict[str, Any]:
    """The Slack user object of `args.user` (`real_name`, `profile.email`, `profile.display_name`, …)."""
    body = web_api.get("/api/users.info", {"user": str(args["user"])})
    found = http.as_dict(body.get("user"))
    if not found:
        raise PermanentDeliveryError("Slack users.info answered without a user", code="malformed_answer")
    return found


def permalink(web_api: SlackWebApi, args: dict[str, Any]) -> str:
    """The permalink URL of message `args.message_ts` in channel `args.channel`."""
    body = web_api.get(
        "/api/chat.getPermalink", {"channel": str(args["channel"]), "message_ts": str(args["message_ts"])}
    )
    link = http.as_str(body.get("permalink"))
    if not link:
        raise PermanentDeliveryError(
            "Slack chat.getPermalink answered without a permalink", code="malformed_answer"
        )
    return link
