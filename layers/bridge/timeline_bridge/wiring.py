"""The composition root: what a stage depends on, built in one place from one function's settings.

A Lambda function's handler holds one `Stage`. At its first invocation the stage parses the
function's settings from the environment (`Dependencies.from_environ`) and builds what it runs
on: the AWS clients, the secrets, then the stage's own collaborators (the claim store and events
queue of ingest, the router and its mappings, the deliverer of a target). Nothing of it lives in
a module-level cache: tests and the local runtime build their own `Dependencies` (the runtime one
per function, from the variables the template gives that function) and `configure` the stage.

Stage outcomes reach whoever watches the pipeline through `Dependencies.observer`: the local
runtime's journal under `bridge dev`, nobody in Lambda (`NO_OBSERVER`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from timeline_bridge.aws import AwsClients
from timeline_bridge.config import Environ, Secrets, Settings

if TYPE_CHECKING:
    from timeline_bridge.models import DeliveryJob, Envelope

Event = dict[str, Any]
Handler = Callable[[Event, Any], Event]


class StageObserver(Protocol):
    """What the stages report as they decide (each call after the decision is on its queue)."""

    def events_enqueued(self, request_id: str, envelopes: Sequence[Envelope]) -> None:
        """Ingest put these source events on the events queue, answering request `request_id`."""

    def jobs_enqueued(self, jobs: Sequence[DeliveryJob]) -> None:
        """Route put these jobs on their delivery queues."""

    def route_failed(self, body: str, receives: int, detail: str) -> None:
        """An events-queue record was failed back to SQS (it is routed again)."""

    def job_outcome(self, job: DeliveryJob, outcome: str, detail: str = "") -> None:
        """What became of a job: `delivered`, `duplicate` (delivered before), `retrying` (a failed
        attempt, re-enqueued), `deferred` (put back, no attempt), `dead-lettered` (its reason in
        `job.dead_letter`), `returned` (failed back to SQS as it was)."""


class _NoObserver:
    def events_enqueued(self, request_id: str, envelopes: Sequence[Envelope]) -> None:
        pass

    def jobs_enqueued(self, jobs: Sequence[DeliveryJob]) -> None:
        pass

    def route_failed(self, body: str, receives: int, detail: str) -> None:
        pass

    def job_outcome(self, job: DeliveryJob, outcome: str, detail: str = "") -> None:
        pass


NO_OBSERVER: StageObserver = _NoObserver()


class Dependencies:
    """What every stage is built from: one function's settings, its AWS clients and secrets, who
    watches it, and the clock. (A plain class: it is built once per cold start, and a dataclass
    would cost every ingest cold start its code generation.)"""

    __slots__ = ("aws", "clock", "observer", "secrets", "settings")

    def __init__(
        self,
        settings: Settings,
        aws: AwsClients,
        secrets: Secrets,
        observer: StageObserver = NO_OBSERVER,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.secrets = secrets
        self.observer = observer
        self.clock = clock

    @classmethod
    def of(cls, settings: Settings, *, observer: StageObserver | None = None) -> Dependencies:
        """Fresh clients and secrets for a function with `settings`."""
        clients = AwsClients()
        return cls(
            settings, clients, Secrets(settings, lambda: clients("secretsmanager")), observer or NO_OBSERVER
        )

    @classmethod
    def from_environ(
        cls, environ: Environ | None = None, *, observer: StageObserver | None = None
    ) -> Dependencies:
        """The dependencies of a function whose variables are `environ` (default: this process's)."""
        return cls.of(Settings.from_environ(environ), observer=observer)


class Stage:
    """A handler's stage: `build(dependencies)` → the function run on each invocation, built at the
    first one from the environment unless `configure` gave it its dependencies before."""

    def __init__(self, build: Callable[[Dependencies], Handler]) -> None:
        self._build = build
        self._run: Handler | None = None
        self._lock = threading.Lock()

    def configure(self, dependencies: Dependencies) -> None:
        """Build the stage on `dependencies` (tests, the local runtime), replacing any built before."""
        run = self._build(dependencies)
        with self._lock:
            self._run = run

    def __call__(self, event: Event, context: Any) -> Event:
        run = self._run
        if run is None:
            with self._lock:
                if self._run is None:
                    self._run = self._build(Dependencies.from_environ())
                run = self._run
        return run(event, context)
