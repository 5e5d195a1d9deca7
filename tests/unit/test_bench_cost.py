"""The cost figure's arithmetic: DynamoDB item sizes and units, SQS chunks, and the bill of a
known usage at the list prices (the run itself is `make bench`)."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.cost import (
    PRICES,
    Usage,
    item_size,
    per_webhook,
    price,
    read_units,
    sqs_chunks,
    total,
    write_units,
)


def test_item_size_counts_names_and_values_by_dynamodb_rules():
    item = {
        "id": {"S": "ingest.hubspot#abc"},  # 2 + 17
        "expiration": {"N": "1764000000"},  # 10 + (1 + 5)
        "ok": {"BOOL": True},  # 2 + 1
        "data": {"M": {"a": {"S": "xy"}}},  # 4 + 3 + (1 + 1 + 2)
        "tags": {"L": [{"S": "a"}, {"N": "12"}]},  # 4 + 3 + (1 + 1) + (1 + 2)
    }
    assert item_size(item) == 19 + 16 + 3 + 11 + 13


def test_units_round_up_per_kilobyte_and_read_block():
    assert write_units(1) == 1
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert read_units(100, consistent=True) == 1.0
    assert read_units(100, consistent=False) == 0.5
    assert read_units(4097, consistent=True) == 2.0


def test_sqs_bills_one_request_per_64_kib_chunk():
    assert sqs_chunks(0) == 1
    assert sqs_chunks(65_536) == 1
    assert sqs_chunks(65_537) == 2


def test_price_of_a_known_usage_per_million_timeline_events():
    usage = Usage(
        timeline_events=200,
        webhooks=100,
        lambda_requests=Counter({"Ingest": 100, "Deliver": 10}),
        lambda_ms=Counter({"Ingest": 5_000, "Deliver": 2_000}),  # 50 ms and 200 ms each
        memory_mb={"Ingest": 512, "Deliver": 1024},
        sqs_requests=Counter({"Ingest:SendMessageBatch": 100}),
        write_units=Counter({"Ingest:PutItem": 100, "Ingest:UpdateItem": 100}),
        read_units=Counter({"Deliver:GetItem": 5.0}),
        s3_puts=10,
        s3_bytes=20_000,
        log_bytes=Counter({"json log lines": 200_000}),
    )
    items, _ = price(usage)
    by_name = {i.item: i for i in items}
    scale = 1e6 / 200  # a million timeline events are 5,000 runs of this one
    assert by_name["Lambda requests: Ingest"].usd_per_million == pytest.approx(100 * scale * 0.20 / 1e6)
    # 5 s at 0.5 GB = 2.5 GB-s; 2 s at 1 GB = 2 GB-s
    assert by_name["Lambda GB-s: Ingest"].quantity_per_million == pytest.approx(2.5 * scale)
    assert by_name["Lambda GB-s: Deliver"].usd_per_million == pytest.approx(2.0 * scale * 0.0000133334)
    assert by_name["SQS requests: Ingest:SendMessageBatch"].usd_per_million == pytest.approx(0.20)
    assert by_name["DynamoDB write units: Ingest:PutItem"].usd_per_million == pytest.approx(0.3125)
    assert by_name["DynamoDB read units: Deliver:GetItem"].usd_per_million == pytest.approx(
        5 * scale * 0.125 / 1e6
    )
    assert by_name["S3 PUT: event archive"].usd_per_million == pytest.approx(10 * scale * 0.005 / 1000)
    assert by_name["CloudWatch Logs ingested: json log lines"].usd_per_million == pytest.approx(
        200_000 * scale / 1e9 * 0.50
    )
    expected = (
        110 * scale * PRICES["lambda_request"]
        + 4.5 * scale * PRICES["lambda_gb_second_arm64"]
        + 0.20
        + 2 * 0.3125
        + 5 * scale * PRICES["dynamodb_read_unit"]
        + 10 * scale * PRICES["s3_put"]
        + 20_000 * scale / 1e9 * PRICES["s3_gb_month"]
        + 200_000 * scale / 1e9 * PRICES["logs_gb_ingested"]
    )
    assert total(items) == pytest.approx(expected)
    # two timeline events per webhook: a million webhooks cost twice as much
    assert per_webhook(items, usage) == pytest.approx(2 * expected)


def test_fixed_monthly_items_do_not_scale_with_events():
    usage = Usage(
        timeline_events=10,
        metrics={("WebhookAccepted", "source=hubspot"), ("WebhookAccepted", "source=slack")},
        secrets={("Ingest", "HUBSPOT_CLIENT_SECRET"), ("Route", "HUBSPOT_ACCESS_TOKEN")},
    )
    items, fixed = price(usage)
    assert total(items) == 0
    by_name = {f.item: f for f in fixed}
    assert by_name["CloudWatch custom metrics (EMF)"].usd_per_month == pytest.approx(0.60)
    assert by_name["Secrets Manager secrets stored"].usd_per_month == pytest.approx(0.80)
    # two pairs re-read every 300 s for 30 days
    calls = by_name["Secrets Manager GetSecretValue (cache refreshes)"]
    assert calls.quantity == 2 * 8_640
    assert calls.usd_per_month == pytest.approx(2 * 8_640 * 0.05 / 10_000)
