"""timeline-bridge core, all that Lambda runs: sources, mapping engine, enrichment, targets, delivery,
AWS adapters. The CLI, the local runtime and the sandboxes are `timeline_bridge_tools`."""

__version__ = "0.1.0"


def __getattr__(name: str) -> tuple[str, ...]:
    # `SOURCES` comes from the source registry, imported on first use: importing the package
    # stays light and the registry can import the package without a cycle.
    if name == "SOURCES":
        from timeline_bridge.sources import source_names

        return source_names()
    # `TARGETS`: the target registry's names (no target module is imported for them).
    if name == "TARGETS":
        from timeline_bridge.target_registry import target_names

        return target_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
