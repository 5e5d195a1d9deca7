"""`bridge dev` keeps the route function's mappings in step with its mappings folder.

A thread looks at the folder every `POLL_SECONDS` (names, sizes and mtimes of the mapping files:
no file-watching dependency). Once a change has settled, the folder is checked as `bridge
validate` checks it. Valid: the route stage is configured afresh from the function's own
variables, so the next batch routes with the new set (a batch already being routed finishes on
the old one: the stage swaps atomically). Invalid: the running set stays, and the terminal and the
console say why, each error as `file:line: field: reason`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timeline_bridge.config import Settings
from timeline_bridge.mapping.loader import check_paths, display_path, mapping_files
from timeline_bridge.models import utc_now_iso

if TYPE_CHECKING:
    from timeline_bridge_tools.local.runtime import LocalFunction

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
# An empty batch through the route stage: it builds the router (loads the mappings) and routes nothing.
_NO_RECORDS: dict[str, Any] = {"Records": []}

Snapshot = tuple[tuple[str, int, int], ...]  # (file, mtime in ns, size) of each mapping file


@dataclass
class MappingStatus:
    """The set the route function runs on, and the last reload that was refused."""

    folder: str
    names: list[str] = field(default_factory=list)
    loaded_at: str = ""  # when `names` were loaded ("" while none is)
    # Why the last reload was refused, each `file:line: field: reason`; empty once one succeeds.
    errors: list[str] = field(default_factory=list)
    failed_at: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "names": list(self.names),
            "loaded_at": self.loaded_at,
            "errors": list(self.errors),
            "failed_at": self.failed_at,
        }


class MappingReloader:
    """Watches the mappings folder of one route function and reloads its stage on a valid change."""

    def __init__(
        self, function: LocalFunction, say: Callable[[str], None], *, interval: float = POLL_SECONDS
    ) -> None:
        self.function = function
        self.folder = Path(Settings.from_environ(function.env).mappings_dir)
        self.interval = interval
        self._say = say
        self._status = MappingStatus(display_path(self.folder))
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: Snapshot = ()

    def start(self) -> MappingReloader:
        """Load the folder's mappings now (the ones `bridge dev` lists at start), then watch it."""
        self._seen = self._snapshot()
        self.reload()
        self._thread = threading.Thread(target=self._watch, name="bridge-dev-mappings", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def status(self) -> dict[str, Any]:
        with self._lock:
            return self._status.as_dict()

    def reload(self) -> list[str]:
        """Check the folder; when valid, route with what it holds. Returns the lines that say so."""
        settings = Settings.from_environ(self.function.env)
        mappings, errors, _files = check_paths([self.folder], settings=settings)
        problems = [str(e) for e in errors]
        replaced = False  # the stage was configured afresh, whatever its router then loaded
        if not problems:
            try:
                stage = self.function.configure()
                replaced = True
                # Built now, on the files just checked: left to the next batch, the router would
                # load whatever the folder holds by then, even an edit that is refused meanwhile.
                stage(_NO_RECORDS, None)
            except Exception as exc:  # the folder changed again while loading: the next look retries
                problems = f"{type(exc).__name__}: {exc}".splitlines()
        now = utc_now_iso()
        with self._lock:
            status = self._status
            if problems:
                if replaced:  # the set that ran before is gone; the next batch loads the folder again
                    status.names, status.loaded_at = [], ""
                status.errors, status.failed_at = problems, now
                running = ", ".join(status.names) or "none"
                return [
                    f"mappings NOT reloaded from {status.folder} (still routing with: {running}):",
                    *(f"  {problem}" for problem in problems),
                ]
            status.names, status.loaded_at = [m.name for m in mappings], now
            status.errors, status.failed_at = [], ""
            return [f"mappings reloaded from {status.folder}: {', '.join(status.names) or 'none'}"]

    def _watch(self) -> None:
        pending: Snapshot | None = None  # a change seen, reloaded once it looks the same twice
        while not self._stopping.wait(self.interval):
            try:
                now = self._snapshot()
                if now == self._seen:
                    pending = None
                elif now != pending:
                    pending = now  # an editor may be halfway through saving: look again first
                else:
                    self._seen, pending = now, None
                    for line in self.reload():
                        self._say(line)
            except Exception:  # a watcher that stops would leave the console claiming a stale set
                log.exception("mappings folder %s: reload failed", self.folder)

    def _snapshot(self) -> Snapshot:
        files = mapping_files([self.folder]) if self.folder.is_dir() else []
        seen = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:  # removed while listing: the next look sees it gone
                continue
            seen.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(seen)
