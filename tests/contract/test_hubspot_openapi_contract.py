"""Every HubSpot request the shipped mappings produce, validated with an OpenAPI validator.

Each sample under events/, and each case of the HubSpot mappings that renders a body, goes
through the shipped mappings; the HubSpot jobs are delivered by the HubSpot client to the local
sandbox, in batches and one by one, and every request body that went out is validated against:

- `tests/contract/hubspot/timeline-requests.openapi.json`, which this project wrote from the
  field lists of HubSpot's v3 and 2026-03 timeline specifications: always;
- HubSpot's own specifications, when `HUBSPOT_OPENAPI_SPECS` names a folder holding them, either
  a clone of HubSpot's public API spec collection (HubSpot/HubSpot-public-api-spec-collection:
  `PublicApiSpecs/CRM/Timeline/Rollouts/147898/{v3,2026-03}/timeline.json`) or a folder with
  `v3/timeline.json` and `2026-03/timeline.json`. Their licence keeps them out of this
  repository. With them, the project's document is also checked field by field against theirs.

The validator must refuse what HubSpot's specs refuse (a numeric token, a missing id): the
negative cases below prove it would have caught those.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30WriteValidator
from openapi_spec_validator import validate as validate_openapi_document
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from timeline_bridge.config import Settings
from timeline_bridge.mapping import load_mappings
from timeline_bridge.mapping.contracts import contract_schema
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.hubspot import APIS, HubspotClient, api_for, default_api
from timeline_bridge_tools.mapping.cases import case_envelope, cases_path, load_cases
from timeline_bridge_tools.mapping.samples import SampleError, envelopes_from_file

ROOT = Path(__file__).resolve().parents[2]
PROJECT_CONTRACT = Path(__file__).resolve().parent / "hubspot" / "timeline-requests.openapi.json"
SPECS_ENV = "HUBSPOT_OPENAPI_SPECS"
SPEC_IN_COLLECTION = "PublicApiSpecs/CRM/Timeline/Rollouts/147898/{version}/timeline.json"
VERSIONS = tuple(APIS)  # v3, 2026-03
URN = "urn:timeline-bridge:openapi"
# The create calls of each API: (single, batch).
PATHS = {name: (api.single, api.batch) for name, api in APIS.items()}
TARGET_CONTRACTS = {"v3": "hubspot", "2026-03": "hubspot-2026-03"}


def _version_of(path: str) -> str:
    return next(name for name, paths in PATHS.items() if path in paths)


def hubspot_spec(version: str) -> dict[str, Any] | None:
    """HubSpot's own spec of `version` from HUBSPOT_OPENAPI_SPECS; None when that is not set."""
    root = os.environ.get(SPECS_ENV, "").strip()
    if not root:
        return None
    candidates = [
        Path(root) / SPEC_IN_COLLECTION.format(version=version),
        Path(root) / version / "timeline.json",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    raise AssertionError(
        f"{SPECS_ENV}={root}: no {version} timeline spec at {' or '.join(map(str, candidates))}"
    )


def _documents(version: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "project", json.loads(PROJECT_CONTRACT.read_text(encoding="utf-8"))
    spec = hubspot_spec(version)
    if spec is not None:
        yield f"hubspot {version}", spec


def _contracts() -> list[Any]:
    """The documents the requests are validated against, as pytest params (HubSpot's skipped
    unless HUBSPOT_OPENAPI_SPECS is set)."""
    given = bool(os.environ.get(SPECS_ENV, "").strip())
    skip = pytest.mark.skipif(
        not given, reason=f"{SPECS_ENV} is not set (HubSpot's specs are not in the repo)"
    )
    return [
        pytest.param("project", id="project-contract"),
        pytest.param("hubspot", id="hubspot-specs", marks=skip),
    ]


def _document(which: str, version: str) -> dict[str, Any]:
    if which == "project":
        return json.loads(PROJECT_CONTRACT.read_text(encoding="utf-8"))
    spec = hubspot_spec(version)
    assert spec is not None
    return spec


def _request_pointer(path: str) -> str:
    escaped = path.replace("~", "~0").replace("/", "~1")
    return f"/paths/{escaped}/post/requestBody/content/application~1json/schema"


def request_validator(document: dict[str, Any], path: str) -> OAS30WriteValidator:
    """An OpenAPI 3.0 validator of the request body of POST `path`, as `document` declares it."""
    registry = Registry().with_resource(URN, Resource.from_contents(document, default_specification=DRAFT4))
    schema = {"$ref": f"{URN}#{_request_pointer(path)}"}
    return OAS30WriteValidator(schema, registry=registry, format_checker=OAS30WriteValidator.FORMAT_CHECKER)


def _deref(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def _event_schema(document: dict[str, Any], version: str) -> dict[str, Any]:
    """The schema of one event (the single create's body) in `document`."""
    node: Any = document
    for part in _request_pointer(PATHS[version][0]).lstrip("/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return _deref(document, node)


def _problems(validator: OAS30WriteValidator, body: Any) -> list[str]:
    return sorted(
        f"{'.'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in validator.iter_errors(body)
    )


# --- the requests the shipped mappings produce ------------------------------------------------


def shipped_hubspot_jobs() -> list[DeliveryJob]:
    """One HubSpot job per (event, mapping): every sample under events/ through the shipped
    mappings, and every case of the HubSpot mappings that expects a body."""
    mappings = load_mappings(ROOT / "mappings")
    jobs: dict[str, DeliveryJob] = {}
    samples = sorted((ROOT / "events").glob("*/*.json"))
    assert samples
    for sample in samples:
        try:
            envelopes = envelopes_from_file(sample.parent.name, sample)
        except SampleError:
            continue  # a handshake (Slack's url_verification) carries no event
        for envelope in envelopes:
            for outcome in mappings.render_jobs(envelope, no_enrichment):
                if isinstance(outcome, DeliveryJob) and outcome.target == "hubspot":
                    jobs[outcome.key] = outcome
    for mapping in mappings:
        if mapping.target != "hubspot":
            continue
        for case in load_cases(cases_path(ROOT / mapping.file)):
            if {"output", "contains"} & set(case.expect):
                job = mapping.render(case_envelope(case, mapping, ROOT), dict(case.enrichment))
                jobs[job.key] = job
    return list(jobs.values())


@pytest.fixture
def sent_requests(hubspot: Any, client_from_environ: Any) -> list[dict[str, Any]]:
    """Every create request the HubSpot client sent for the shipped jobs: all of them at once
    (batches per API and template or type), then each alone."""
    jobs = shipped_hubspot_jobs()
    default = default_api(Settings.from_environ())
    apis = {api_for(job.body, default).name for job in jobs}
    assert apis == set(VERSIONS), f"the shipped mappings should write both APIs, they write {apis}"
    client = client_from_environ(HubspotClient)
    outcomes = client.send(jobs)
    for job in jobs:
        outcomes += client.send([job])
    refused = [o for o in outcomes if not isinstance(o, Delivered)]
    assert not refused, refused
    sent = [r for r in hubspot.requests if r["method"] == "POST" and r["path"] in sum(PATHS.values(), ())]
    assert {r["path"] for r in sent} == set(sum(PATHS.values(), ())), "each create call, single and batch"
    return sent


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", _contracts())
def test_every_hubspot_request_of_the_shipped_mappings_passes_the_openapi_contract_when_validated(
    sent_requests, which
):
    failures = []
    for request in sent_requests:
        version = _version_of(request["path"])
        problems = _problems(request_validator(_document(which, version), request["path"]), request["json"])
        if problems:
            failures.append(f"POST {request['path']}: {problems} in {json.dumps(request['json'])[:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("which", _contracts())
def test_every_field_sent_is_one_the_contract_lists_when_requests_are_checked(sent_requests, which):
    for request in sent_requests:
        version = _version_of(request["path"])
        listed = set(_event_schema(_document(which, version), version)["properties"])
        body = request["json"]
        for event in body.get("inputs", [body]):
            assert set(event) <= listed, (request["path"], set(event) - listed)


TAMPERED = [
    ("v3", "numeric token", lambda e: e["tokens"].update(changed_at=1763899315724), "tokens.changed_at"),
    ("v3", "boolean token", lambda e: e["tokens"].update(stage=True), "tokens.stage"),
    ("v3", "no id", lambda e: e.pop("id"), "(body)"),
    ("v3", "numeric objectId", lambda e: e.update(objectId=18147040851), "objectId"),
    ("v3", "timestamp not a date-time", lambda e: e.update(timestamp="yesterday"), "timestamp"),
    ("2026-03", "numeric property", lambda e: e["properties"].update(changed_at=1763899315724), "properties.changed_at"),
    ("2026-03", "no id", lambda e: e.pop("id"), "(body)"),
    ("2026-03", "iframe width as text", lambda e: e.update(timelineIFrame={"linkLabel": "l", "headerLabel": "h", "url": "u", "width": "600", "height": 400}), "timelineIFrame.width"),
]  # fmt: skip


@pytest.mark.parametrize("which", _contracts())
@pytest.mark.parametrize(
    ("version", "what", "tamper", "field"), TAMPERED, ids=[f"{t[0]}-{t[1]}" for t in TAMPERED]
)
def test_contract_refuses_what_hubspot_refuses_when_a_shipped_request_is_tampered(
    sent_requests, which, version, what, tamper, field
):
    single, batch = PATHS[version]
    [body] = [r["json"] for r in sent_requests if r["path"] == single][:1]
    event = copy.deepcopy(body)
    tamper(event)
    document = _document(which, version)

    problems = _problems(request_validator(document, single), event)
    in_batch = _problems(request_validator(document, batch), {"inputs": [body, event]})

    assert problems and problems[0].startswith(f"{field}:"), problems
    assert in_batch and in_batch[0].startswith(f"inputs.1.{field}:".replace(".(body)", "")), in_batch


def test_project_contract_is_a_valid_openapi_document_when_checked():
    validate_openapi_document(json.loads(PROJECT_CONTRACT.read_text(encoding="utf-8")))


def _shape(document: dict[str, Any], schema: dict[str, Any]) -> Any:
    """What a schema says of a value (type, format, required, properties, item and map values),
    refs followed, descriptions and examples left out: the field list to compare."""
    schema = _deref(document, schema)
    shape: dict[str, Any] = {"type": schema.get("type"), "format": schema.get("format")}
    if "required" in schema:
        shape["required"] = sorted(schema["required"])
    if schema.get("properties"):
        shape["properties"] = {k: _shape(document, v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("additionalProperties"), dict):
        shape["values"] = _shape(document, schema["additionalProperties"])
    if isinstance(schema.get("items"), dict):
        shape["items"] = _shape(document, schema["items"])
    return shape


@pytest.mark.skipif(not os.environ.get(SPECS_ENV, "").strip(), reason=f"{SPECS_ENV} is not set")
@pytest.mark.parametrize("version", VERSIONS)
def test_project_contract_matches_hubspot_field_list_when_the_specs_are_given(version):
    ours = json.loads(PROJECT_CONTRACT.read_text(encoding="utf-8"))
    theirs = hubspot_spec(version)
    assert theirs is not None
    for path in PATHS[version]:
        pointer = _request_pointer(path).lstrip("/").split("/")

        def at(document: dict[str, Any], pointer: list[str] = pointer) -> dict[str, Any]:
            node: Any = document
            for part in pointer:
                node = node[part.replace("~1", "/").replace("~0", "~")]
            return node

        assert _shape(ours, at(ours)) == _shape(theirs, at(theirs)), path
        assert theirs["paths"][path]["post"].get("requestBody", {}).get("required", True)


@pytest.mark.parametrize("which", _contracts())
@pytest.mark.parametrize("version", VERSIONS)
def test_target_schema_is_no_looser_than_the_openapi_contract_when_compared(which, version):
    document = _document(which, version)
    spec = _event_schema(document, version)
    target = contract_schema(TARGET_CONTRACTS[version])

    assert set(spec["required"]) <= set(target["required"])
    assert set(target["properties"]) <= set(spec["properties"])
    assert target["additionalProperties"] is False
    for name, field in target["properties"].items():
        theirs = _deref(document, spec["properties"][name])
        assert field.get("type") == theirs.get("type"), name
        if isinstance(theirs.get("additionalProperties"), dict):
            assert field["additionalProperties"] == {"type": theirs["additionalProperties"]["type"]}, name
        if theirs.get("required"):
            assert set(theirs["required"]) <= set(field["required"]), name
            for inner, kind in theirs["properties"].items():
                assert field["properties"][inner]["type"] == _deref(document, kind)["type"], (name, inner)
