"""One registry type for the bridge's plug-ins (sources, targets): name → spec.

The shipped names are known without importing anything, so a function lists sources or targets
and stays light; a shipped spec (`SPEC` of module `<package>.<name>`) is imported the first time it
is asked for. `add` registers a spec in-process (a test's throwaway source or target), `remove`
takes it away again; shipped specs stay.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any


class Registry[S](Mapping[str, S]):
    def __init__(self, kind: str, package: str, shipped: tuple[str, ...]) -> None:
        self.kind = kind  # "source", "target": for messages
        self.package = package
        self.shipped = shipped
        self._specs: dict[str, S | None] = dict.fromkeys(shipped)
        self._lock = threading.Lock()  # stages of one process may ask for a spec at once

    def __getitem__(self, name: str) -> S:
        spec = self._specs[name]
        if spec is None:
            with self._lock:
                spec = self._specs[name]
                if spec is None:
                    spec = self._specs[name] = self._import(name)
        return spec

    def _import(self, name: str) -> S:
        spec: Any = getattr(importlib.import_module(f"{self.package}.{name}"), "SPEC", None)
        if getattr(spec, "name", None) != name:
            raise TypeError(f"{self.package}.{name}.SPEC is not the {self.kind} spec of {name!r}")
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._specs  # without importing the spec

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def names(self) -> tuple[str, ...]:
        """Every name: the shipped ones in their order, then those added in-process."""
        return tuple(self._specs)

    def spec(self, name: str) -> S:
        """The spec of `name`; ValueError naming the known ones when there is none."""
        if name not in self._specs:
            raise ValueError(f"unknown {self.kind} {name!r} (known: {', '.join(self._specs)})")
        return self[name]

    def specs(self) -> tuple[S, ...]:
        return tuple(self[name] for name in self._specs)

    def add(self, spec: S) -> S:
        """Register `spec` in-process (ValueError when its name is taken)."""
        name: str = getattr(spec, "name")  # noqa: B009 - every spec type has a name
        with self._lock:
            if name in self._specs:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._specs[name] = spec
        return spec

    def remove(self, name: str) -> None:
        """Remove a spec `add` registered (a shipped one cannot be removed)."""
        if name in self.shipped:
            raise ValueError(f"{self.kind} {name!r} ships with the bridge")
        with self._lock:
            self._specs.pop(name, None)
