"""timeline-bridge core: sources, mapping engine, targets, delivery, AWS adapters, local runtime, CLI."""

SOURCES = ("hubspot", "slack", "pipedrive", "generic")
TARGETS = ("stora", "hubspot", "matter", "applied")

__version__ = "0.1.0"
