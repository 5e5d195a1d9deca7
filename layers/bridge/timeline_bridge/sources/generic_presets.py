"""The senders a generic endpoint can be set to (`GENERIC_<NAME>_PRESET=<preset>`), as data.

Each preset is a `Scheme`: how the sender signs, where its event id, type and time are, and how
long it keeps redelivering one event (ingest's dedupe window must outlast it; Docusign's
legacy schedule of one retry a day for ten days is the one that needs a longer window). Sources:
each sender's documentation and SDKs; values they do not publish are said so below.
"""

from __future__ import annotations

from timeline_bridge.sources.hmac_scheme import HEADER, Scheme, Timestamp

HOUR = 3600
DAY = 24 * HOUR

PRESETS: dict[str, Scheme] = {
    # `Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]` over "{t}.{body}", keyed with the whole
    # `whsec_...` text; the SDKs' 300 s tolerance; other schemes (v0) are skipped.
    "stripe": Scheme(
        header="Stripe-Signature",
        content="{ts}.{body}",
        items=",",
        signature_key="v1",
        timestamp=Timestamp("signature", "t", "s", 300),
        event_id=("id",),
        event_type=("type",),
        occurred_at=("created",),
        retry_horizon=3 * DAY,
    ),
    # `X-Hub-Signature-256: sha256=<hex>` over the body. No automatic retries; a delivery can be
    # redelivered by hand for 3 days, under the same X-GitHub-Delivery. `ping` on hook creation.
    "github": Scheme(
        header="X-Hub-Signature-256",
        prefix="sha256=",
        event_id=(HEADER + "X-GitHub-Delivery",),
        event_type=(HEADER + "X-GitHub-Event",),
        handshake=("ping",),
        retry_horizon=3 * DAY,
    ),
    # base64 HMAC of the body. Shopify's pages name two ids (Event-Id, Webhook-Id): keyed on
    # Event-Id + topic, else Webhook-Id. 8 retries over 4 h (older docs: 19 over 48 h).
    "shopify": Scheme(
        header="X-Shopify-Hmac-Sha256",
        encoding="base64",
        event_id=(
            HEADER + "X-Shopify-Event-Id+" + HEADER + "X-Shopify-Topic",
            HEADER + "X-Shopify-Webhook-Id",
        ),
        event_type=(HEADER + "X-Shopify-Topic",),
        occurred_at=(HEADER + "X-Shopify-Triggered-At",),
        retry_horizon=48 * HOUR,
    ),
    # HMAC-SHA1 of the body, `X-Hub-Signature: sha1=<hex>`. A `ping` topic on setup. Retry
    # schedule unpublished: throttled retries from 1 min to 2 h.
    "intercom": Scheme(
        header="X-Hub-Signature",
        algorithm="sha1",
        prefix="sha1=",
        event_id=("id",),
        event_type=("topic",),
        occurred_at=("created_at",),
        unstable=("delivery_attempts", "delivery_status", "delivered_at"),
        handshake=("ping",),
    ),
    # base64 HMAC of "{ts}{body}", the timestamp (ISO 8601) in its own header, as the current
    # docs write it. An older page wrote "(BODY)(TIMESTAMP)", and its worked example only matches
    # body first: a live test delivery decides; GENERIC_<NAME>_SIGNED_CONTENT={body}{ts} switches.
    # No tolerance published: 300 s. Retry schedule unpublished.
    "zendesk": Scheme(
        header="X-Zendesk-Webhook-Signature",
        encoding="base64",
        content="{ts}{body}",
        timestamp=Timestamp("header", "X-Zendesk-Webhook-Signature-Timestamp", "iso", 300),
        event_id=("id",),
        event_type=("type",),
        occurred_at=("time",),
    ),
    # Stripe's scheme on `Calendly-Webhook-Signature`; no tolerance published: 300 s. No event
    # id either: the payload's uri + event + created_at. Answering 410 deletes the subscription
    # (the bridge never answers 410). Retry schedule unpublished.
    "calendly": Scheme(
        header="Calendly-Webhook-Signature",
        content="{ts}.{body}",
        items=",",
        signature_key="v1",
        timestamp=Timestamp("signature", "t", "s", 300),
        event_id=("payload.uri+event+created_at",),
        event_type=("event",),
        occurred_at=("created_at",),
    ),
    # `Typeform-Signature: sha256=<base64>` over the body; retried for up to 10 h.
    "typeform": Scheme(
        header="Typeform-Signature",
        encoding="base64",
        prefix="sha256=",
        event_id=("event_id",),
        event_type=("event_type",),
        occurred_at=("form_response.submitted_at",),
        retry_horizon=10 * HOUR,
    ),
    # hex HMAC of the body, no timestamp. A body carries an `events` array; `Idempotency-Key`
    # stays the same across the retries of one message (up to 10, over about 3 days).
    "attio": Scheme(
        header="Attio-Signature",
        event_id=(HEADER + "Idempotency-Key",),
        event_type=("event_type",),
        batch="events",
        retry_horizon=3 * DAY,
    ),
    # hex HMAC of "{ts}{body}" keyed with the hex-decoded signature key; the timestamp in
    # close-sig-timestamp. A subscription pauses after 3 days of failures.
    "close": Scheme(
        header="close-sig-hash",
        key="hex",
        content="{ts}{body}",
        timestamp=Timestamp("header", "close-sig-timestamp", "s", 300),
        event_id=("event.id",),
        event_type=("event.object_type", "event.action"),
        occurred_at=("event.date_created",),
        retry_horizon=3 * DAY,
    ),
    # hex HMAC of the body; the time is the body's `webhookTimestamp` (ms), 60 s as Linear's
    # SDK allows. Retried "a couple of times" (10 min, then 30 min).
    "linear": Scheme(
        header="Linear-Signature",
        timestamp=Timestamp("body", "webhookTimestamp", "ms", 60),
        event_id=(HEADER + "Linear-Delivery",),
        event_type=("type", "action"),
        occurred_at=("createdAt",),
        unstable=("webhookTimestamp",),  # the time of each delivery
        retry_horizon=HOUR,
    ),
    # `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=...]` over "{ts}:{body}"; several h1 during a
    # rotation (all are checked). 5 s tolerance, as Paddle's SDK. 60 retries over 3 days.
    "paddle": Scheme(
        header="Paddle-Signature",
        content="{ts}:{body}",
        items=";",
        signature_key="h1",
        timestamp=Timestamp("signature", "ts", "s", 5),
        event_id=("event_id",),
        event_type=("event_type",),
        occurred_at=("occurred_at",),
        retry_horizon=3 * DAY,
    ),
    # base64 HMAC of the body in `X-DocuSign-Signature-1`, `-2`, ... (one per active key). No
    # event id: envelopeId + event + generatedDateTime. Legacy retries: daily, at most 10.
    "docusign": Scheme(
        header="X-DocuSign-Signature-{n}",
        encoding="base64",
        event_id=("data.envelopeId+event+generatedDateTime",),
        event_type=("event",),
        occurred_at=("generatedDateTime",),
        unstable=("retryCount",),
        retry_horizon=11 * DAY,
        dedupe_seconds=14 * DAY,
    ),
}
