"""Stora contact lookup by email: `GET /2025-09/contacts?email=…` (scope public.contact:read).

Stora's 2025-09 reference documents a "Find by email" filter on List all Contacts (several values
comma-separated). The filter matches whole addresses; the answer is still checked here, case-
insensitively, so a looser server-side match can never attach an event to the wrong contact.
"""

from __future__ import annotations

from typing import Any

import requests

from timeline_bridge.enrichment.api import NotFoundError, SourceApi
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets import http

CONTACTS_PATH = "/2025-09/contacts"


class StoraContacts(SourceApi):
    name = "stora"
    credential = "STORA_TOKEN"

    def base_url(self) -> str:
        return self.settings.base_url("stora")

    def classify(self, response: requests.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            return http.json_body(response)
        error = http.as_dict(http.as_dict(http.json_body(response)).get("error"))
        fields: dict[str, Any] = {
            "status": status,
            "code": http.as_str(error.get("code")),
            "request_id": http.as_str(error.get("request_id")),
            "message": http.as_str(error.get("message")) or f"Stora answered {status}",
        }
        if status == 429:
            delay = http.capped_wait(
                "stora",
                http.parse_ratelimit_reset(response.headers.get("RateLimit-Reset")),
                throttled=True,
                source="RateLimit-Reset",
            )
            if delay is None:
                delay = http.retry_after(response, "stora")
            raise self.throttled(RetryLaterError(**fields, retry_after=delay, throttled=True))
        if status >= 500 or status == 401:
            raise RetryLaterError(**fields, retry_after=http.retry_after(response, "stora"))
        if status == 404:
            raise NotFoundError(**fields)
        raise PermanentDeliveryError(**fields)


def contact_by_email(contacts: StoraContacts, args: dict[str, Any]) -> dict[str, Any]:
    """The Stora contact (`{id, email, full_name, …}`) whose email is `args.email`."""
    email = str(args["email"]).strip()
    if "," in email:
        raise PermanentDeliveryError(f"not one email address: {email!r}", code="invalid_argument")
    body = http.as_dict(contacts.get(CONTACTS_PATH, {"email": email, "limit": 2}))
    wanted = email.casefold()
    matches = [
        c
        for c in (http.as_dict(c) for c in http.as_list(body.get("contacts")))
        if str(c.get("email") or "").strip().casefold() == wanted
    ]
    if not matches:
        raise NotFoundError(f"Stora has no contact with email {email!r}", code="contact_not_found")
    if len({c.get("id") for c in matches}) > 1:
        raise PermanentDeliveryError(
            f"Stora has several contacts with email {email!r}; map it with bridge identities import",
            code="ambiguous_contact",
        )
    return matches[0]
