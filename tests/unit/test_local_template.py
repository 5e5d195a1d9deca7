"""timeline_bridge_tools.local.template: CloudFormation YAML as data, Globals, intrinsics."""

from __future__ import annotations

import json
from pathlib import Path
from textwrap import dedent

import pytest
from cfnlint.decode import cfn_yaml
from timeline_bridge_tools.local.template import (
    BucketSpec,
    buckets,
    environment_for,
    functions,
    layers,
    load_template,
    outputs,
    parameters,
    queues,
    resolve,
    secrets,
    tables,
)

ROOT = Path(__file__).resolve().parents[2]

SMALL = dedent(
    """
    AWSTemplateFormatVersion: "2010-09-09"
    Transform: AWS::Serverless-2016-10-31
    Parameters:
      Receives: {Type: Number, Default: 7}
      Level: {Type: String, Default: INFO}
      Token: {Type: String, NoEcho: true, Default: ""}
      Tracing: {Type: String, Default: "false"}
    Conditions:
      HasToken: !Not [!Equals [!Ref Token, ""]]
      TracingOn: !Equals [!Ref Tracing, "true"]
    Globals:
      Function:
        Runtime: python3.12
        Architectures: [arm64]
        Handler: app.lambda_handler
        Timeout: 10
        Layers: [!Ref Core]
        Environment:
          Variables:
            LEVEL: !Ref Level
            TRACE: !If [TracingOn, "on", "off"]
            SHARED: global
    Resources:
      Core:
        Type: AWS::Serverless::LayerVersion
        Properties: {ContentUri: layers/core/}
      Work:
        Type: AWS::SQS::Queue
        Properties:
          VisibilityTimeout: 120
          RedrivePolicy:
            deadLetterTargetArn: !GetAtt WorkDead.Arn
            maxReceiveCount: !Ref Receives
      WorkDead:
        Type: AWS::SQS::Queue
      Table:
        Type: AWS::DynamoDB::Table
        Properties:
          KeySchema: [{AttributeName: id, KeyType: HASH}]
          AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
          TimeToLiveSpecification: {AttributeName: expiration, Enabled: true}
      ApiToken:
        Type: AWS::SecretsManager::Secret
        Properties:
          Description: the token
          SecretString: !If [HasToken, !Ref Token, "[]"]
      Worker:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: functions/worker/
          Timeout: 20
          Layers: [!Ref Extra]
          Environment:
            Variables:
              SHARED: own
              QUEUE_URL: !Ref Work
              API_TOKEN_SECRET_ID: !Ref ApiToken
              CONCURRENCY: !If [HasToken, 3, !Ref AWS::NoValue]
              SITE: !Sub "https://${AWS::Region}.example/${Work.QueueName}/${!literal}"
              JOINED: !Join [",", [a, !Ref Level]]
          Events:
            Jobs:
              Type: SQS
              Properties:
                Queue: !GetAtt Work.Arn
                BatchSize: 4
                FunctionResponseTypes: [ReportBatchItemFailures]
      Public:
        Type: AWS::Serverless::Function
        Properties:
          CodeUri: functions/public/
          FunctionUrlConfig: {AuthType: NONE}
      Mapping:
        Type: AWS::Lambda::EventSourceMapping
        Properties:
          FunctionName: !Ref Public
          EventSourceArn: !GetAtt WorkDead.Arn
          BatchSize: 50
          MaximumBatchingWindowInSeconds: 5
          ScalingConfig: {MaximumConcurrency: 2}
    Outputs:
      WorkUrl:
        Value: !Ref Work
      Released:
        Value: 2024-01-02
    """
)


@pytest.fixture
def small(tmp_path: Path) -> dict:
    path = tmp_path / "template.yaml"
    path.write_text(SMALL)
    return load_template(path)


def test_short_form_tags_become_long_form_intrinsics_when_loaded(small):
    work = small["Resources"]["Work"]["Properties"]["RedrivePolicy"]
    assert work == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["WorkDead", "Arn"]},
        "maxReceiveCount": {"Ref": "Receives"},
    }
    env = small["Resources"]["Worker"]["Properties"]["Environment"]["Variables"]
    assert env["JOINED"] == {"Fn::Join": [",", ["a", {"Ref": "Level"}]]}
    assert small["Conditions"]["HasToken"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Token"}, ""]}]}


def test_dates_stay_strings_when_unquoted(small):
    assert outputs(small)["Released"] == "2024-01-02"


def test_loading_fails_when_the_file_is_not_a_template(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("name: not a template\n")
    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(path)


def test_loader_agrees_with_cfn_lint_when_reading_the_project_template():
    def plain(node):
        if isinstance(node, dict):
            return {str(k): plain(v) for k, v in node.items()}
        if isinstance(node, list):
            return [plain(v) for v in node]
        return str(node) if isinstance(node, str) else node

    assert load_template(ROOT / "template.yaml") == plain(cfn_yaml.load(str(ROOT / "template.yaml")))


def test_parameters_are_strings_when_defaulted_or_overridden(small):
    assert parameters(small)["Receives"] == "7"
    assert parameters(small, {"Receives": 9, "Tracing": True})["Tracing"] == "true"


def test_queues_resolve_redrive_and_defaults_when_parameters_change(small):
    specs = queues(small)
    assert specs["Work"].visibility_timeout == 120
    assert (specs["Work"].dead_letter_queue, specs["Work"].max_receive_count) == ("WorkDead", 7)
    assert specs["WorkDead"].visibility_timeout == 30 and specs["WorkDead"].dead_letter_queue is None
    assert specs["Work"].fifo is False and specs["Work"].sse is False
    assert queues(small, parameters={"Receives": 11})["Work"].max_receive_count == 11


def test_queue_attributes_carry_the_redrive_policy_when_given_the_dead_letter_arn(small):
    attributes = queues(small)["Work"].attributes("arn:aws:sqs:local:1:dead")
    assert attributes["VisibilityTimeout"] == "120"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:local:1:dead",
        "maxReceiveCount": 7,
    }
    with pytest.raises(ValueError, match="WorkDead"):
        queues(small)["Work"].attributes()


def test_functions_apply_globals_when_the_function_sets_its_own_values(small):
    worker = functions(small)["Worker"]
    assert (worker.runtime, worker.architectures, worker.handler, worker.timeout) == (
        "python3.12",
        ("arm64",),
        "app.lambda_handler",
        20,
    )
    assert worker.layers == ({"Ref": "Core"}, {"Ref": "Extra"})
    assert worker.environment["SHARED"] == "own" and worker.environment["LEVEL"] == {"Ref": "Level"}
    assert (worker.handler_module, worker.handler_function) == ("app", "lambda_handler")
    assert worker.handler_dir(Path("/project")) == Path("/project/functions/worker")
    assert functions(small)["Public"].timeout == 10


def test_functions_collect_sqs_events_when_declared_either_way(small):
    fns = functions(small)
    (jobs,) = fns["Worker"].events
    assert (jobs.queue, jobs.batch_size, jobs.batching_window, jobs.maximum_concurrency) == (
        "Work",
        4,
        0,
        None,
    )
    assert jobs.function_response_types == ("ReportBatchItemFailures",)
    (mapping,) = fns["Public"].events
    assert (mapping.queue, mapping.batch_size, mapping.batching_window, mapping.maximum_concurrency) == (
        "WorkDead",
        50,
        5,
        2,
    )
    assert (fns["Public"].function_url_auth, fns["Worker"].function_url_auth) == ("NONE", None)


def test_environment_resolves_refs_conditions_and_subs_when_given_physical_values(small):
    refs = {"Work": "http://local/work", "Work.QueueName": "work", "ApiToken": "arn:token"}
    env = environment_for(small, functions(small)["Worker"], refs=refs)
    assert env == {
        "LEVEL": "INFO",
        "TRACE": "off",
        "SHARED": "own",
        "QUEUE_URL": "http://local/work",
        "API_TOKEN_SECRET_ID": "arn:token",
        "SITE": "https://us-east-1.example/work/${literal}",
        "JOINED": "a,INFO",
    }
    traced = environment_for(
        small, functions(small)["Worker"], refs=refs, parameters={"Tracing": "true", "Token": "x"}
    )
    assert (traced["TRACE"], traced["CONCURRENCY"]) == ("on", "3")


def test_resolve_raises_when_a_reference_has_no_value(small):
    with pytest.raises(KeyError, match="Work"):
        resolve({"Ref": "Work"}, small)
    with pytest.raises(KeyError, match=r"Work\.Arn"):
        resolve({"Fn::GetAtt": ["Work", "Arn"]}, small)
    with pytest.raises(ValueError, match="Fn::Base64"):
        resolve({"Fn::Base64": "x"}, small)


def test_secrets_know_their_names_and_parameter_when_functions_reference_them(small):
    (spec,) = secrets(small).values()
    assert (spec.logical_id, spec.names, spec.parameter, spec.description) == (
        "ApiToken",
        ("API_TOKEN",),
        "Token",
        "the token",
    )
    assert resolve(small["Resources"]["ApiToken"]["Properties"]["SecretString"], small) == "[]"


def test_tables_and_layers_are_described_when_present(small):
    (table,) = tables(small).values()
    assert (table.logical_id, table.partition_key, table.partition_key_type, table.ttl_attribute) == (
        "Table",
        "id",
        "S",
        "expiration",
    )
    assert layers(small) == {"Core": "layers/core/"}


def test_buckets_are_named_as_the_template_names_them_else_by_their_logical_id():
    template = load_template(ROOT / "template.yaml")
    assert buckets(template) == {
        "EventsArchiveBucket": BucketSpec(logical_id="EventsArchiveBucket", name="eventsarchivebucket")
    }
    template["Resources"]["EventsArchiveBucket"]["Properties"]["BucketName"] = {
        "Fn::Sub": "${AWS::StackName}-archive"
    }
    assert buckets(template)["EventsArchiveBucket"].name == "timeline-bridge-local-archive"
