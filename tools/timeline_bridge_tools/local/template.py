"""template.yaml as data: the one list of queues, functions, secrets and tables.

The local runtime and the tests build their queues, tables, secrets and pollers from here, so
the SAM template stays the only place where they are declared.

- `load_template(path)` reads the YAML, CloudFormation short-form tags included (`!Ref X` becomes
  `{"Ref": "X"}`, `!GetAtt A.B` becomes `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` becomes
  `{"Fn::Sub": s}`, and so on).
- `queues`, `functions`, `secrets`, `tables`, `buckets` describe the resources, with SAM Globals
  applied and parameters resolved to their defaults (or to `parameters=` overrides).
- `resolve(value, template, refs=...)` evaluates intrinsic functions against the physical values
  the caller created (`refs`: logical id -> `Ref` value, `"Id.Attr"` -> `Fn::GetAtt` value).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "timeline-bridge-local",
    "AWS::URLSuffix": "amazonaws.com",
}

# Sentinel for `!Ref AWS::NoValue`: the surrounding key or list item disappears.
_NO_VALUE = object()

_SQS_DEFAULT_VISIBILITY = 30
_SQS_DEFAULT_RETENTION = 345600

# ---------------------------------------------------------------------------------- YAML


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _TemplateLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader plus the CloudFormation tags. Dates stay strings, as CloudFormation reads them."""


_TemplateLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML template into plain dicts (long-form intrinsics)."""
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError(f"{path}: not a CloudFormation template (no Resources)")
    return data


# ---------------------------------------------------------------------------------- resolving


def parameters(template: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Parameter values as CloudFormation passes them (strings): defaults, then `overrides`."""
    return _parameter_values(template, overrides)


def _parameter_values(template: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, str]:
    values = {
        name: _cfn_str(spec["Default"])
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    for name, value in (overrides or {}).items():
        values[name] = _cfn_str(value)
    return values


def resolve(
    value: Any,
    template: Mapping[str, Any],
    *,
    refs: Mapping[str, Any] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Any:
    """Evaluate the intrinsic functions in `value`.

    `refs` maps a logical id to its `Ref` value and `"Id.Attr"` to its `Fn::GetAtt` value;
    `parameters` overrides parameter defaults. Raises KeyError for a reference with no value.
    """
    params = _parameter_values(template, parameters)
    result = _Resolver(template, params, dict(refs or {})).eval(value)
    return None if result is _NO_VALUE else result


class _Resolver:
    def __init__(self, template: Mapping[str, Any], params: dict[str, str], refs: dict[str, Any]):
        self.template = template
        self.params = params
        self.refs = refs

    def eval(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.eval(item) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self.function(key[4:], arg)
        resolved = {k: self.eval(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.params:
            return self.params[name]
        if name in self.refs:
            return self.refs[name]
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        raise KeyError(f"no value for Ref {name!r}")

    def get_att(self, resource: str, attribute: str) -> Any:
        key = f"{resource}.{attribute}"
        if key not in self.refs:
            raise KeyError(f"no value for Fn::GetAtt {key!r}")
        return self.refs[key]

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise KeyError(f"unknown condition {name!r}")
        return bool(self.eval(conditions[name]))

    def function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self.get_att(resource, self.eval(attribute))
        if name == "If":
            cond, when_true, when_false = arg
            return self.eval(when_true if self.condition(cond) else when_false)
        if name == "Equals":
            left, right = (self.eval(v) for v in arg)
            return _cfn_str(left) == _cfn_str(right)
        if name == "Not":
            return not self.eval(arg[0])
        if name == "And":
            return all(self.eval(v) for v in arg)
        if name == "Or":
            return any(self.eval(v) for v in arg)
        if name == "Sub":
            return self.sub(arg)
        if name == "Join":
            delimiter, items = arg
            return str(delimiter).join(_cfn_str(v) for v in self.eval(items))
        if name == "Select":
            index, items = arg
            return self.eval(items)[int(self.eval(index))]
        if name == "Split":
            delimiter, text = arg
            return str(self.eval(text)).split(delimiter)
        raise ValueError(f"Fn::{name} is not supported by the local template resolver")

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        local = {k: self.eval(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in local:
                return _cfn_str(local[name])
            if "." in name and name.split(".", 1)[0] not in self.params:
                return _cfn_str(self.get_att(*name.split(".", 1)))
            return _cfn_str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def _cfn_str(value: Any) -> str:
    """A value as CloudFormation stringifies it (booleans lowercase)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------- resources


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """An SQS queue: what the local runtime needs to create an equivalent one."""

    logical_id: str
    visibility_timeout: int
    message_retention: int
    dead_letter_queue: str | None  # logical id of the redrive target
    max_receive_count: int | None
    fifo: bool
    sse: bool

    def attributes(self, dead_letter_arn: str | None = None) -> dict[str, str]:
        """`CreateQueue` attributes; `dead_letter_arn` is the ARN of the created redrive target."""
        attributes = {
            "VisibilityTimeout": str(self.visibility_timeout),
            "MessageRetentionPeriod": str(self.message_retention),
        }
        if self.dead_letter_queue:
            if not dead_letter_arn:
                raise ValueError(f"{self.logical_id} redrives to {self.dead_letter_queue}: pass its ARN")
            policy = {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": self.max_receive_count}
            attributes["RedrivePolicy"] = json.dumps(policy)
        return attributes


@dataclass(frozen=True, slots=True)
class EventSpec:
    """An SQS event source mapping feeding a function."""

    queue: str  # logical id of the queue
    batch_size: int
    batching_window: int
    function_response_types: tuple[str, ...]
    maximum_concurrency: int | None


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """A Lambda function with SAM Globals applied. `environment` keeps intrinsics unresolved:
    use `environment_for()` to get strings."""

    logical_id: str
    code_uri: str
    handler: str
    runtime: str
    architectures: tuple[str, ...]
    timeout: int
    memory_size: int
    environment: dict[str, Any]
    layers: tuple[Any, ...]
    function_url_auth: str | None
    reserved_concurrency: int | None
    events: tuple[EventSpec, ...] = field(default=())

    @property
    def handler_module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def handler_function(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def handler_dir(self, root: str | Path = ".") -> Path:
        """The folder holding the handler module, relative to the template's folder `root`."""
        return Path(root) / self.code_uri


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """A Secrets Manager secret and the names the bridge reads it by (`<NAME>_SECRET_ID`)."""

    logical_id: str
    names: tuple[str, ...]
    description: str
    parameter: str | None  # the NoEcho parameter that may supply its value


@dataclass(frozen=True, slots=True)
class TableSpec:
    logical_id: str
    partition_key: str
    partition_key_type: str
    ttl_attribute: str | None


@dataclass(frozen=True, slots=True)
class BucketSpec:
    logical_id: str
    name: str  # the template's BucketName, else the logical id lowercased (S3 names are lowercase)


def _resources(template: Mapping[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if isinstance(resource, dict) and resource.get("Type") in types
    }


def _props(resource: Mapping[str, Any]) -> dict[str, Any]:
    return dict(resource.get("Properties") or {})


def _int(value: Any, template: Mapping[str, Any], params: Mapping[str, Any] | None) -> int | None:
    resolved = resolve(value, template, parameters=params)
    return None if resolved is None else int(resolved)


def _logical_id(value: Any) -> str | None:
    """The logical id behind `!Ref X`, `!GetAtt X.Arn` or a literal name."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            return str(target[0] if isinstance(target, list) else str(target).split(".", 1)[0])
        return None
    return str(value) if value else None


def queues(
    template: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None
) -> dict[str, QueueSpec]:
    """Every AWS::SQS::Queue: logical id -> QueueSpec (parameters resolved)."""
    specs = {}
    for logical_id, resource in _resources(template, "AWS::SQS::Queue").items():
        props = _props(resource)
        redrive = props.get("RedrivePolicy") or {}
        visibility = props.get("VisibilityTimeout", _SQS_DEFAULT_VISIBILITY)
        retention = props.get("MessageRetentionPeriod", _SQS_DEFAULT_RETENTION)
        specs[logical_id] = QueueSpec(
            logical_id=logical_id,
            visibility_timeout=_int(visibility, template, parameters) or 0,
            message_retention=_int(retention, template, parameters) or 0,
            dead_letter_queue=_logical_id(redrive.get("deadLetterTargetArn")) if redrive else None,
            max_receive_count=_int(redrive["maxReceiveCount"], template, parameters)
            if redrive.get("maxReceiveCount") is not None
            else None,
            fifo=bool(resolve(props.get("FifoQueue", False), template, parameters=parameters)),
            sse=bool(props.get("SqsManagedSseEnabled")) or "KmsMasterKeyId" in props,
        )
    return specs


def _merge_globals(global_props: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """SAM's Globals rules: maps merge (the function wins), lists concatenate, scalars override."""
    merged = dict(global_props)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict) and not _is_intrinsic(value):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = [*base, *value]
        else:
            merged[key] = value
    return merged


def _is_intrinsic(value: Mapping[str, Any]) -> bool:
    if len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _event_spec(
    props: Mapping[str, Any], queue_key: str, template: Mapping[str, Any], params: Any
) -> EventSpec:
    scaling = props.get("ScalingConfig") or {}
    concurrency = scaling.get("MaximumConcurrency")
    return EventSpec(
        queue=_logical_id(props.get(queue_key)) or "",
        batch_size=_int(props.get("BatchSize", 10), template, params) or 10,
        batching_window=_int(props.get("MaximumBatchingWindowInSeconds", 0), template, params) or 0,
        function_response_types=tuple(props.get("FunctionResponseTypes") or ()),
        maximum_concurrency=_int(concurrency, template, params) if concurrency is not None else None,
    )


def functions(
    template: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None
) -> dict[str, FunctionSpec]:
    """Every AWS::Serverless::Function with Globals applied, and the SQS events that feed it
    (SAM `Events` of type SQS and standalone AWS::Lambda::EventSourceMapping resources)."""
    global_props = dict((template.get("Globals") or {}).get("Function") or {})
    events: dict[str, list[EventSpec]] = {}
    for resource in _resources(template, "AWS::Lambda::EventSourceMapping").values():
        props = _props(resource)
        target = _logical_id(props.get("FunctionName"))
        if target:
            events.setdefault(target, []).append(_event_spec(props, "EventSourceArn", template, parameters))

    specs = {}
    for logical_id, resource in _resources(template, "AWS::Serverless::Function").items():
        props = _merge_globals(global_props, _props(resource))
        own = [
            _event_spec(event.get("Properties") or {}, "Queue", template, parameters)
            for event in (props.get("Events") or {}).values()
            if event.get("Type") == "SQS"
        ]
        url = props.get("FunctionUrlConfig")
        reserved = resolve(props.get("ReservedConcurrentExecutions"), template, parameters=parameters)
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=str(props.get("CodeUri", "")),
            handler=str(props.get("Handler", "")),
            runtime=str(props.get("Runtime", "")),
            architectures=tuple(props.get("Architectures") or ("x86_64",)),
            timeout=_int(props.get("Timeout", 3), template, parameters) or 3,
            memory_size=_int(props.get("MemorySize", 128), template, parameters) or 128,
            environment=dict((props.get("Environment") or {}).get("Variables") or {}),
            layers=tuple(props.get("Layers") or ()),
            function_url_auth=str(url.get("AuthType")) if isinstance(url, dict) else None,
            reserved_concurrency=None if reserved is None else int(reserved),
            events=(*own, *events.get(logical_id, ())),
        )
    return specs


def environment_for(
    template: Mapping[str, Any],
    function: FunctionSpec,
    *,
    refs: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """The function's environment as Lambda would see it: intrinsics resolved, all strings."""
    resolved = resolve(function.environment, template, refs=refs, parameters=parameters) or {}
    return {name: _cfn_str(value) for name, value in resolved.items()}


def secrets(template: Mapping[str, Any]) -> dict[str, SecretSpec]:
    """Every AWS::SecretsManager::Secret, with the names functions read it by: a function
    environment entry `<NAME>_SECRET_ID: !Ref <secret>` makes `<NAME>` one of its names."""
    names: dict[str, set[str]] = {}
    for fn in functions(template).values():
        for variable, value in fn.environment.items():
            target = _logical_id(value) if isinstance(value, dict) and "Ref" in value else None
            if target and variable.endswith("_SECRET_ID"):
                names.setdefault(target, set()).add(variable.removesuffix("_SECRET_ID"))
    specs = {}
    for logical_id, resource in _resources(template, "AWS::SecretsManager::Secret").items():
        props = _props(resource)
        specs[logical_id] = SecretSpec(
            logical_id=logical_id,
            names=tuple(sorted(names.get(logical_id, ()))),
            description=str(props.get("Description", "")),
            parameter=_secret_parameter(props.get("SecretString")),
        )
    return specs


def _secret_parameter(value: Any) -> str | None:
    """`!Ref P` or `!If [C, !Ref P, default]` -> "P"."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::If" in value:
        for branch in value["Fn::If"][1:]:
            found = _secret_parameter(branch)
            if found:
                return found
    return None


def tables(template: Mapping[str, Any]) -> dict[str, TableSpec]:
    """Every AWS::DynamoDB::Table: its partition key and TTL attribute."""
    specs = {}
    for logical_id, resource in _resources(template, "AWS::DynamoDB::Table").items():
        props = _props(resource)
        key = next(k["AttributeName"] for k in props.get("KeySchema", []) if k.get("KeyType") == "HASH")
        types = {a["AttributeName"]: a["AttributeType"] for a in props.get("AttributeDefinitions", [])}
        ttl = props.get("TimeToLiveSpecification") or {}
        specs[logical_id] = TableSpec(
            logical_id=logical_id,
            partition_key=key,
            partition_key_type=types.get(key, "S"),
            ttl_attribute=ttl.get("AttributeName") if ttl.get("Enabled") else None,
        )
    return specs


def buckets(
    template: Mapping[str, Any], *, parameters: Mapping[str, Any] | None = None
) -> dict[str, BucketSpec]:
    """Every AWS::S3::Bucket and the name it gets: the template's `BucketName` when it sets one
    (resolved), else its logical id lowercased (CloudFormation would generate one)."""
    specs = {}
    for logical_id, resource in _resources(template, "AWS::S3::Bucket").items():
        named = _props(resource).get("BucketName")
        name = resolve(named, template, parameters=parameters) if named is not None else None
        specs[logical_id] = BucketSpec(logical_id=logical_id, name=str(name or logical_id.lower()))
    return specs


def layers(template: Mapping[str, Any]) -> dict[str, str]:
    """Every layer: logical id -> ContentUri. On Lambda a layer's files land in /opt (Python
    code under /opt/python), so a local run points /opt-based settings at these folders."""
    return {
        logical_id: str(_props(resource).get("ContentUri", ""))
        for logical_id, resource in _resources(
            template, "AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"
        ).items()
    }


def outputs(template: Mapping[str, Any]) -> dict[str, Any]:
    """Output name -> its (unresolved) value."""
    return {name: spec.get("Value") for name, spec in (template.get("Outputs") or {}).items()}
