"""`bridge dev`: the whole pipeline on this machine, with no AWS account and no Docker.

- AWS APIs on loopback: moto's server (SQS, DynamoDB, Secrets Manager) on 127.0.0.1, with the
  queues, DLQs, tables and secrets declared in `template.yaml` (read through `local.template`).
- The real handlers (`functions/*/app.py`), each loaded as its own module instance and run with
  the environment the template gives it, resolved to the local resources.
- A Function URL emulator per webhook function (`POST /hubspot`, `/slack`, `/pipedrive`,
  `/generic/<name>`) and SQS event source mappings (`local.event_source`) for the queue consumers.
- The provider sandboxes, or the real provider for a target whose base URL and credential are set.
- A console (`GET /`) fed by a journal that watches the pipeline from outside.

Per-function settings. Lambda gives every function its own process and environment; here all
functions share one process. Each handler module is loaded as its own module instance, and its
stage (`timeline_bridge.wiring.Stage`) is configured with dependencies built from the variables
the template gives that function (`Dependencies.from_environ(function.env)`): its own settings,
AWS clients, secrets, claim store, router or deliverer. Nothing is swapped in `os.environ` (only
boto3's endpoint, region and credentials are set process-wide, and they are the same for every
function), so functions run concurrently, as in Lambda: a slow provider answer holds up only the
deliverer waiting for it.

The journal learns what each stage decided through the stage observer (`wiring.StageObserver`,
a no-op in Lambda): what ingest accepted, the jobs route enqueued or dead-lettered, each
delivery's outcome.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

from timeline_bridge import TARGETS
from timeline_bridge.delivery.outcomes import reason_text
from timeline_bridge.models import DeliveryJob, Envelope, utc_now_iso
from timeline_bridge.sources import SOURCE_SPECS
from timeline_bridge.wiring import Stage, StageObserver

from timeline_bridge_tools.local import loopback
from timeline_bridge_tools.local import state as state_files
from timeline_bridge_tools.local.function_url import (
    HttpRequest,
    HttpResponse,
    LocalHttpServer,
    build_event,
    to_http_response,
)
from timeline_bridge_tools.local.journal import Journal, WebhookRecord
from timeline_bridge_tools.local.mapping_reload import MappingReloader

log = logging.getLogger(__name__)

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
# Local runs show one webhook end to end at once: a batching window from the template (HubSpot
# waits up to 10 s to fill a batch of 100) is capped to this unless asked otherwise.
DEFAULT_MAX_BATCHING_WINDOW = 0.2
DEAD_LETTER_PEEK = 10  # messages shown per DLQ on the console


def _drop_unflushed_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED, Powertools never flushes, so never clears, its metric
    set: the shared `metrics` singleton would keep growing across invocations. Clear it as a
    flush would."""
    observability = sys.modules.get("timeline_bridge.observability")
    metrics = getattr(observability, "metrics", None)
    if metrics is not None and os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() == "true":
        metrics.clear_metrics()


@dataclass
class LocalFunction:
    """One Lambda function of the template, loaded from its handler file."""

    logical_id: str
    path: Path
    handler_name: str
    env: dict[str, str]
    timeout: float
    route: str | None = None  # first path segment of its Function URL route, e.g. "hubspot"
    target: str | None = None  # deliver functions: TARGET
    kind: str = "function"  # webhook | route | deliver | function
    module: ModuleType | None = None
    observer: StageObserver | None = None  # what the stage reports to (the runtime's journal)
    stage: Stage | None = None  # the module's stage, kept to configure it again (a mappings reload)

    @property
    def module_name(self) -> str:
        return f"timeline_bridge_local_fn_{self.logical_id}"

    def load(self) -> None:
        """Import the handler file as this function's own module and give its stage dependencies
        built from this function's variables."""
        spec = importlib.util.spec_from_file_location(self.module_name, self.path)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"{self.logical_id}: cannot load {self.path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[self.module_name] = module
        try:
            spec.loader.exec_module(module)
            stages = [v for v in vars(module).values() if isinstance(v, Stage)]
            if len(stages) != 1:
                raise RuntimeError(
                    f"{self.logical_id}: {self.path} must hold one timeline_bridge.wiring.Stage "
                    f"(found {len(stages)}): its handler runs on the stage's dependencies"
                )
            self.stage = stages[0]
            self.configure()
        except BaseException:
            sys.modules.pop(self.module_name, None)
            raise
        self.module = module

    def configure(self) -> Stage:
        """Build the stage afresh on dependencies from this function's variables (a batch already
        running finishes on the ones it started with)."""
        from timeline_bridge.wiring import Dependencies

        if self.stage is None:
            raise RuntimeError(f"{self.logical_id} is not loaded")
        self.stage.configure(Dependencies.from_environ(self.env, observer=self.observer))
        return self.stage

    def unload(self) -> None:
        sys.modules.pop(self.module_name, None)
        self.module = None
        self.stage = None

    def invoke(self, event: dict[str, Any], context: Any) -> Any:
        if self.module is None:
            raise RuntimeError(f"{self.logical_id} is not loaded")
        handler = getattr(self.module, self.handler_name)
        try:
            return handler(event, context)
        finally:
            _drop_unflushed_metrics()


@dataclass(frozen=True)
class _QueueRole:
    kind: str  # events | events-dlq | delivery | delivery-dlq | other
    target: str | None = None


class LocalRuntime:
    """The local stack. `start()` brings it up (in well under 10 s), `stop()` takes it down.

    Usable in-process by tests: ports may be 0 (any free port), the environment this process had
    before is restored on `stop()`, and a later `start()` begins from empty queues and tables.
    """

    def __init__(
        self,
        root: str | Path = ".",
        *,
        port: int = 3000,
        host: str = "127.0.0.1",
        template: str = "template.yaml",
        sandboxes: bool = True,
        write_state: bool = True,
        max_batching_window: float = DEFAULT_MAX_BATCHING_WINDOW,
        log_level: str | None = None,
        state_dir: str | Path | None = None,
        environ: dict[str, str] | None = None,
        function_env: dict[str, str] | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self.requested_port = port
        self.template_path = self.root / template
        self.use_sandboxes = sandboxes
        self.write_state_file = write_state
        self.max_batching_window = max_batching_window
        self.log_level = log_level
        # Where `.bridge/` (secrets, dev.json) lives: the project folder unless told otherwise.
        self.state_root = Path(state_dir).resolve() if state_dir is not None else self.root
        # The user's settings (.env, shell): None = this process's environment at start.
        self._environ = environ
        # Variables every function gets on top of what the template gives it (a benchmark's
        # DELIVERY_RATE_TIME_SCALE): a function sees only its own variables, as in Lambda.
        self.function_env = dict(function_env or {})
        self.echo = echo
        self.journal = Journal()
        self.functions: dict[str, LocalFunction] = {}
        self.queue_urls: dict[str, str] = {}  # logical id -> URL
        self.table_name = ""  # the idempotency table
        self.tables: dict[str, str] = {}  # logical id -> name
        self.buckets: dict[str, str] = {}  # logical id -> name (the event archive)
        self.region = ""
        self.aws_endpoint_url = ""
        self.sandboxes: dict[str, Any] = {}
        self.real_targets: dict[str, str] = {}  # target -> real base URL
        self.secret_values: dict[str, str] = {}  # NAME -> value in use
        self.generated_secrets: list[str] = []
        self.webhook_secrets: list[str] = []  # NAMEs the webhook functions verify with
        self.mappings: list[Any] = []
        self.started_at = ""
        self.startup_seconds = 0.0
        self._moto: Any = None
        self._http: LocalHttpServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_log_level: int | None = None
        self._user_env: dict[str, str] = {}
        self._roles: dict[str, _QueueRole] = {}
        self.aws: Any = None  # the runtime's own boto3 clients (an AwsClients), made at start
        # Source events ingest accepted, by the request id of the webhook that brought them.
        self._accepted: dict[str, list[dict[str, Any]]] = {}
        self._accepted_lock = threading.Lock()
        self._dlq_lock = threading.Lock()
        self._running = False
        self.mapping_reloader: MappingReloader | None = None  # the route function's mappings folder
        self.events_page: Any = None  # /events: the event history and its Replay action
        # Proves a console action comes from a page this run served (see `_console_refusal`).
        self.console_token = secrets.token_urlsafe(32)

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._http.port if self._http else self.requested_port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_urls(self) -> dict[str, str]:
        urls = {}
        for fn in self.functions.values():
            if fn.kind == "webhook" and fn.route:
                spec = SOURCE_SPECS.get(fn.route)
                suffix = "/<name>" if spec and spec.endpoints else ""
                urls[fn.route] = f"{self.url}/{fn.route}{suffix}"
        return urls

    def start(self) -> LocalRuntime:
        """Bring everything up; on any failure, take down what was started and re-raise."""
        began = time.monotonic()
        self.console_token = secrets.token_urlsafe(32)  # per run: a page of an earlier run is stale
        self._user_env = dict(os.environ if self._environ is None else self._environ)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start(self) -> None:
        from timeline_bridge_tools.local import template as tpl

        # Bind the public port first: a second instance fails here, before touching anything.
        self._http = LocalHttpServer(self.host, self.requested_port, self._app, on_error=self._on_http_error)
        template = tpl.load_template(self.template_path)
        self.region = tpl.PSEUDO_PARAMETERS["AWS::Region"]
        self._start_moto()
        self._set_process_env()
        if self.log_level:
            # The handlers share this process's Powertools logger, which reads its level from the
            # environment only when first imported (a sandbox may have imported it already).
            from timeline_bridge.observability import logger

            self._saved_log_level = logger.log_level
            logger.setLevel(self.log_level)
        if self.echo is not None:
            from timeline_bridge.observability import logger

            logger.addFilter(_said_in_a_line)
        refs = self._create_resources(template)
        self._start_targets()
        self._load_functions(template, refs)
        self._watch_mappings()
        self._start_pollers(template)
        self._running = True
        self._http.start()
        self.events_page = self._events_page()
        self.started_at = utc_now_iso()
        if self.write_state_file:
            state_files.write_state(self.state(), self.state_root)

    def stop(self) -> None:
        """Stop pollers, servers and sandboxes; restore the environment; remove the state file."""
        self._running = False
        if self.mapping_reloader is not None:
            self.mapping_reloader.stop()
            self.mapping_reloader = None
        # Ask every poller to stop first (each may sit in a 1 s long poll), then wait for them all.
        for wait in (0.0, 15.0):
            for mapping in self.mappings:
                with contextlib.suppress(Exception):
                    mapping.stop(timeout=wait)
        self.mappings = []
        if self._http is not None:
            with contextlib.suppress(Exception):
                self._http.stop()
            self._http = None
        if self.sandboxes:
            stopping = [threading.Thread(target=s.stop, daemon=True) for s in self.sandboxes.values()]
            for thread in stopping:
                thread.start()
            for thread in stopping:
                thread.join(10)
            self.sandboxes = {}
        for fn in self.functions.values():
            fn.unload()
        if self._moto is not None:
            with contextlib.suppress(Exception):
                self._moto.stop()
            self._moto = None
        self._restore_process_env()
        if self._saved_log_level is not None:
            from timeline_bridge.observability import logger

            logger.setLevel(self._saved_log_level)
            self._saved_log_level = None
        if self.echo is not None:
            from timeline_bridge.observability import logger

            logger.removeFilter(_said_in_a_line)
        if self.write_state_file:
            state_files.remove_state(self.state_root)

    # ------------------------------------------------------------------ AWS on loopback

    def _start_moto(self) -> None:
        import requests
        from moto.server import ThreadedMotoServer

        from timeline_bridge_tools.local import moto_sqs

        # werkzeug logs every request at INFO; the pollers would flood the terminal.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        moto_sqs.thread_safe()  # several pollers per queue: moto alone can lose a message
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.aws_endpoint_url = f"http://{host}:{port}"
        # moto's backends live in this process: an earlier run in the same process left state.
        requests.post(f"{self.aws_endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    def _aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }

    def _set_process_env(self) -> None:
        """Point boto3 at moto for this process (it reads its endpoint, region and credentials
        from the environment itself); the runtime's own clients are made after."""
        from timeline_bridge.aws import AwsClients

        # Powertools reads its switches from the process environment, and every local function
        # shares this process: EMF metric lines on stdout mean nothing without CloudWatch.
        metrics_disabled = self._user_env.get("POWERTOOLS_METRICS_DISABLED", "true")
        env = {**self._aws_env(), "POWERTOOLS_METRICS_DISABLED": metrics_disabled}
        names = [*env, *state_files.LOCAL_AWS_UNSET]
        self._saved_env = {name: os.environ.get(name) for name in names}
        for name in state_files.LOCAL_AWS_UNSET:
            os.environ.pop(name, None)
        os.environ.update(env)
        self.aws = AwsClients()

    def _restore_process_env(self) -> None:
        if not self._saved_env:
            return
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        self.aws = None

    def _create_resources(self, template: dict[str, Any]) -> dict[str, Any]:
        """Queues (DLQs first), the tables, the secrets and the buckets, as the template declares them.

        Returns the values `Ref`/`Fn::GetAtt` resolve to, for the functions' environment. The four
        kinds are created side by side: each call waits on the loopback server, and startup counts."""
        from concurrent.futures import ThreadPoolExecutor

        refs: dict[str, Any] = {}
        self._choose_secret_values(template)
        with ThreadPoolExecutor(max_workers=4, thread_name_prefix="bridge-dev-setup") as pool:
            work = [
                pool.submit(self._create_queues, template, refs, pool),
                pool.submit(self._create_tables, template, refs),
                pool.submit(self._create_secrets, template, refs),
                pool.submit(self._create_buckets, template, refs),
            ]
            for done in work:
                done.result()

        for logical_id, resource in template["Resources"].items():
            kind = resource.get("Type") if isinstance(resource, dict) else None
            if kind in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
                refs.setdefault(logical_id, f"arn:aws:lambda:{self.region}:123456789012:layer:{logical_id}:1")
            elif kind == "AWS::Serverless::Function":
                refs.setdefault(logical_id, logical_id)
                refs.setdefault(
                    f"{logical_id}.Arn", f"arn:aws:lambda:{self.region}:123456789012:function:{logical_id}"
                )
        self._roles = self._queue_roles(template)
        return refs

    def _create_queues(self, template: dict[str, Any], refs: dict[str, Any], pool: Any) -> None:
        from timeline_bridge_tools.local import template as tpl

        sqs = self.aws("sqs")
        specs = list(tpl.queues(template).values())

        def create(spec: Any) -> None:
            name = f"{spec.logical_id}.fifo" if spec.fifo else spec.logical_id
            attributes = {
                "VisibilityTimeout": str(spec.visibility_timeout),
                "MessageRetentionPeriod": str(spec.message_retention),
            }
            if spec.fifo:
                attributes["FifoQueue"] = "true"
            if spec.dead_letter_queue:
                attributes["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": refs[f"{spec.dead_letter_queue}.Arn"],
                        "maxReceiveCount": spec.max_receive_count or 5,
                    }
                )
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            # SQS queue URLs end in /<account>/<name>: the ARN follows without asking for it.
            account = url.rstrip("/").split("/")[-2]
            self.queue_urls[spec.logical_id] = url
            refs.update(
                {
                    spec.logical_id: url,
                    f"{spec.logical_id}.Arn": f"arn:aws:sqs:{self.region}:{account}:{name}",
                    f"{spec.logical_id}.QueueName": name,
                    f"{spec.logical_id}.QueueUrl": url,
                }
            )

        # Dead-letter queues first: the others' redrive policies name them.
        for group in (
            [q for q in specs if not q.dead_letter_queue],
            [q for q in specs if q.dead_letter_queue],
        ):
            for created in [pool.submit(create, spec) for spec in group]:
                created.result()

    def _create_tables(self, template: dict[str, Any], refs: dict[str, Any]) -> None:
        from timeline_bridge_tools.local import template as tpl

        dynamodb = self.aws("dynamodb")
        for table in tpl.tables(template).values():
            name = table.logical_id
            described = dynamodb.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": table.partition_key, "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": table.partition_key, "AttributeType": table.partition_key_type}
                ],
                BillingMode="PAY_PER_REQUEST",
            )["TableDescription"]
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
            refs.update({name: name, f"{name}.Arn": described["TableArn"]})
            self.tables[table.logical_id] = name

    def _create_secrets(self, template: dict[str, Any], refs: dict[str, Any]) -> None:
        from timeline_bridge_tools.local import template as tpl

        secretsmanager = self.aws("secretsmanager")
        for secret in tpl.secrets(template).values():
            values = [self.secret_values[n] for n in secret.names if self.secret_values.get(n)]
            arn = secretsmanager.create_secret(
                Name=secret.logical_id, SecretString=values[0] if values else "[]"
            )["ARN"]
            refs.update({secret.logical_id: arn, f"{secret.logical_id}.Id": arn})

    def _create_buckets(self, template: dict[str, Any], refs: dict[str, Any]) -> None:
        from timeline_bridge_tools.local import template as tpl

        s3 = self.aws("s3")
        # S3 refuses a location constraint naming us-east-1, its default region.
        region = self.region
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        for bucket in tpl.buckets(template).values():
            s3.create_bucket(Bucket=bucket.name, **where)
            refs.update(
                {bucket.logical_id: bucket.name, f"{bucket.logical_id}.Arn": f"arn:aws:s3:::{bucket.name}"}
            )
            self.buckets[bucket.logical_id] = bucket.name

    def _queue_roles(self, template: dict[str, Any]) -> dict[str, _QueueRole]:
        """What each queue is for, from who reads it: the route function's source is the events
        queue, a deliver function's source is its target's delivery queue; their DLQs follow."""
        from timeline_bridge_tools.local import template as tpl

        specs = tpl.queues(template)
        roles: dict[str, _QueueRole] = {}
        for fn in tpl.functions(template).values():
            target = str(fn.environment.get("TARGET") or "").lower() or None
            for event in fn.events:
                kind = "delivery" if target else "events"
                url = self.queue_urls.get(event.queue)
                if url:
                    roles[url] = _QueueRole(kind, target)
                dlq = specs[event.queue].dead_letter_queue if event.queue in specs else None
                if dlq and dlq in self.queue_urls:
                    roles[self.queue_urls[dlq]] = _QueueRole(f"{kind}-dlq", target)
        return roles

    # ------------------------------------------------------------------ secrets and targets

    def _choose_secret_values(self, template: dict[str, Any]) -> None:
        """The value each secret holds locally: the environment's (or `.env`'s) when set; else a
        development value (webhook secrets and sandbox credentials), generated once and kept in
        `.bridge/secrets.json`; else nothing (the secret holds "[]", as an unset one does in AWS)."""
        from timeline_bridge_tools.local import template as tpl
        from timeline_bridge_tools.sandboxes import CREDENTIAL_ENV, SANDBOX_CLASSES

        functions = tpl.functions(template)
        webhook_names: set[str] = set()
        for fn in functions.values():
            if fn.function_url_auth is not None:
                webhook_names.update(
                    k.removesuffix("_SECRET_ID") for k in fn.environment if k.endswith("_SECRET_ID")
                )
        self.real_targets = {}
        for service in SANDBOX_CLASSES:
            base = self._user_env.get(_base_url_env(service), "").strip()
            credential = self._user_env.get(CREDENTIAL_ENV[service], "").strip()
            if (base and credential) or not self.use_sandboxes:
                self.real_targets[service] = base
        sandbox_names = {CREDENTIAL_ENV[t] for t in SANDBOX_CLASSES if t not in self.real_targets}
        # Webhook secrets are kept across runs (senders are configured with them); the sandboxes'
        # credentials are made fresh each run, like the sandboxes themselves.
        # Only the secrets senders sign with get one (BRIDGE_GENERIC_SECRETS, a JSON object of
        # per-endpoint secrets, stays unset unless the environment sets it).
        signed_with = {n for spec in SOURCE_SPECS.values() for n in spec.secret_names(None)}
        wanted = sorted(n for n in webhook_names & signed_with if not self._user_env.get(n))
        generated, created = state_files.ensure_secrets(wanted, self.state_root)
        generated.update({n: state_files.generate_secret(n) for n in sandbox_names})
        self.generated_secrets = created
        self.webhook_secrets = sorted(webhook_names)
        values: dict[str, str] = {}
        for secret in tpl.secrets(template).values():
            for name in secret.names:
                if name in sandbox_names:
                    values[name] = generated[name]
                elif self._user_env.get(name):
                    values[name] = self._user_env[name]
                elif name in generated:
                    values[name] = generated[name]
        self.secret_values = values

    def _start_targets(self) -> None:
        """The sandboxes of every provider (targets, and the APIs enrichment reads) not pointed
        at the real one."""
        if not self.use_sandboxes:
            return
        from timeline_bridge_tools.sandboxes import CREDENTIAL_ENV, SANDBOX_CLASSES, start

        for service in SANDBOX_CLASSES:
            if service not in self.real_targets:
                token = self.secret_values.get(CREDENTIAL_ENV[service])
                self.sandboxes[service] = start(service, token)

    def _sandbox_env(self, function_env: dict[str, Any]) -> dict[str, str]:
        """What points a function at the sandboxes: the base URL of each sandbox whose credential
        the function reads (`<CREDENTIAL>_SECRET_ID`) or whose base URL it is given, and the
        sandboxes' own settings (APPLIED_SHOP_ID, MATTER_VERSION) where the function has them."""
        from timeline_bridge_tools.sandboxes import CREDENTIAL_ENV, env_for

        settings = env_for(self.sandboxes)
        env: dict[str, str] = {}
        for service, sandbox in self.sandboxes.items():
            base_var = _base_url_env(service)
            if base_var in function_env or f"{CREDENTIAL_ENV[service]}_SECRET_ID" in function_env:
                env[base_var] = sandbox.url
        for name in ("APPLIED_SHOP_ID", "MATTER_VERSION"):
            if name in function_env and name in settings:
                env[name] = settings[name]
        if "slack" in self.sandboxes:
            # Replies to a click go to its response_url, which `bridge send` points at the sandbox.
            env["SLACK_HOOKS_BASE_URL"] = self.sandboxes["slack"].url
        return env

    # ------------------------------------------------------------------ functions

    def _function_env(self, template: dict[str, Any], spec: Any, refs: dict[str, Any]) -> dict[str, str]:
        from timeline_bridge_tools.local import template as tpl

        env = tpl.environment_for(template, spec, refs=refs)
        target_env = self._sandbox_env(spec.environment)
        parameter_names = set((template.get("Parameters") or {}).keys())
        data_layers = self._data_layer_dirs(template, spec)
        for name, raw in spec.environment.items():
            value = env.get(name, "")
            # Data layers land in /opt in AWS; locally /opt is the layer's folder.
            if (value == "/opt" or value.startswith("/opt/")) and data_layers:
                paths = [_layer_path(folder, value) for folder in data_layers]
                env[name] = str(next((p for p in paths if p.exists()), paths[0]))
            # A setting that comes from a template parameter can be set locally (.env, shell):
            # HUBSPOT_SIGNATURE_VERSIONS, MAX_BODY_BYTES, a real provider's base URL, ...
            if (
                name not in target_env
                and _mentions_parameter(raw, parameter_names)
                and self._user_env.get(name)
            ):
                env[name] = self._user_env[name]
            if name == "BRIDGE_MAPPINGS_DIR" and self._user_env.get(name):
                env[name] = str((self.root / self._user_env[name]).resolve())
            if name.endswith("_SECRET_ID"):
                secret_name = name.removesuffix("_SECRET_ID")
                if self.secret_values.get(secret_name):
                    env[secret_name] = self.secret_values[secret_name]
        env.update(target_env)
        source = SOURCE_SPECS.get(Path(spec.code_uri).name) if spec.function_url_auth is not None else None
        for name, value in (source.local_settings if source else {}).items():
            env[name] = env.get(name) or value  # unset here: the source's local default
        if source is not None and source.local_variable_prefix:
            # GENERIC_STRIPE_PRESET=stripe in .env reaches the function as a deployer's variable would.
            prefix = source.local_variable_prefix
            env.update({k: v for k, v in self._user_env.items() if k.startswith(prefix) and v})
        if self.log_level:
            for name in ("POWERTOOLS_LOG_LEVEL", "LOG_LEVEL"):
                env[name] = self.log_level
        env.update(self.function_env)
        return env

    def _data_layer_dirs(self, template: dict[str, Any], spec: Any) -> list[Path]:
        """Folders of the function's layers that hold data (not the core package)."""
        dirs = []
        for layer in spec.layers:
            logical_id = layer.get("Ref") if isinstance(layer, dict) else None
            resource = template["Resources"].get(logical_id) if logical_id else None
            content = ((resource or {}).get("Properties") or {}).get("ContentUri")
            if not isinstance(content, str):
                continue
            folder = (self.root / content).resolve()
            if folder.is_dir() and not (folder / "timeline_bridge").exists():
                dirs.append(folder)
        return dirs

    def _load_functions(self, template: dict[str, Any], refs: dict[str, Any]) -> None:
        from timeline_bridge_tools.local import template as tpl

        for spec in tpl.functions(template).values():
            code_dir = (self.root / spec.code_uri).resolve()
            target = str(spec.environment.get("TARGET") or "").lower() or None
            if spec.function_url_auth is not None:
                kind = "webhook"
            elif target:
                kind = "deliver"
            elif spec.events:
                kind = "route"
            else:
                kind = "function"
            fn = LocalFunction(
                logical_id=spec.logical_id,
                path=code_dir / f"{spec.handler_module}.py",
                handler_name=spec.handler_function,
                env=self._function_env(template, spec, refs),
                timeout=float(spec.timeout),
                route=code_dir.name if kind == "webhook" else None,
                target=target,
                kind=kind,
            )
            if not fn.path.is_file():
                raise FileNotFoundError(f"{spec.logical_id}: handler file {fn.path} not found")
            fn.observer = JournalObserver(self, fn)
            fn.load()
            self.functions[spec.logical_id] = fn
            self.table_name = self.table_name or fn.env.get("IDEMPOTENCY_TABLE", "")

    def _watch_mappings(self) -> None:
        """Load the route function's mappings now and reload them whenever its folder changes."""
        route = next((fn for fn in self.functions.values() if fn.kind == "route"), None)
        if route is not None:
            self.mapping_reloader = MappingReloader(route, self._say).start()

    def _events_page(self) -> Any:
        """The console's event history page (`/events`): the archive, delivered-records and DLQs
        of this stack, with a Replay action through the mapping files the route function reads."""
        from timeline_bridge_tools.local.events_page import EventsPage, replay_action

        return EventsPage(
            self.history,
            replay=replay_action(self.history, self._mapping_set),
            csrf_token=self.console_token,
            port=self.port,
        )

    def history(self) -> Any:
        """A `history.History` of this running stack."""
        from timeline_bridge_tools.history import Deployment, History

        pairs = self.queue_pairs()
        bucket = next(
            (
                fn.env["EVENTS_ARCHIVE_BUCKET"]
                for fn in self.functions.values()
                if fn.env.get("EVENTS_ARCHIVE_BUCKET")
            ),
            "",
        )
        events = pairs.get("events")
        deployment = Deployment(bucket, self.table_name, events.queue_url if events else "", pairs)
        return History(
            deployment,
            mappings=self._mapping_set(),
            s3=self.aws("s3"),
            sqs=self.aws("sqs"),
            dynamodb=self.aws("dynamodb"),
        )

    def _mapping_set(self) -> Any:
        """The mapping files the route function reads, loaded now; None when they do not load."""
        from timeline_bridge.mapping.loader import load_mappings

        if self.mapping_reloader is None:
            return None
        try:
            return load_mappings(self.mapping_reloader.folder)
        except Exception:  # an invalid folder: the Mappings section says why
            return None

    def loaded_mappings(self) -> dict[str, Any]:
        """The mappings the route function runs on, when they were loaded, and the last reload
        refused (see `local.mapping_reload`); empty without a route function."""
        return self.mapping_reloader.status() if self.mapping_reloader is not None else {}

    def _start_pollers(self, template: dict[str, Any]) -> None:
        from timeline_bridge_tools.local import template as tpl
        from timeline_bridge_tools.local.event_source import EventSourceMapping

        for spec in tpl.functions(template).values():
            fn = self.functions[spec.logical_id]
            for event in spec.events:
                mapping = EventSourceMapping(
                    self.queue_urls[event.queue],
                    self._sqs_handler(fn),
                    sqs=self.aws("sqs"),
                    function_name=fn.logical_id,
                    batch_size=event.batch_size,
                    batching_window=min(float(event.batching_window), self.max_batching_window),
                    function_timeout=fn.timeout,
                    # One poller each: the functions run side by side, each batch one at a time.
                    concurrency=1,
                    poll_wait=1,
                )
                self.mappings.append(mapping.start())

    # ------------------------------------------------------------------ invoking and watching

    def _sqs_handler(self, fn: LocalFunction) -> Callable[[dict[str, Any], Any], Any]:
        def handler(event: dict[str, Any], context: Any) -> Any:
            try:
                return fn.invoke(event, context)
            except Exception as exc:
                # A handler that raised fails its whole batch: the stage reported nothing of it.
                self._record_crash(fn, event, f"{type(exc).__name__}: {exc}")
                raise

        return handler

    def _record_crash(self, fn: LocalFunction, event: dict[str, Any], detail: str) -> None:
        for record in event.get("Records") or []:
            body = _json(record.get("body"))
            body = body if isinstance(body, dict) else {}
            if fn.kind == "route":
                receives = (record.get("attributes") or {}).get("ApproximateReceiveCount", "1")
                self.journal.route_failure(body, int(receives), detail)
                self._say(f"  route failed   {body.get('source')} {body.get('event_type')} ({detail})")
            elif fn.kind == "deliver" and body.get("key"):
                self.journal.attempt(body, int(body.get("attempts") or 0) + 1, "error", detail)

    def _accepted_events(self, request_id: str) -> list[dict[str, Any]]:
        """The source events ingest accepted answering `request_id` (reported by its stage)."""
        with self._accepted_lock:
            return self._accepted.pop(request_id, [])

    def _say(self, line: str) -> None:
        if self.echo is not None:
            self.echo(line)

    # ------------------------------------------------------------------ HTTP: webhooks and console

    def _on_http_error(self) -> None:
        log.exception("local Function URL failed")

    def _app(self, request: HttpRequest) -> HttpResponse:
        segments = [s for s in request.path.split("/") if s]
        first = segments[0] if segments else ""
        if request.path == "/" or first == "_console":
            # The webhook URLs answer any Host (a tunnel forwards the sender's); the console does not.
            refused = loopback.refusal(request.header("host"), None, self.port, "the console")
            if refused is not None:
                return HttpResponse.json(refused[0], {"message": refused[1]})
        if self.events_page is not None and self.events_page.handles(request.path):
            return self.events_page.handle(request)  # the event history, under the same rules
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return HttpResponse.text(200, self.console_html(), "text/html; charset=utf-8")
        if request.path == "/_console/state.json" and request.method == "GET":
            return HttpResponse.json(200, self.console_state())
        if request.path == "/_console/redrive" and request.method == "POST":
            return self._console_redrive(request)
        for fn in self.functions.values():
            if fn.kind == "webhook" and fn.route == first:
                return self.invoke_url(fn, request)
        return HttpResponse.json(404, {"message": "Not Found"})

    def invoke_url(self, fn: LocalFunction, request: HttpRequest) -> HttpResponse:
        """One request through a webhook function, as its Function URL would run it."""
        from timeline_bridge_tools.local.event_source import FakeLambdaContext

        event = build_event(request, api_id=fn.logical_id.lower())
        request_id = event["requestContext"]["requestId"]
        context = FakeLambdaContext(
            function_name=fn.logical_id, timeout=fn.timeout, aws_request_id=request_id
        )
        try:
            result = fn.invoke(event, context)
        except Exception as exc:
            accepted = self._accepted_events(request_id)
            self._record_webhook(fn, request, event, 502, None, accepted, f"{type(exc).__name__}: {exc}")
            log.exception("%s failed", fn.logical_id)
            return HttpResponse.json(502, {"message": "Internal Server Error"})
        response = to_http_response(result)
        accepted = self._accepted_events(request_id)
        self._record_webhook(fn, request, event, response.status, response.body, accepted, "")
        return response

    def _record_webhook(
        self,
        fn: LocalFunction,
        request: HttpRequest,
        event: dict[str, Any],
        status: int,
        body: bytes | None,
        accepted: list[dict[str, Any]],
        error: str,
    ) -> None:
        answer = _json(body.decode("utf-8", "replace")) if body else None
        answer = answer if isinstance(answer, dict) else {}
        if error:
            outcome, reason = "error", error
        elif status >= 400:
            outcome = "rejected" if status < 500 else "error"
            reason = str(answer.get("error") or answer.get("message") or f"HTTP {status}")
        elif accepted:
            outcome, reason = "accepted", ""
        elif answer.get("duplicates"):
            outcome, reason = "duplicate", "already received"
        elif answer.get("rejected"):
            outcome, reason = "rejected", "event refused (no identity, or same id with another body)"
        elif answer.get("ignored"):
            outcome, reason = "ignored", "event type not handled"
        else:
            outcome, reason = "answered", "no event in it (a handshake or an acknowledgement)"
        name = None
        spec = SOURCE_SPECS.get(fn.route or "")
        if spec and spec.endpoints:
            from timeline_bridge.errors import NotFoundError

            with contextlib.suppress(NotFoundError):  # refused: no endpoint has that name
                name = spec.endpoints.from_path(request.path)
        record = self.journal.webhook(
            WebhookRecord(
                request_id=event["requestContext"]["requestId"],
                source=fn.route or fn.logical_id,
                name=name,
                path=request.path,
                status=status,
                outcome=outcome,
                reason=reason,
                events=[str(e.get("event_id") or "") for e in accepted],
            )
        )
        self._say(
            f"webhook {record.source:9} {status} {outcome}"
            + (f" ({reason})" if reason else "")
            + (f" → {len(record.events)} event(s)" if record.events else "")
        )

    def _console_refusal(self, request: HttpRequest) -> HttpResponse | None:
        """The refusal of a console action (`events_page.action_refusal`: 421 for a foreign Host,
        403 without this run's token or from another origin), or None."""
        from timeline_bridge_tools.local.events_page import action_refusal

        return action_refusal(request, self.port, self.console_token)

    def _console_redrive(self, request: HttpRequest) -> HttpResponse:
        refused = self._console_refusal(request)
        if refused is not None:
            return refused
        target = (parse_qs(request.query).get("target") or [""])[0]
        if target not in self.queue_pairs():
            return HttpResponse.json(400, {"message": f"unknown target {target!r}"})
        moved = self.redrive(target)
        if "application/json" in request.header("accept"):
            return HttpResponse.json(200, {"target": target, "redriven": moved})
        return HttpResponse(303, b"", [("location", "/")])

    # ------------------------------------------------------------------ dead letters

    def queue_pairs(self) -> dict[str, Any]:
        """Each consumer queue and its DLQ, as the `dlq` module names them (targets, "events")."""
        from timeline_bridge_tools import dlq

        by_kind: dict[tuple[str, str | None], str] = {
            (r.kind, r.target): url for url, r in self._roles.items()
        }
        pairs = {}
        for (kind, target), url in by_kind.items():
            if kind not in ("events", "delivery"):
                continue
            dead = by_kind.get((f"{kind}-dlq", target))
            name = target if kind == "delivery" and target else dlq.EVENTS
            if dead:
                pairs[name] = dlq.QueuePair(name, url, dead)
        return {n: pairs[n] for n in dlq.QUEUE_NAMES if n in pairs}

    def redrive(self, name: str) -> int:
        """Put the dead letters of `name` (a target, or "events") back (the `dlq` module's redrive)."""
        from timeline_bridge_tools import dlq

        pairs = self.queue_pairs()
        if name not in pairs:
            raise ValueError(f"unknown queue {name!r}")
        with self._dlq_lock:
            report = dlq.redrive(pairs[name], pairs, sqs=self.aws("sqs"))
        self.journal.redriven(report.keys)
        self._say(
            f"  redrive        {name:8} {report.moved} back on the queue"
            + (f", {report.failed} failed" if report.failed else "")
        )
        return int(report.moved)

    def dead_letters(self) -> dict[str, dict[str, Any]]:
        """Each DLQ: its depth and the first few dead letters (the `dlq` module's summaries)."""
        from timeline_bridge_tools import dlq

        found: dict[str, dict[str, Any]] = {}
        with self._dlq_lock:
            for name, pair in self.queue_pairs().items():
                count = dlq.depth(pair, self.aws("sqs"))
                letters = dlq.peek(pair, limit=DEAD_LETTER_PEEK, sqs=self.aws("sqs")) if count else []
                messages = []
                for letter in letters:
                    summary = letter.summary()
                    messages.append(
                        {
                            "key": summary.get("key"),
                            "mapping": summary.get("mapping"),
                            "reason": summary.get("reason"),
                            "status": summary.get("status"),
                            "code": summary.get("provider_code"),
                            "message": summary.get("provider_message"),
                            "details": summary.get("details"),
                            "attempts": summary.get("attempts"),
                        }
                    )
                    data = letter.data or {}
                    record = self.journal.job(str(data.get("key") or ""))
                    if data.get("key") and (record is None or record.status != "dead-lettered"):
                        # SQS moved it after maxReceiveCount: no function sent it there.
                        self.journal.dead_lettered(
                            data, reason_text(data.get("dead_letter") or {}) or "max receives"
                        )
                found[name] = {"count": count, "messages": messages}
        return found

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """What `.bridge/dev.json` holds (see `local.state`)."""
        env = {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            **DUMMY_CREDENTIALS,
        }
        # The table and bucket names the functions are given (IDEMPOTENCY_TABLE, IDENTITY_TABLE,
        # EVENTS_ARCHIVE_BUCKET, ...).
        names = {*self.tables.values(), *self.buckets.values()}
        for fn in self.functions.values():
            env.update({k: v for k, v in fn.env.items() if v in names})
        for url, role in self._roles.items():
            if role.kind == "events":
                env["EVENTS_QUEUE_URL"] = url
            elif role.kind == "events-dlq":
                env["EVENTS_DLQ_URL"] = url
            elif role.kind == "delivery" and role.target:
                env[f"{role.target.upper()}_QUEUE_URL"] = url
            elif role.kind == "delivery-dlq" and role.target:
                env[f"{role.target.upper()}_DLQ_URL"] = url
        urls = {name: url.replace("/<name>", "/") for name, url in self.webhook_urls.items()}
        return {
            "pid": os.getpid(),
            "started_at": self.started_at,
            "url": self.url,
            "port": self.port,
            "aws_endpoint_url": self.aws_endpoint_url,
            "region": self.region,
            "webhook_urls": urls,
            "queues": dict(self.queue_urls),
            "tables": dict(self.tables),
            "buckets": dict(self.buckets),
            "sandboxes": self.targets(),
            "env": env,
        }

    def targets(self) -> dict[str, dict[str, Any]]:
        """Each provider (the targets, then the APIs enrichment reads): sandbox or real, and its URL."""
        from timeline_bridge.target_registry import default_base_urls

        defaults = default_base_urls()

        found: dict[str, dict[str, Any]] = {}
        for service in [*TARGETS, *(s for s in (*self.sandboxes, *self.real_targets) if s not in TARGETS)]:
            if service in self.sandboxes:
                found[service] = {"url": self.sandboxes[service].url, "real": False}
            elif service in self.real_targets:
                url = self.real_targets[service] or defaults.get(service, "")
                found[service] = {"url": url, "real": True}
        return found

    def console_state(self) -> dict[str, Any]:
        """Everything the console shows (also `GET /_console/state.json`)."""
        dead = self.dead_letters() if self._running else {}
        snapshot = self.journal.snapshot()
        by_event: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for job in snapshot["jobs"]:
            by_event.setdefault((job["source"], job["event_id"]), []).append(
                {k: job[k] for k in ("mapping", "target", "key", "status", "reply_to")}
            )
        # What the person who clicked saw: the replies the Slack sandbox got at each click's response_url.
        replies = self.sandboxes["slack"].replies() if "slack" in self.sandboxes else []
        for webhook in snapshot["webhooks"]:
            webhook["jobs"] = [j for e in webhook["events"] for j in by_event.get((webhook["source"], e), [])]
            paths = {j["reply_to"] for j in webhook["jobs"] if j["reply_to"]}
            webhook["replies"] = [r["message"] for r in replies if r["response_url"] in paths]
        timelines = {t: list(reversed(self.sandboxes[t].events())) for t in TARGETS if t in self.sandboxes}
        return {
            "paused": self.paused_targets() if self._running else {},
            "generated_at": utc_now_iso(),
            "url": self.url,
            "webhook_urls": self.webhook_urls,
            "sandboxes": self.targets(),
            **snapshot,
            "dead_letters": dead,
            "mappings": self.loaded_mappings(),
            "timelines": timelines,
            "send_example": send_example(),
        }

    def paused_targets(self) -> dict[str, dict[str, Any]]:
        """Targets the deliverers are holding back now (a 429, a rejected credential): until when, why."""
        from timeline_bridge.delivery import ThrottleGate, iso

        paused: dict[str, dict[str, Any]] = {}
        for target in TARGETS:
            try:
                until, reason = ThrottleGate(
                    self.table_name, target, dynamodb=self.aws("dynamodb")
                ).shared_pause()
            except Exception:  # the console shows what it can
                log.debug("pause of %s unreadable", target, exc_info=True)
                continue
            if until > time.time():
                paused[target] = {"until": iso(until), "reason": reason}
        return paused

    def console_html(self) -> str:
        from timeline_bridge_tools.local.console import render

        return render(self.console_state(), csrf_token=self.console_token)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until every queue is empty and no function is running (tests)."""
        from timeline_bridge_tools.local.event_source import drain

        drain(self.mappings, timeout=timeout)


def _watching(report: Callable[..., None]) -> Callable[..., None]:
    """`report`, never raising: the journal must never break the pipeline it watches."""

    @functools.wraps(report)
    def safely(*args: Any, **kwargs: Any) -> None:
        try:
            report(*args, **kwargs)
        except Exception:
            log.exception("journal: could not record %s", report.__name__)

    return safely


class JournalObserver:
    """The stage observer of one local function: what its stage decides goes to the runtime's
    journal and, as one line each, to the terminal."""

    def __init__(self, runtime: LocalRuntime, function: LocalFunction) -> None:
        self.runtime = runtime
        self.function = function

    @_watching
    def events_enqueued(self, request_id: str, envelopes: Sequence[Envelope]) -> None:
        with self.runtime._accepted_lock:
            self.runtime._accepted.setdefault(request_id, []).extend(
                {"event_id": e.event_id, "source": e.source, "event_type": e.event_type} for e in envelopes
            )

    @_watching
    def jobs_enqueued(self, jobs: Sequence[DeliveryJob]) -> None:
        for job in jobs:
            self.runtime.journal.job_queued(_as_dict(job))

    @_watching
    def route_failed(self, body: str, receives: int, detail: str) -> None:
        envelope = _json(body)
        envelope = envelope if isinstance(envelope, dict) else {}
        self.runtime.journal.route_failure(envelope, receives, detail)
        self.runtime._say(
            f"  route failed   {envelope.get('source')} {envelope.get('event_type')} ({detail})"
        )

    @_watching
    def job_outcome(self, job: DeliveryJob, outcome: str, detail: str = "") -> None:
        journal, data = self.runtime.journal, _as_dict(job)
        target = f"{job.target:8}"
        if outcome in ("delivered", "duplicate"):
            journal.attempt(data, job.attempts + 1, "delivered")
            self.runtime._say(f"  delivered      {target} {job.mapping}")
        elif outcome == "retrying":
            journal.attempt(data, job.attempts, "retry", f"retry {job.retries} at {job.not_before}")
            self.runtime._say(f"  retrying       {target} {job.mapping} (attempt {job.attempts})")
        elif outcome == "deferred":
            journal.job_queued(data, status="queued", detail=f"waiting until {job.not_before}")
        elif outcome == "dead-lettered":
            reason = reason_text(job.dead_letter or {})
            if self.function.kind == "deliver":
                journal.attempt(data, max(job.attempts, 1), "dead-lettered", reason)
            journal.dead_lettered(data, reason)
            self.runtime._say(f"  dead-lettered  {target} {job.mapping} ({reason})")
        elif outcome == "returned":
            journal.attempt(data, job.attempts + 1, "error", detail or "returned to the queue")


# The functions' log records of a dead letter, which the terminal already shows as one readable
# line ("dead-lettered  <target> <mapping> (<why>)", from either stage): the JSON record after it
# would say the same thing twice, and less of it.
SAID_IN_A_LINE = frozenset({"mapping error: job dead-lettered", "timeline event dead-lettered"})


def _said_in_a_line(record: logging.LogRecord) -> bool:
    """A logging filter: False (drop it) for a record the terminal shows as a readable line."""
    return record.getMessage() not in SAID_IN_A_LINE


def _as_dict(job: DeliveryJob) -> dict[str, Any]:
    data = json.loads(job.to_json())
    return data if isinstance(data, dict) else {}


def send_example() -> str:
    """The `bridge send` line the console suggests: the first source that ships a sample event."""
    for spec in SOURCE_SPECS.values():
        if spec.example:
            return f"bridge send {spec.name} {spec.example}"
    return "bridge send SOURCE FILE"


def _base_url_env(service: str) -> str:
    """The variable holding a provider's base URL (`STORA_BASE_URL`, `SLACK_API_BASE_URL`)."""
    from timeline_bridge_tools.sandboxes import BASE_URL_ENV

    return BASE_URL_ENV.get(service, f"{service.upper()}_BASE_URL")


def _layer_path(folder: Path, opt_path: str) -> Path:
    """Where `/opt/...` of a data layer is locally. A layer build may put the files in a subfolder
    named like the source folder (`mappings/` → `/opt/mappings`): both layouts are understood."""
    parts = Path(opt_path).parts[2:]  # without "/" and "opt"
    direct = folder.joinpath(*parts)
    if parts and parts[0] == folder.name and not direct.exists():
        return folder.joinpath(*parts[1:])
    return direct


def _mentions_parameter(value: Any, parameters: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in parameters:
            return True
        return any(_mentions_parameter(v, parameters) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_parameter(v, parameters) for v in value)
    return False


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
