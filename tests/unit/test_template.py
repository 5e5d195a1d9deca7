"""template.yaml: the properties the guarantees rest on (encryption, redrive, visibility, partial
batch responses, least privilege, public URLs, alarms, outputs the CLI reads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import SOURCES, TARGETS, config
from timeline_bridge.config import Settings
from timeline_bridge.target_registry import default_base_urls
from timeline_bridge_tools.local.template import (
    environment_for,
    functions,
    load_template,
    parameters,
    queues,
    resolve,
    secrets,
)

ROOT = Path(__file__).resolve().parents[2]

WEBHOOK_FUNCTIONS = {f"{s.capitalize()}WebhookFunction": s for s in SOURCES}
DELIVER_FUNCTIONS = {f"{t.capitalize()}DeliverFunction": t for t in TARGETS}

# Which secrets each function may read: its own, nothing else.
OWN_SECRETS = {
    "HubspotWebhookFunction": {"HubspotClientSecret"},
    "SlackWebhookFunction": {"SlackSigningSecret"},
    "PipedriveWebhookFunction": {"PipedriveBasicAuth"},
    "SalesforceWebhookFunction": {"SalesforceWebhookToken"},
    "GenericWebhookFunction": {"GenericWebhookSecret", "GenericEndpointSecrets"},
    "RouteFunction": {"HubspotAccessToken", "SlackBotToken"},
    "StoraDeliverFunction": {"StoraToken"},
    "HubspotDeliverFunction": {"HubspotAccessToken"},
    "MatterDeliverFunction": {"MatterApiKey"},
    "AppliedDeliverFunction": {"AppliedApiKey"},
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(ROOT / "template.yaml")


def _policies(template: dict[str, Any], function: str, kind: str) -> list[dict[str, Any]]:
    props = template["Resources"][function]["Properties"]
    return [p[kind] for p in props.get("Policies", []) if isinstance(p, dict) and kind in p]


def _queue_of(policy: dict[str, Any]) -> str:
    return policy["QueueName"]["Fn::GetAtt"][0]


def _dead_letter_queues(template: dict[str, Any]) -> set[str]:
    return {q.dead_letter_queue for q in queues(template).values() if q.dead_letter_queue}


def test_every_queue_is_encrypted_when_created(template):
    specs = queues(template)
    assert len(specs) == 10
    assert all(template["Resources"][q]["Properties"].get("SqsManagedSseEnabled") is True for q in specs)


def test_every_consumed_queue_redrives_to_a_dead_letter_queue_after_at_least_five_receives(template):
    specs = queues(template)
    dead_letter = _dead_letter_queues(template)
    assert dead_letter == {"EventsDeadLetterQueue"} | {
        f"{t.capitalize()}DeliveryDeadLetterQueue" for t in TARGETS
    }
    for logical_id, spec in specs.items():
        if logical_id in dead_letter:
            assert spec.dead_letter_queue is None
            assert spec.message_retention == 14 * 24 * 3600
        else:
            assert spec.dead_letter_queue in specs
            assert spec.max_receive_count is not None and spec.max_receive_count >= 5
            assert spec.fifo is False
    assert template["Parameters"]["MaxReceiveCount"]["MinValue"] >= 5


def test_dead_letters_outlive_their_source_queue_when_moved(template):
    # A dead-lettered message keeps its original enqueue time, so the DLQ must keep it longer.
    specs = queues(template)
    for spec in specs.values():
        if spec.dead_letter_queue:
            assert specs[spec.dead_letter_queue].message_retention > spec.message_retention


def test_visibility_timeout_is_six_times_the_consumer_timeout_when_a_function_polls_the_queue(template):
    specs = queues(template)
    consumed = set()
    for fn in functions(template).values():
        for event in fn.events:
            consumed.add(event.queue)
            assert specs[event.queue].visibility_timeout >= 6 * fn.timeout, (fn.logical_id, event.queue)
    assert consumed == {q for q, spec in specs.items() if spec.dead_letter_queue}


def test_every_sqs_event_reports_batch_item_failures(template):
    events = [e for fn in functions(template).values() for e in fn.events]
    assert len(events) == 1 + len(TARGETS)
    assert all(e.function_response_types == ("ReportBatchItemFailures",) for e in events)


def test_each_delivery_queue_feeds_its_own_target_when_polled(template):
    fns = functions(template)
    assert [e.queue for e in fns["RouteFunction"].events] == ["EventsQueue"]
    for logical_id, target in DELIVER_FUNCTIONS.items():
        fn = fns[logical_id]
        assert fn.code_uri == "functions/deliver/"
        assert fn.environment["TARGET"] == target
        assert [e.queue for e in fn.events] == [f"{target.capitalize()}DeliveryQueue"]


def test_delivery_concurrency_protects_provider_limits_when_defaults_are_used(template):
    fns = functions(template)
    for logical_id in DELIVER_FUNCTIONS:
        (event,) = fns[logical_id].events
        assert event.maximum_concurrency is not None and event.maximum_concurrency >= 2
    (stora,) = fns["StoraDeliverFunction"].events
    assert stora.maximum_concurrency == 2 and stora.batch_size <= 10
    (hubspot,) = fns["HubspotDeliverFunction"].events
    assert hubspot.batch_size == 100 and hubspot.batching_window >= 1


def test_hubspot_delivery_paces_under_the_configured_limit_when_deployed(template, monkeypatch):
    from timeline_bridge.delivery import rate_limits

    fns = functions(template)
    setting = fns["HubspotDeliverFunction"].environment["HUBSPOT_RATE_LIMITS"]
    for name in ("DELIVERY_RATE_TIME_SCALE", "DELIVERY_PACE_FRACTION", "HUBSPOT_MAX_REQUESTS_PER_SECOND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DELIVER_MAX_CONCURRENCY", "1")
    monkeypatch.delenv("HUBSPOT_RATE_LIMITS", raising=False)
    unset = rate_limits("hubspot", Settings.from_environ().pacing)

    monkeypatch.setenv("HUBSPOT_RATE_LIMITS", resolve(setting, template))
    assert (
        rate_limits("hubspot", Settings.from_environ().pacing) == unset == ((80, 10.0),)
    )  # 100 per 10 s, the lowest tier
    monkeypatch.setenv(
        "HUBSPOT_RATE_LIMITS", resolve(setting, template, parameters={"HubspotRateLimits": "190/10"})
    )
    assert rate_limits("hubspot", Settings.from_environ().pacing) == ((152, 10.0),)
    environments = [fns[f].environment for f in (*DELIVER_FUNCTIONS, *WEBHOOK_FUNCTIONS, "RouteFunction")]
    assert sum("HUBSPOT_RATE_LIMITS" in env for env in environments) == 1  # the deliverer only


def test_webhook_functions_reserve_concurrency_when_defaults_are_used(template):
    for logical_id, fn in functions(template).items():
        if logical_id in WEBHOOK_FUNCTIONS:
            assert fn.reserved_concurrency is not None and fn.reserved_concurrency > 0
    assert (
        functions(template, parameters={"WebhookReservedConcurrency": 0})[
            "HubspotWebhookFunction"
        ].reserved_concurrency
        is None
    )


def test_function_urls_are_public_only_on_the_source_functions(template):
    public = {k: fn.function_url_auth for k, fn in functions(template).items() if fn.function_url_auth}
    assert public == dict.fromkeys(WEBHOOK_FUNCTIONS, "NONE")
    for logical_id, source in WEBHOOK_FUNCTIONS.items():
        assert functions(template)[logical_id].code_uri == f"functions/{source}/"


def test_every_function_runs_python312_on_arm64_with_the_core_layer(template):
    fns = functions(template)
    assert set(fns) == set(WEBHOOK_FUNCTIONS) | set(DELIVER_FUNCTIONS) | {"RouteFunction"}
    for fn in fns.values():
        assert (fn.runtime, fn.architectures, fn.handler) == ("python3.12", ("arm64",), "app.lambda_handler")
        assert {"Ref": "CoreLayer"} in fn.layers
    assert {"Ref": "MappingsLayer"} in fns["RouteFunction"].layers
    # Mapping files get a folder of their own under /opt: the loader walks it recursively.
    assert fns["RouteFunction"].environment["BRIDGE_MAPPINGS_DIR"] == "/opt/mappings"
    layer = template["Resources"]["CoreLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_functions_read_only_their_own_secrets(template):
    for logical_id, fn in functions(template).items():
        referenced = {v["Ref"] for k, v in fn.environment.items() if k.endswith("_SECRET_ID")}
        allowed = {
            p["SecretArn"]["Ref"]
            for p in _policies(template, logical_id, "AWSSecretsManagerGetSecretValuePolicy")
        }
        assert referenced == allowed == OWN_SECRETS[logical_id], logical_id


def test_no_function_environment_holds_a_secret_value(template):
    names = {n for spec in secrets(template).values() for n in spec.names}
    assert len(names) == len(secrets(template)) == 11
    for fn in functions(template).values():
        assert not names & set(fn.environment), fn.logical_id


def test_secrets_fail_closed_when_their_parameter_is_empty(template):
    for spec in secrets(template).values():
        value = template["Resources"][spec.logical_id]["Properties"]["SecretString"]
        assert spec.parameter and template["Parameters"][spec.parameter]["NoEcho"] is True
        assert config.parse_secret_value(resolve(value, template)) == []
        assert resolve(value, template, parameters={spec.parameter: "s3cr3t"}) == "s3cr3t"


def test_sqs_permissions_reach_only_the_functions_own_queues(template):
    delivery = {f"{t.capitalize()}DeliveryQueue" for t in TARGETS}
    delivery_dlqs = {f"{t.capitalize()}DeliveryDeadLetterQueue" for t in TARGETS}
    for logical_id in functions(template):
        sends = {_queue_of(p) for p in _policies(template, logical_id, "SQSSendMessagePolicy")}
        polls = {_queue_of(p) for p in _policies(template, logical_id, "SQSPollerPolicy")}
        if logical_id in WEBHOOK_FUNCTIONS:
            assert (sends, polls) == ({"EventsQueue"}, set())
        elif logical_id == "RouteFunction":
            assert (sends, polls) == (delivery | delivery_dlqs, {"EventsQueue"})
        else:
            name = DELIVER_FUNCTIONS[logical_id].capitalize()
            # Its own queue too: a retry is re-enqueued with its state (timeline_bridge.delivery).
            own = {f"{name}DeliveryQueue", f"{name}DeliveryDeadLetterQueue"}
            assert (sends, polls) == (own, {f"{name}DeliveryQueue"})


def test_idempotency_table_matches_the_powertools_schema(template):
    props = template["Resources"]["IdempotencyTable"]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    for logical_id, fn in functions(template).items():
        tables = {p["TableName"]["Ref"] for p in _policies(template, logical_id, "DynamoDBCrudPolicy")}
        assert "IDEMPOTENCY_TABLE" in fn.environment, logical_id
        # The route function only counts Slack replies there (REPLY_BUDGET_WRITE), nothing else.
        assert tables == (set() if logical_id == "RouteFunction" else {"IdempotencyTable"}), logical_id
    assert REPLY_BUDGET_WRITE in template["Resources"]["RouteFunction"]["Properties"]["Policies"]


def _alarms(template, namespace):
    return [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == namespace
    ]


def test_one_alarm_per_dead_letter_queue_when_any_message_arrives(template):
    alarms = _alarms(template, "AWS/SQS")
    watched = [a["Dimensions"][0]["Value"]["Fn::GetAtt"][0] for a in alarms]
    assert sorted(watched) == sorted(_dead_letter_queues(template))
    for alarm in alarms:
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_one_alarm_per_target_when_its_credential_is_rejected(template):
    from timeline_bridge.delivery import METRIC_CREDENTIALS_REJECTED

    alarms = _alarms(
        template, template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"]
    )
    assert sorted(a["Dimensions"][0]["Value"] for a in alarms) == sorted(TARGETS)
    every = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert len(every) == len(alarms) + len(_dead_letter_queues(template))
    for alarm in alarms:
        assert (
            alarm["MetricName"] == METRIC_CREDENTIALS_REJECTED and alarm["Dimensions"][0]["Name"] == "target"
        )
        assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
            "Sum",
            "GreaterThanThreshold",
            0,
        )


def test_outputs_name_every_queue_the_dlq_command_reads(template):
    outputs = template["Outputs"]
    expected = {"EventsQueueUrl": "EventsQueue", "EventsDeadLetterQueueUrl": "EventsDeadLetterQueue"}
    for target in TARGETS:
        name = target.capitalize()
        expected[f"{name}DeliveryQueueUrl"] = f"{name}DeliveryQueue"
        expected[f"{name}DeliveryDeadLetterQueueUrl"] = f"{name}DeliveryDeadLetterQueue"
    for output, queue in expected.items():
        assert outputs[output]["Value"] == {"Ref": queue}
    for source in SOURCES:
        assert f"{source.capitalize()}WebhookUrl" in outputs
    refs = {"GenericWebhookFunctionUrl.FunctionUrl": "https://abc.lambda-url.eu-west-1.on.aws/"}
    url = resolve(outputs["GenericWebhookUrl"]["Value"], template, refs=refs)
    assert url == "https://abc.lambda-url.eu-west-1.on.aws/generic/"


def test_deliver_environment_satisfies_the_settings_contract_when_deployed(template, monkeypatch):
    refs: dict[str, str] = {q: f"https://sqs.local/{q}" for q in queues(template)}
    refs |= {s: f"arn:aws:secretsmanager:local:{s}" for s in secrets(template)}
    refs["IdempotencyTable"] = "idempotency"
    defaults = parameters(template)
    for logical_id, target in DELIVER_FUNCTIONS.items():
        env = environment_for(template, functions(template)[logical_id], refs=refs)
        for name in list(os.environ):
            if name.endswith(("_QUEUE_URL", "_DLQ_URL", "_BASE_URL")):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        queue = f"{target.capitalize()}DeliveryQueue"
        settings = config.Settings.from_environ()
        assert settings.queue_url(target) == refs[queue]
        assert (
            settings.queue_url(target, dead_letter=True)
            == refs[f"{target.capitalize()}DeliveryDeadLetterQueue"]
        )
        assert (
            settings.base_url(target)
            == defaults[f"{target.capitalize()}BaseUrl"]
            == default_base_urls()[target]
        )
        assert env["POWERTOOLS_TRACE_DISABLED"] == "true" and env["BRIDGE_TRACING"] == "false"


def test_only_the_route_reads_the_identity_map_when_enriching(template):
    for logical_id, fn in functions(template).items():
        reads = {p["TableName"]["Ref"] for p in _policies(template, logical_id, "DynamoDBReadPolicy")}
        expected = {"IdentityTable"} if logical_id == "RouteFunction" else set()
        assert reads == expected, logical_id
        assert ("IDENTITY_TABLE" in fn.environment) == (logical_id == "RouteFunction")
    assert template["Outputs"]["IdentityTableName"]["Value"] == {"Ref": "IdentityTable"}


# --- security properties (SECURITY.md) -------------------------------------------------------------

# The one inline statement a function may have: the route's archive writes, new objects under
# events/ of the archive bucket (SAM's S3 templates grant ACL and lifecycle changes too).
ARCHIVE_WRITE = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": {"Fn::Sub": "${EventsArchiveBucket.Arn}/events/*"},
        }
    ]
}

# The route function's one write to the dedupe table: the reply budget counters (reply# items).
REPLY_BUDGET_WRITE = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "dynamodb:UpdateItem",
            "Resource": {"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
            "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["reply#*"]}},
        }
    ]
}

# The only other policy kinds a function may have: SAM templates scoped to one named resource each.
SCOPED_POLICIES = {
    "SQSSendMessagePolicy": "QueueName",
    "SQSPollerPolicy": "QueueName",
    "DynamoDBCrudPolicy": "TableName",
    "DynamoDBReadPolicy": "TableName",
    "AWSSecretsManagerGetSecretValuePolicy": "SecretArn",
}


def test_every_checkov_skip_names_its_check_and_reason_when_a_finding_is_accepted(template):
    skipped = 0
    for logical_id, resource in template["Resources"].items():
        for skip in (resource.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            skipped += 1
            assert str(skip.get("id", "")).startswith("CKV_AWS_"), logical_id
            assert len(str(skip.get("comment", "")).split()) >= 6, (logical_id, skip.get("id"))
    assert skipped > 0


def test_function_policies_are_scoped_templates_only_when_deployed(template):
    for logical_id in functions(template):
        props = template["Resources"][logical_id]["Properties"]
        for policy in props.get("Policies", []):
            if logical_id == "RouteFunction" and policy in (ARCHIVE_WRITE, REPLY_BUDGET_WRITE):
                continue
            # No managed policy by name or ARN, no inline statement with its own resources.
            assert isinstance(policy, dict) and len(policy) == 1, (logical_id, policy)
            ((kind, arguments),) = policy.items()
            assert kind in SCOPED_POLICIES, (logical_id, kind)
            target = arguments[SCOPED_POLICIES[kind]]
            assert isinstance(target, dict) and set(target) <= {"Ref", "Fn::GetAtt"}, (logical_id, kind)
        assert "Role" not in props and "PermissionsBoundary" not in props, logical_id


def test_function_urls_buffer_requests_without_cors_when_public(template):
    for logical_id in WEBHOOK_FUNCTIONS:
        url_config = template["Resources"][logical_id]["Properties"]["FunctionUrlConfig"]
        assert url_config == {"AuthType": "NONE", "InvokeMode": "BUFFERED"}, logical_id  # no Cors


def test_no_function_logs_events_or_debug_when_defaults_are_used(template):
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in env
    assert template["Parameters"]["LogLevel"]["Default"] == "INFO"
    for fn in functions(template).values():
        assert fn.environment.get("POWERTOOLS_LOGGER_LOG_EVENT", "false") == "false", fn.logical_id
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        assert "@logger.inject_lambda_context(log_event=False)" in app.read_text(), app


def test_every_table_is_encrypted_with_point_in_time_recovery_when_created(template):
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 2
    for table in tables:
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
        assert table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# --- the event archive ------------------------------------------------------------------------------


def _archive_rules(template: dict[str, Any], retention_days: int) -> list[dict[str, Any]]:
    """The archive bucket's lifecycle rules as deployed with `ArchiveRetentionDays=retention_days`."""
    lifecycle = template["Resources"]["EventsArchiveBucket"]["Properties"]["LifecycleConfiguration"]
    return resolve(lifecycle, template, parameters={"ArchiveRetentionDays": retention_days})["Rules"]


def test_archive_retention_is_set_from_the_parameter_and_0_keeps_forever(template):
    assert template["Parameters"]["ArchiveRetentionDays"]["Default"] == 30
    assert template["Parameters"]["ArchiveRetentionDays"]["MinValue"] == 0

    def expiry(rules: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(r["Prefix"], r["ExpirationInDays"]) for r in rules if "ExpirationInDays" in r]

    assert expiry(_archive_rules(template, 30)) == [("events/", "30")]
    assert expiry(_archive_rules(template, 400)) == [("events/", "400")]
    assert expiry(_archive_rules(template, 0)) == []
    assert all(r["Status"] == "Enabled" for r in _archive_rules(template, 0))


def test_archive_bucket_is_private_encrypted_tls_only_and_kept_when_the_stack_goes(template):
    bucket = template["Resources"]["EventsArchiveBucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    (policy,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == {"Ref": "EventsArchiveBucket"}
    ]
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["EventsArchiveBucket", "Arn"]},
        {"Fn::Sub": "${EventsArchiveBucket.Arn}/*"},
    ]


def test_only_the_route_writes_the_archive_and_only_new_objects_under_events(template):
    for logical_id, fn in functions(template).items():
        policies = template["Resources"][logical_id]["Properties"].get("Policies", [])
        is_route = logical_id == "RouteFunction"
        assert (ARCHIVE_WRITE in policies) == is_route, logical_id
        assert ("EVENTS_ARCHIVE_BUCKET" in fn.environment) == is_route, logical_id
    route = functions(template)["RouteFunction"]
    assert route.environment["EVENTS_ARCHIVE_BUCKET"] == {"Ref": "EventsArchiveBucket"}
    assert template["Outputs"]["EventsArchiveBucketName"]["Value"] == {"Ref": "EventsArchiveBucket"}


def test_env_json_sets_every_stack_resource_each_function_reads_by_its_stack_output(template):
    # `sam local invoke --env-vars` only overrides variables the function declares, and a Ref to
    # a stack resource means nothing off the stack: env.json names the output holding each value.
    import json

    named = {
        output["Value"]["Ref"]: name
        for name, output in template["Outputs"].items()
        if isinstance(output["Value"], dict) and "Ref" in output["Value"]
    }
    expected = {
        logical_id: {
            name: f"<{named[value['Ref']]}>"
            for name, value in fn.environment.items()
            if isinstance(value, dict) and value.get("Ref") in named
        }
        for logical_id, fn in functions(template).items()
    }
    assert json.loads((ROOT / "env.json").read_text()) == expected


def test_generic_endpoints_are_configured_from_the_parameter_and_their_secret_when_deployed(template):
    import re

    refs = {s: f"arn:aws:secretsmanager:local:{s}" for s in secrets(template)}
    refs |= {"EventsQueue": "https://sqs.local/events", "IdempotencyTable": "idempotency"}
    generic = functions(template)["GenericWebhookFunction"]
    pairs = "GENERIC_GITHUB_SCHEME=hmac,GENERIC_GITHUB_PREFIX=sha256="

    deployed = environment_for(template, generic, refs=refs, parameters={"GenericEndpointSettings": pairs})
    settings = Settings.from_environ(deployed)

    assert settings.generic_endpoint("github") == {"SCHEME": "hmac", "PREFIX": "sha256="}
    assert deployed["BRIDGE_GENERIC_SECRETS_SECRET_ID"] == refs["GenericEndpointSecrets"]
    assert (
        Settings.from_environ(environment_for(template, generic, refs=refs)).generic_endpoint("github") == {}
    )
    # The parameter's pattern is the one the settings parse: what deploys also starts.
    pattern = template["Parameters"]["GenericEndpointSettings"]["AllowedPattern"]
    assert re.fullmatch(pattern, pairs) and re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "GITHUB_SCHEME=hmac") and not re.fullmatch(pattern, "GENERIC_A_SCHEME")
    for function in set(functions(template)) - {"GenericWebhookFunction"}:
        assert "BRIDGE_GENERIC_SETTINGS" not in functions(template)[function].environment, function
