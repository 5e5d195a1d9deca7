"""`bridge map SOURCE FILE [--mappings DIR] [--name NAME] [--no-enrich]`: dry run. Prints, as JSON, the target
requests an event would produce: one {mapping, target, key, method, url, body} per job. No
signature check, no queue, no target call. Enrichment runs as in the route stage: its reads go to
HUBSPOT_BASE_URL / SLACK_API_BASE_URL, or, where those are not set and a `bridge dev` runs from
this folder, to its sandboxes with its credentials. With neither, or with `--sandboxes`, the seeded
local sandboxes are started for this run (and stderr says so). `--no-enrich` skips the fetches
(expressions then see an empty `enrichment`)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from timeline_bridge.config import Settings
from timeline_bridge.sources import source_names

# The APIs enrichment reads and the credential each needs.
ENRICHMENT_APIS = {"hubspot": "HUBSPOT_ACCESS_TOKEN", "slack": "SLACK_BOT_TOKEN", "stora": "STORA_TOKEN"}


EXAMPLES = """examples:
  bridge map hubspot events/hubspot/deal-stage-change.json
  bridge map pipedrive events/pipedrive/deal-stage-change-v2.json --no-enrich
  bridge map generic invoice.json --name billing     a raw body, as sent to /generic/billing

The requests are printed on stdout as JSON; when a mapping fails, stdout stays empty and each
error is on stderr as file:line: field: reason.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source", choices=source_names(), metavar="SOURCE", help=f"one of {', '.join(source_names())}"
    )
    parser.add_argument(
        "file", metavar="FILE", help="a Function URL event (events/<source>/*.json) or a raw body"
    )
    parser.add_argument("--mappings", metavar="DIR", help="mapping files or directory (default: mappings/)")
    parser.add_argument(
        "--name",
        metavar="NAME",
        help="the endpoint the event is sent to (/SOURCE/NAME: a generic endpoint's meta.name)",
    )
    parser.add_argument(
        "--no-enrich",
        action="store_true",
        help="do not run the mappings' enrich fetches (no source API calls)",
    )
    parser.add_argument(
        "--sandboxes",
        action="store_true",
        help="enrich from the seeded local sandboxes, started for this run",
    )


def requests_for(
    envelopes: list[Any], mapping_set: Any, enrich: Any = None, *, settings: Settings
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The dry-run requests and the mapping errors for a list of envelopes, sent where `settings`
    point each target."""
    from timeline_bridge.mapping.contracts import contract_name
    from timeline_bridge.mapping.engine import RenderFailure
    from timeline_bridge.target_registry import endpoints

    requests: list[dict[str, Any]] = []
    failures: list[Any] = []
    for envelope in envelopes:
        for outcome in mapping_set.render_jobs(envelope, enrich):
            if isinstance(outcome, RenderFailure):
                failures.append(outcome)
                continue
            method, path = endpoints()[contract_name(outcome.target, outcome.body, settings)]
            requests.append(
                {
                    "mapping": outcome.mapping,
                    "target": outcome.target,
                    "key": outcome.key,
                    "method": method,
                    "url": settings.base_url(outcome.target) + path,
                    "body": outcome.body,
                }
            )
    return requests, failures


def run(args: argparse.Namespace) -> int:
    from timeline_bridge.errors import MappingLoadError
    from timeline_bridge.mapping.loader import load_mappings

    from timeline_bridge_tools.mapping.samples import SampleError, envelopes_from_file

    settings = Settings.from_environ()
    try:
        mapping_set = load_mappings(args.mappings or settings.mappings_dir, settings=settings)
    except MappingLoadError as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    try:
        envelopes = envelopes_from_file(args.source, args.file, args.name)
    except SampleError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    from timeline_bridge.errors import RetryLaterError
    from timeline_bridge.mapping.engine import no_enrichment

    sandboxes: dict[str, Any] = {}
    if args.no_enrich:
        enrich = no_enrichment
    else:
        from timeline_bridge.enrichment import Enrichment
        from timeline_bridge.wiring import Dependencies

        if args.sandboxes or not (use_bridge_dev() or enrichment_configured()):
            sandboxes = start_enrichment_sandboxes()
        # Built after the sandboxes are started: their URLs and tokens are in the environment.
        enrich = Enrichment.of(Dependencies.from_environ())
    try:
        # Parsed again: pointing enrichment at the sandboxes may have set base URLs since.
        requests, failures = requests_for(envelopes, mapping_set, enrich, settings=Settings.from_environ())
    except RetryLaterError as exc:
        # The route would fail the record and route the event again later.
        print(f"enrichment cannot run now: {exc}", file=sys.stderr)
        return 1
    finally:
        for sandbox in sandboxes.values():
            sandbox.stop()
    if failures:
        # Nothing on stdout: a script piping the requests on never sees a partial set.
        for failure in failures:
            print(failure.error, file=sys.stderr)
        return 1
    print(json.dumps(requests, indent=2, ensure_ascii=False))
    from timeline_bridge_tools.mapping.cases import unresolved_paths

    for mapping in mapping_set.for_source(args.source):
        for warning in unresolved_paths(mapping, envelopes):
            print(f"warning: {warning}", file=sys.stderr)
    if not requests:
        print(f"no mapping applies to the {len(envelopes)} event(s) in {args.file}", file=sys.stderr)
    return 0


def enrichment_configured() -> bool:
    """Whether any enrichment API has a base URL or a credential set here."""
    from timeline_bridge_tools.sandboxes import BASE_URL_ENV

    for service, credential in ENRICHMENT_APIS.items():
        names = (
            BASE_URL_ENV.get(service, f"{service.upper()}_BASE_URL"),
            credential,
            f"{credential}_SECRET_ID",
        )
        if any(os.environ.get(name) for name in names):
            return True
    return False


def start_enrichment_sandboxes() -> dict[str, Any]:
    """Start the seeded sandboxes of the APIs enrichment reads and point enrichment at them."""

    from timeline_bridge_tools import sandboxes

    started = {name: sandboxes.start(name) for name in ENRICHMENT_APIS}
    os.environ.update(sandboxes.env_for(started))
    print(
        "enrichment reads the seeded local sandboxes (no bridge dev running here and no "
        "HUBSPOT_ACCESS_TOKEN / SLACK_BOT_TOKEN / STORA_TOKEN set): the values are sample data",
        file=sys.stderr,
    )
    return started


def use_bridge_dev(root: Path = Path()) -> bool:
    """Point enrichment at the `bridge dev` running from `root`, for every API whose base URL is not
    set here: its sandboxes, and the credentials it keeps in its local Secrets Manager."""
    from timeline_bridge_tools.local.state import apply_env, read_state
    from timeline_bridge_tools.sandboxes import BASE_URL_ENV

    state = read_state(root)
    if not state:
        return False
    chosen = []
    for service, credential in ENRICHMENT_APIS.items():
        sandbox = (state.get("sandboxes") or {}).get(service) or {}
        variable = BASE_URL_ENV.get(service, f"{service.upper()}_BASE_URL")
        if not sandbox.get("url") or sandbox.get("real") or os.environ.get(variable):
            continue
        os.environ[variable] = str(sandbox["url"])
        if not os.environ.get(credential):
            os.environ.setdefault(f"{credential}_SECRET_ID", _secret_id(credential, root))
        chosen.append(service)
    if chosen:
        apply_env(state)  # its AWS endpoint: the credentials live in its Secrets Manager

    return bool(chosen)


def _secret_id(credential: str, root: Path) -> str:
    """The secret `bridge dev` holds `credential` in: its logical id in template.yaml."""
    template = root / "template.yaml"
    if template.is_file():
        from timeline_bridge_tools.local.template import load_template, secrets

        for spec in secrets(load_template(template)).values():
            if credential in spec.names:
                return spec.logical_id
    # The template's naming: HUBSPOT_ACCESS_TOKEN is the secret HubspotAccessToken.
    return "".join(part.capitalize() for part in re.split(r"_+", credential.lower()))
