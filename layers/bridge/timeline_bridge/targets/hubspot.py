"""HubSpot timeline events: single create and batch create (chunks of at most 100, one API and
one event template or type per batch), with the job's deterministic `id` on every event.

Two APIs side by side; each job's body says which it writes (`api_for`): a body naming an
`eventTemplateId` goes to v3, one naming an `eventTypeName` to the 2026-03 app events API (the
mapping chose when it was written; HUBSPOT_TIMELINE_API only decides for a body naming neither).
- `v3`: HubSpot upserts on (eventTemplateId, id), last write wins, so a re-sent event replaces
  itself: retrying the uncertain part of a batch is harmless. 207 answers carry `errors[]`
  without an input index; they are matched back to jobs by our own `id`.
- `2026-03` (app events): occurrences (eventTypeName, id, properties) are immutable. A known id is
  a 409, which for the job's own key means "already delivered"; a batch is atomic, so a refused
  batch is sent again one event at a time.
Both take `tokens` / `properties` as maps of strings only: numbers and booleans go as text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import (
    as_dict,
    as_list,
    as_str,
    json_body,
    parse_interval_ms,
    redirect_error,
    retry_after,
    scalar_text,
    seconds_until_next_midnight,
)
from timeline_bridge.targets.spec import Contract, KeyField, TargetProblem, TargetSpec

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

MAX_BATCH = 100  # v3 states no cap; legacy v1 and HubSpot's other batch APIs cap at 100
CREDENTIAL = "HUBSPOT_ACCESS_TOKEN"


@dataclasses.dataclass(frozen=True, slots=True)
class TimelineApi:
    """One of HubSpot's timeline APIs: where events go, what names their kind, how it dedupes."""

    name: str
    single: str
    batch: str
    type_field: str  # what names the event's kind: a template (v3) or an app event type (2026-03)
    missing_type_code: str
    # v3 upserts on (template, id): a re-sent event replaces itself. 2026-03 occurrences are
    # immutable: a known (type, id) is a 409, and one such input refuses a whole batch.
    upserts: bool
    string_properties: str  # the field whose values the API takes as strings only


APIS = {
    "v3": TimelineApi(
        name="v3",
        single="/integrators/timeline/v3/events",
        batch="/integrators/timeline/v3/events/batch/create",
        type_field="eventTemplateId",
        missing_type_code="missing_event_template_id",
        upserts=True,
        string_properties="tokens",
    ),
    "2026-03": TimelineApi(
        name="2026-03",
        single="/integrators/timeline/2026-03/events",
        batch="/integrators/timeline/2026-03/events/batch",
        type_field="eventTypeName",
        missing_type_code="missing_event_type_name",
        upserts=False,
        string_properties="properties",
    ),
}
# Item categories worth another try; anything else in a 207 `errors[]` is the input's fault.
RETRYABLE_CATEGORIES = ("RATE_LIMIT", "INTERNAL", "UNAVAILABLE", "TIMEOUT")


def default_api(settings: Settings) -> TimelineApi:
    """The API of a body that names neither a template nor a type: HUBSPOT_TIMELINE_API of
    `settings` (ValueError naming the setting when it names no API)."""
    return APIS[settings.hubspot_api()]


def api_for(body: Any, default: TimelineApi) -> TimelineApi:
    """The API a body writes: the one whose type field it holds (v3 `eventTemplateId`, 2026-03
    `eventTypeName`), as `SPEC.contract_for` reads it; else `default`."""
    if isinstance(body, dict):
        for api in APIS.values():
            if api.type_field in body:
                return api
    return default


def _error_fields(body: Any, status: int | None, fallback: str) -> dict[str, Any]:
    """Fields of HubSpot's error object. Every field is optional ("treat all fields as optional")."""
    error = as_dict(body)
    details: list[Any] = [d for d in as_list(error.get("errors")) if isinstance(d, dict)]
    context = as_dict(error.get("context"))
    if context:
        details.append({"context": context})
    return {
        "status": status,
        "code": as_str(error.get("category")) or as_str(error.get("errorType")),
        "request_id": as_str(error.get("correlationId")),
        "details": details,
        "message": as_str(error.get("message")) or fallback,
    }


def account_zone(name: str) -> tzinfo:
    """The HubSpot account's time zone named `name` (HUBSPOT_ACCOUNT_TIMEZONE: an IANA name such
    as Europe/Berlin, or UTC). Raises ValueError for a name no time zone has."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"HUBSPOT_ACCOUNT_TIMEZONE={name!r} is not a time zone (an IANA name: Europe/Berlin, "
            "America/New_York, UTC)"
        ) from None


def seconds_until_daily_reset(now: float | None = None, *, zone: tzinfo) -> float:
    """HubSpot's DAILY limit resets at midnight in the account's time zone (`account_zone`)."""
    return seconds_until_next_midnight(now, zone)


def classify_error(
    response: requests.Response, *, now: float | None = None, zone: tzinfo | None = None
) -> DeliveryFailure:
    """A non-2xx answer to a single or whole-batch request. `zone`: the account's time zone, where
    a DAILY limit resets (UTC unless given; only a 429 reads it)."""
    status = response.status_code
    if 300 <= status < 400:
        return redirect_error(response, "hubspot")
    body = as_dict(json_body(response))
    fields = _error_fields(body, status, f"HubSpot answered {status}")
    if status == 429:
        policy = (as_str(body.get("policyName")) or "").upper()
        if policy == "DAILY":
            delay: float | None = seconds_until_daily_reset(now, zone=zone or UTC)
        else:
            delay = retry_after(response, "hubspot", now=now)
            if delay is None:
                delay = parse_interval_ms(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
        if policy:
            fields["details"].append({"policyName": policy})
        return RetryLaterError(**fields, retry_after=delay, throttled=True)
    if status >= 500:
        return RetryLaterError(**fields, retry_after=retry_after(response, "hubspot", now=now))
    if status == 401:
        # "401 is not a valid indicator that a new access token must be retrieved": an operator
        # fixes credentials; the job waits.
        return RetryLaterError(**fields)
    return PermanentDeliveryError(**fields)


def _item_failure(error: dict[str, Any], status: int, request_id: str | None) -> DeliveryFailure:
    """One entry of a 207 `errors[]`."""
    fields = _error_fields(error, status, "HubSpot rejected the event")
    fields["request_id"] = fields["request_id"] or request_id
    code = fields["code"] or ""
    if any(part in code.upper() for part in RETRYABLE_CATEGORIES):
        return RetryLaterError(**fields, throttled="RATE" in code.upper())
    return PermanentDeliveryError(**fields)


def _ids_named(error: dict[str, Any], candidates: Sequence[str]) -> set[str]:
    """Our ids an item error is about: its `context.id`, else ids quoted in its message."""
    ids = {str(v) for v in as_list(as_dict(error.get("context")).get("id"))}
    found = ids & set(candidates)
    if found:
        return found
    text = " ".join(
        filter(
            None,
            [as_str(error.get("message"))]
            + [as_str(as_dict(e).get("message")) for e in as_list(error.get("errors"))],
        )
    )
    return {c for c in candidates if re.search(rf"(?<![\w-]){re.escape(c)}(?![\w-])", text)}


@dataclasses.dataclass(slots=True)
class _Item:
    index: int
    key: str  # the job key
    event: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.event["id"])


class HubspotClient(TargetClient):
    """Timeline events, v3 and 2026-03 app events side by side, batched per API and template or type."""

    name = "hubspot"
    credential = CREDENTIAL
    max_batch_size = MAX_BATCH

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        *,
        account_timezone: tzinfo | None = None,
        **options: Any,
    ) -> None:
        """`account_timezone`: where the account's DAILY limit resets (None: HUBSPOT_ACCOUNT_TIMEZONE).
        Raises ValueError for a HUBSPOT_TIMELINE_API or a time zone that does not exist."""
        super().__init__(settings, secrets, **options)
        self._default_api = default_api(settings)
        if account_timezone is None:
            account_timezone = account_zone(settings.hubspot_account_timezone)
        self._zone = account_timezone

    # --- request building -------------------------------------------------------------------

    def prepare(self, job: DeliveryJob, api: TimelineApi | None = None) -> dict[str, Any]:
        """The event for `job`, for the API its body writes (`api_for`): its body with a
        deterministic `id` (the job key unless the mapping set one) and string token or property
        values. Raises PermanentDeliveryError for a body that cannot be sent idempotently."""
        api = api or api_for(job.body, self._default_api)
        event = dict(job.body)
        event_id = event.get("id") or job.key
        if "{{uuid}}" in str(event_id):
            raise PermanentDeliveryError(
                "the event id contains {{uuid}}: HubSpot would create a new event on every retry",
                code="nondeterministic_id",
            )
        event["id"] = str(event_id)
        if not event.get(api.type_field):
            raise PermanentDeliveryError(f"the event has no {api.type_field}", code=api.missing_type_code)
        event[api.type_field] = str(event[api.type_field])
        # The mapping renders text already; a job queued before it did still goes out as the spec says.
        if isinstance(event.get(api.string_properties), dict):
            event[api.string_properties] = {
                name: scalar_text(value) for name, value in event[api.string_properties].items()
            }
        return event

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._require_token()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }

    # --- sending ----------------------------------------------------------------------------

    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(jobs)
        groups: dict[tuple[str, str], list[_Item]] = {}
        for index, job in enumerate(jobs):
            api = api_for(job.body, self._default_api)
            try:
                event = self.prepare(job, api)
            except PermanentDeliveryError as failure:
                outcomes[index] = failure
                continue
            groups.setdefault((api.name, event[api.type_field]), []).append(_Item(index, job.key, event))

        # Once HubSpot says "later" (429, 401, 5xx, no answer) the rest of this call waits too, on
        # either API (one account, one limit): hammering a throttled or failing account only burns
        # retries.
        halt: RetryLaterError | None = None
        for (api_name, _), items in groups.items():
            api = APIS[api_name]
            for start in range(0, len(items), MAX_BATCH):
                chunk = items[start : start + MAX_BATCH]
                if halt is None:
                    try:
                        results = (
                            [self._single(api, chunk[0])] if len(chunk) == 1 else self._batch(api, chunk)
                        )
                    except RetryLaterError as failure:
                        results = [failure] * len(chunk)
                    halt = next(
                        (
                            r
                            for r in results
                            if isinstance(r, RetryLaterError) and r.code != "batch_result_unconfirmed"
                        ),
                        None,
                    )
                else:
                    results = [halt] * len(chunk)
                for item, outcome in zip(chunk, results, strict=True):
                    outcomes[item.index] = (
                        dataclasses.replace(outcome) if isinstance(outcome, DeliveryFailure) else outcome
                    )
        return [o if o is not None else RetryLaterError("not sent", code="not_sent") for o in outcomes]

    def _post(self, path: str, body: Any) -> requests.Response:
        return self._transport.post(path, body, self._headers())

    def _single(self, api: TimelineApi, item: _Item) -> Outcome:
        response = self._post(api.single, item.event)
        if 200 <= response.status_code < 300:
            provider_id = as_str(as_dict(json_body(response)).get("id"))
            if provider_id is None:
                self._note_unexpected_success(response, "id", [item.id])
            return Delivered(provider_id or item.id, response.status_code)
        if response.status_code == 409 and not api.upserts:
            if item.id == item.key:
                # The occurrence id is this job's own key, so HubSpot already holds this job's
                # event: the answer to an earlier attempt was lost. Immutable occurrences make that
                # a delivery.
                return Delivered(item.id, response.status_code, replayed=True)
            return _id_taken(response, item)
        return classify_error(response, now=self._clock(), zone=self._zone)

    def _batch(self, api: TimelineApi, chunk: list[_Item]) -> list[Outcome]:
        response = self._post(api.batch, {"inputs": [item.event for item in chunk]})
        status = response.status_code
        if status == 207 or (200 <= status < 300 and _reports_errors(response)):
            return self._partial(api, response, chunk)
        if 200 <= status < 300:
            if not isinstance(as_dict(json_body(response)).get("results"), list):
                self._note_unexpected_success(response, "results", [item.id for item in chunk])
            return [Delivered(item.id, status) for item in chunk]
        if status in (400, 422) or (status == 409 and not api.upserts):
            # The whole batch was refused for something in it (a bad input; in 2026-03 also one
            # already stored): send each event alone, so one input does not sink the others and
            # each gets its own outcome.
            return self._one_by_one(api, chunk)
        failure = classify_error(response, now=self._clock(), zone=self._zone)
        return [failure] * len(chunk)

    def _one_by_one(self, api: TimelineApi, chunk: list[_Item]) -> list[Outcome]:
        results: list[Outcome] = []
        for position, item in enumerate(chunk):
            try:
                outcome = self._single(api, item)
            except RetryLaterError as failure:
                outcome = failure
            results.append(outcome)
            if isinstance(outcome, RetryLaterError):
                results.extend([outcome] * (len(chunk) - position - 1))
                break
        return results

    def _partial(self, api: TimelineApi, response: requests.Response, chunk: list[_Item]) -> list[Outcome]:
        """A 207, or a 2xx that reports errors (a 2026-03 batch answers 200 with `numErrors` and
        `errors[]`): `results` holds what was stored, `errors[]` what was not, matched by our id."""
        body = as_dict(json_body(response))
        request_id = as_str(body.get("correlationId"))
        stored = {as_str(as_dict(r).get("id")) for r in as_list(body.get("results"))}
        ids = [item.id for item in chunk]
        failed: dict[str, DeliveryFailure] = {}
        uncorrelated = 0
        for error in as_list(body.get("errors")):
            error = as_dict(error)
            named = _ids_named(error, ids)
            if not named:
                uncorrelated += 1
                continue
            failure = _item_failure(error, response.status_code, request_id)
            for event_id in named:
                failed[event_id] = failure
        outcomes: list[Outcome] = []
        for item in chunk:
            if item.id in failed:
                failure = failed[item.id]
                if not api.upserts and failure.code == "CONFLICT" and item.id == item.key:
                    # HubSpot holds this job's own occurrence already (see `_single`).
                    outcomes.append(Delivered(item.id, response.status_code, replayed=True))
                else:
                    outcomes.append(failure)
            elif item.id in stored:
                outcomes.append(Delivered(item.id, response.status_code))
            else:
                # Neither confirmed nor named in an error: sending it again is safe (a v3 event
                # replaces itself; a 2026-03 occurrence already stored answers 409 on its job key).
                outcomes.append(
                    RetryLaterError(
                        f"HubSpot's {response.status_code} answer neither confirmed nor rejected this event"
                        + (f" ({uncorrelated} error(s) named no id)" if uncorrelated else ""),
                        status=response.status_code,
                        code="batch_result_unconfirmed",
                        request_id=request_id,
                    )
                )
        return outcomes


def _reports_errors(response: requests.Response) -> bool:
    """A batch answer that names inputs it did not store, whatever its status."""
    body = as_dict(json_body(response))
    count = body.get("numErrors")
    return bool(as_list(body.get("errors"))) or (type(count) is int and count > 0)


def _id_taken(response: requests.Response, item: _Item) -> PermanentDeliveryError:
    """A 409 on an id the mapping chose: HubSpot holds an occurrence under it, maybe another event's."""
    fields = _error_fields(json_body(response), response.status_code, "")
    return PermanentDeliveryError(
        f"HubSpot already holds an occurrence with id {item.id!r}. The id is the mapping's own, not "
        "the job key, so it may belong to another event: this one is not counted as delivered",
        status=response.status_code,
        code="occurrence_id_taken",
        request_id=fields["request_id"],
        details=fields["details"],
    )


def build_client(settings: Settings, secrets: Secrets) -> HubspotClient:
    """The HubSpot client; checks the timeline API and time zone settings now, reads the token
    on each send."""
    return HubspotClient(settings, secrets)


def _contract_of(api: TimelineApi) -> str:
    return "hubspot" if api.name == "v3" else f"hubspot-{api.name}"


def _default_contract(settings: Settings) -> str:
    return _contract_of(default_api(settings))


def template_problems(body: Mapping[str, Any], contract: str) -> list[TargetProblem]:
    """What a mapping's body template gets wrong about the event id, before any event arrives."""
    if "id" not in body:
        return []
    value = body["id"]
    if not isinstance(value, str) or "${{" not in value:
        reason = (
            "a constant id would make every event overwrite the same HubSpot event: "
            "leave id out (the bridge sets it from the job key) or derive it from the event"
        )
    elif "{{uuid}}" in value.replace(" ", ""):
        reason = "{{uuid}} makes HubSpot ids random, so retries create duplicates"
    elif contract == _contract_of(APIS["2026-03"]) and value.replace(" ", "") != "${{meta.key}}":
        reason = (
            "app event occurrences are immutable and HubSpot answers 409 for an id it holds: an id "
            "that repeats across events would lose them. Leave id out (the bridge sets the job key)"
        )
    else:
        return []
    return [(("id",), reason)]


SPEC = TargetSpec(
    name="hubspot",
    base_url="https://api.hubapi.com",
    credential=CREDENTIAL,
    contracts=tuple(
        Contract(_contract_of(api), api.single, named_by=api.type_field) for api in APIS.values()
    ),
    build_client=build_client,
    # Per account; one request carries a batch of up to 100 events. The lowest documented tier
    # (Free/Starter private apps, OAuth public apps): Professional and Enterprise allow 190/10 s,
    # set HUBSPOT_RATE_LIMITS=190/10 there. The burst window is a rolling 10 s; the DAILY limit
    # is waited out by `policyName: DAILY`.
    rate_limits=((100, 10.0),),
    # The event id: HubSpot dedupes on it; a mapping may derive its own from the event.
    key_fields=(KeyField(("id",), mapping_may_set=True),),
    default_contract=_default_contract,
    template_problems=template_problems,
)
