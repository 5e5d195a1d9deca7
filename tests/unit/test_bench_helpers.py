"""The benchmark's own arithmetic and parsing (the figures themselves are taken by `make bench`)."""

from __future__ import annotations

import importlib.util
import py_compile

import pytest

from bench.report import Figure, Row, fmt_ratio, markdown_table, table
from bench.stats import (
    IMPORT_MARKER,
    fmt_bytes,
    parse_importtime,
    percentile,
    self_time_by_package,
    top_level_total_us,
)

IMPORTTIME = f"""import time: self [us] | cumulative | imported package
import time:       100 |        100 | encodings
{IMPORT_MARKER}
import time: self [us] | cumulative | imported package
import time:        40 |         40 |     botocore.compat
import time:        60 |        100 |   botocore
import time:       300 |        400 | boto3
import time:        25 |         25 |   json.decoder
import time:        75 |        100 | json
some unrelated warning line
"""


def test_percentile_interpolates_between_ranks_when_between_samples():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 20, 30, 40, 50], 99) == pytest.approx(49.6)
    assert percentile([5, 1, 3], 0) == 1
    assert percentile([5, 1, 3], 100) == 5


def test_percentile_refuses_when_no_values_or_bad_rank():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_importtime_counts_only_top_level_after_marker_when_marker_given():
    entries = parse_importtime(IMPORTTIME)
    assert [(e.module, e.depth) for e in entries] == [
        ("botocore.compat", 2),
        ("botocore", 1),
        ("boto3", 0),
        ("json.decoder", 1),
        ("json", 0),
    ]
    assert top_level_total_us(entries) == 500


def test_importtime_counts_start_up_imports_when_no_marker():
    entries = parse_importtime(IMPORTTIME, marker=None)
    assert top_level_total_us(entries) == 600


def test_importtime_raises_when_marker_missing():
    with pytest.raises(ValueError):
        parse_importtime("import time:       1 |       1 | x\n")


def test_self_time_groups_submodules_under_their_root_package():
    totals = self_time_by_package(parse_importtime(IMPORTTIME))
    assert totals == {"boto3": 300, "botocore": 100, "json": 100}
    assert next(iter(totals)) == "boto3"


def test_fmt_bytes_picks_the_largest_fitting_unit():
    assert fmt_bytes(512) == "512 B"
    assert fmt_bytes(2048) == "2.0 KiB"
    assert fmt_bytes(5 * 1024 * 1024) == "5.0 MiB"


def test_table_says_not_measured_with_reason_when_figure_skipped():
    skipped = Figure("e2e", "5. End-to-end").skip("bridge dev absent")
    measured = Figure("mapping", "3. Mapping")
    measured.add(Row("map x", "10k/s", "30k/s", 3.0, "≤ 3x", True))
    text = table([measured, skipped])
    assert "not measured: bridge dev absent" in text
    assert "3.00x" in text and "yes" in text
    assert "| 5. End-to-end | not measured: bridge dev absent |" in markdown_table([skipped])
    assert fmt_ratio(0.0105) == "0.011"
    assert fmt_ratio(0.81, "%") == "81%"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (py_compile.PycInvalidationMode.UNCHECKED_HASH, "unchecked-hash"),
        (py_compile.PycInvalidationMode.CHECKED_HASH, "checked-hash"),
        (py_compile.PycInvalidationMode.TIMESTAMP, "timestamp"),
    ],
)
def test_pyc_kind_reads_the_flags_field_when_pyc_matches_source(tmp_path, mode, expected):
    from bench.package import pyc_kind

    source = tmp_path / "mod.py"
    source.write_text("X = 1\n")
    pyc = tmp_path / "mod.pyc"
    py_compile.compile(str(source), cfile=str(pyc), invalidation_mode=mode)
    assert pyc_kind(pyc, source) == expected


def test_pyc_kind_is_stale_when_source_changed_after_hash_compile(tmp_path):
    from bench.package import pyc_kind

    source = tmp_path / "mod.py"
    source.write_text("X = 1\n")
    pyc = tmp_path / "mod.pyc"
    py_compile.compile(
        str(source), cfile=str(pyc), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    source.write_text("X = 2\n")
    assert pyc_kind(pyc, source) == "stale"
    pyc.write_bytes(b"\0\0\0\0" + pyc.read_bytes()[4:])
    assert importlib.util.MAGIC_NUMBER != b"\0\0\0\0"
    assert pyc_kind(pyc, source) == "stale"


def test_first_difference_names_the_path_when_bodies_differ():
    from bench.stats import first_difference

    a = {"contact": {"id": "c1"}, "variables": {"deal_name": "A", "tags": [1, 2]}}
    assert first_difference(a, a) is None
    assert first_difference(a, {**a, "variables": {"deal_name": "B", "tags": [1, 2]}}) == (
        "body.variables.deal_name: 'A' != 'B'"
    )
    assert first_difference(a, {**a, "extra": 1}) == "body.extra: only in actual"
    assert first_difference([1, 2], [1]) == "body: 2 items != 1"
    assert first_difference({"n": 1}, {"n": 1.0}) == "body.n: 1 != 1.0"


def test_build_plan_reads_every_function_and_makefile_layer_when_the_template_is_parsed():
    from bench.context import ROOT
    from bench.package import build_plan

    functions, layers = build_plan()

    assert functions["RouteFunction"] == ROOT / "functions" / "route/"
    assert (
        functions["StoraDeliverFunction"]
        == functions["HubspotDeliverFunction"]
        == ROOT / "functions/deliver/"
    )
    # One ingest function per source, the route function, one deliver function per target.
    from timeline_bridge.sources import SOURCE_SPECS
    from timeline_bridge.target_registry import TARGET_SPECS

    assert len(functions) == len(SOURCE_SPECS) + 1 + len(TARGET_SPECS)
    assert {functions[f"{name.capitalize()}WebhookFunction"] for name in SOURCE_SPECS} == {
        ROOT / "functions" / f"{name}/" for name in SOURCE_SPECS
    }
    assert layers == {
        "CoreLayer": (ROOT / "layers/bridge/", ROOT / "layers/bridge/"),
        "MappingsLayer": (ROOT / "mappings/", ROOT / "layers/bridge"),
    }


@pytest.mark.parametrize("source", __import__("timeline_bridge").SOURCES)
def test_every_source_has_a_bench_request_its_function_accepts_when_signed_by_the_bench(source):
    """Figures 1 and 2 time one signed request per source: a source without one stops both."""
    from timeline_bridge import sources
    from timeline_bridge.config import Settings
    from timeline_bridge.http import WebhookRequest

    from bench.webhooks import BODIES, SECRET_NAMES, SECRETS, TIMESTAMP, local_settings, sign

    settings = Settings.from_environ(dict(SECRETS, **local_settings()))
    event = sign(source, BODIES[source](0)).function_url_event()
    request = WebhookRequest.from_function_url_event(event, max_body_bytes=settings.max_body_bytes)
    verifier = sources.for_request(source, request, settings)
    verifier.verify(request, [SECRETS[SECRET_NAMES[source]]], now=lambda: TIMESTAMP)

    assert verifier.parse(request).events
