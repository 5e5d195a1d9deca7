"""Declarative mappings: `mappings/*.yaml` files that turn source events into target request bodies.

from timeline_bridge.mapping import load_mappings
mappings = load_mappings("mappings")           # every file checked and compiled, once
for outcome in mappings.render_jobs(envelope):  # one per matching mapping (fan-out)
    ...                                         # a DeliveryJob, or a RenderFailure to dead-letter
"""

from timeline_bridge.mapping.engine import (
    Enricher,
    EnrichSpec,
    Mapping,
    MappingSet,
    Outcome,
    RenderFailure,
    no_enrichment,
)
from timeline_bridge.mapping.loader import check_paths, load_mapping, load_mappings, mapping_files

__all__ = [
    "EnrichSpec",
    "Enricher",
    "Mapping",
    "MappingSet",
    "Outcome",
    "RenderFailure",
    "check_paths",
    "load_mapping",
    "load_mappings",
    "mapping_files",
    "no_enrichment",
]
