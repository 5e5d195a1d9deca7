"""The identity map: source-side keys (an email, a HubSpot contact id) → a target's own ids.

Targets such as Stora need their own ids (`contact.id` `con_…`, `site.id` `site_…`), which no
webhook carries. The map is declarative: a static table in the mapping file, or the DynamoDB table
named by `IDENTITY_TABLE` (partition key `id` = `<namespace>#<key>`), filled from a CSV by
`bridge identities import`.

Keys are compared trimmed and case-folded (emails differ in case between systems); target ids are
kept exactly as given and checked against the target's id format where the namespace names one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Namespaces whose target ids have a known shape. Others only need a non-blank id.
ID_PATTERNS: dict[str, re.Pattern[str]] = {
    "stora_contact": re.compile(r"^con_[0-9a-f]{16}$"),
    "stora_site": re.compile(r"^site_[0-9a-f]{16}$"),
    "hubspot_contact": re.compile(r"^[0-9]{1,20}$"),
    "hubspot_company": re.compile(r"^[0-9]{1,20}$"),
    "hubspot_deal": re.compile(r"^[0-9]{1,20}$"),
}
NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
ANY_ID_PATTERN = re.compile(r"^\S{1,256}$")
MAX_KEY_LENGTH = 512
# Found entries are kept this long per cold start: an import shows within five minutes. Misses are
# never cached, so an event that failed for want of an entry succeeds as soon as it is imported.
IDENTITY_TTL = 300.0


def normalize_key(key: Any) -> str:
    """The form keys are stored and looked up in: trimmed, case-folded text."""
    return str(key).strip().casefold()


def item_id(namespace: str, key: Any) -> str:
    """The table's partition key for (`namespace`, `key`)."""
    return f"{namespace}#{normalize_key(key)}"


def check_entry(namespace: str, key: str, target_id: str) -> str | None:
    """Why (`namespace`, `key`, `target_id`) cannot be stored, or None when it can."""
    if not NAMESPACE_PATTERN.match(namespace or ""):
        return f"namespace {namespace!r} must match {NAMESPACE_PATTERN.pattern}"
    if not normalize_key(key):
        return "key is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"key is longer than {MAX_KEY_LENGTH} characters"
    pattern = ID_PATTERNS.get(namespace, ANY_ID_PATTERN)
    if not pattern.match(target_id or ""):
        return f"target_id {target_id!r} does not match {pattern.pattern} (namespace {namespace})"
    return None


@dataclass(frozen=True, slots=True)
class Identity:
    namespace: str
    key: str
    target_id: str


class IdentityTable:
    """The DynamoDB identity map. The table is read by the route and written by the CLI.

    `aws` gives the boto3 client of a service (`timeline_bridge.aws.AwsClients`): the DynamoDB
    client is asked for at the first read or write, so a route function that never resolves an
    identity never builds it."""

    def __init__(self, table_name: str, aws: Callable[[str], Any]) -> None:
        if not table_name:
            raise ValueError("no identity table configured (IDENTITY_TABLE)")
        self.table_name = table_name
        self._aws = aws

    @property
    def client(self) -> Any:
        return self._aws("dynamodb")

    def get(self, namespace: str, key: Any) -> str | None:
        """The target id mapped to (`namespace`, `key`), or None."""
        answer = self.client.get_item(
            TableName=self.table_name,
            Key={"id": {"S": item_id(namespace, key)}},
            ProjectionExpression="target_id",
        )
        item = answer.get("Item")
        return item["target_id"]["S"] if item else None

    def put_many(self, entries: Iterable[Identity]) -> int:
        """Store `entries` (later rows win); returns how many were written."""
        count = 0
        batch: list[dict[str, Any]] = []
        for entry in entries:
            batch.append({"PutRequest": {"Item": _to_item(entry)}})
            if len(batch) == 25:  # BatchWriteItem's limit
                self._write(batch)
                count += len(batch)
                batch = []
        if batch:
            self._write(batch)
            count += len(batch)
        return count

    def _write(self, batch: list[dict[str, Any]]) -> None:
        request = {self.table_name: batch}
        for _ in range(8):
            answer = self.client.batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}
            if not request:
                return
        raise RuntimeError(f"DynamoDB left {len(request.get(self.table_name, []))} identities unwritten")

    def scan(self, namespace: str | None = None) -> Iterator[Identity]:
        """Every entry (of `namespace`, when given), in table order."""
        kwargs: dict[str, Any] = {"TableName": self.table_name}
        if namespace:
            kwargs["FilterExpression"] = "#ns = :ns"
            kwargs["ExpressionAttributeNames"] = {"#ns": "namespace"}
            kwargs["ExpressionAttributeValues"] = {":ns": {"S": namespace}}
        for page in self.client.get_paginator("scan").paginate(**kwargs):
            for item in page.get("Items", []):
                yield Identity(item["namespace"]["S"], item["key"]["S"], item["target_id"]["S"])


def _to_item(entry: Identity) -> dict[str, Any]:
    return {
        "id": {"S": item_id(entry.namespace, entry.key)},
        "namespace": {"S": entry.namespace},
        "key": {"S": normalize_key(entry.key)},
        "target_id": {"S": entry.target_id},
    }


def resolve(args: dict[str, Any], lookups: dict[str, dict[str, Any]], store: IdentityTable | None) -> str:
    """The target id for (`args.namespace`, `args.key`): from `args.table` (an inline table, or the
    name of one of the mapping's `lookups`) first, then from the DynamoDB identity map `store`
    (None where the function has no `IDENTITY_TABLE`)."""
    from timeline_bridge.enrichment.api import NotFoundError
    from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError

    namespace, key = str(args["namespace"]), normalize_key(args["key"])
    table = args.get("table")
    if isinstance(table, str):
        if table not in lookups:
            raise PermanentDeliveryError(
                f"identity table {table!r} is not defined in lookups", code="unknown_table"
            )
        table = lookups[table]
    if isinstance(table, dict):
        for candidate, target_id in table.items():
            if normalize_key(candidate) == key and target_id not in (None, ""):
                return str(target_id)
    if store is None:
        if isinstance(table, dict):
            raise NotFoundError(
                f"no {namespace} identity for {key!r} in the mapping's table", code="identity_not_found"
            )
        raise RetryLaterError(
            "the identity map is not configured (IDENTITY_TABLE) and the fetch names no table",
            code="identity_map_missing",
        )
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = store.get(namespace, key)
    except (BotoCoreError, ClientError) as exc:  # throttling, connection errors: DynamoDB recovers
        raise RetryLaterError(
            f"identity map read failed: {type(exc).__name__}: {exc}", code="identity_map_error"
        ) from exc
    if not found:
        raise NotFoundError(
            f"no {namespace} identity for {key!r} (add it with bridge identities import)",
            code="identity_not_found",
        )
    return found
