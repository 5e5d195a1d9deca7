"""The shipped mappings done with the libraries alone: the baseline of the mapping figure.

Per mapping, once: every `${{ }}` expression `jmespath.compile`d, the target's JSON Schema compiled
by fastjsonschema. Per event: each expression searched with the bridge's custom functions
(jmespath `Options(custom_functions=...)`), the body assembled from the results as the language
says (a null whole value leaves its field out, text joins its values), the `required:` fields
checked, the body validated. The template is the one the engine renders (HubSpot's text fields
wrapped in to_text(), the job key written where the bridge sets it): preparing it is load work.
`bench.mapping` asserts each gives the engine's exact body before timing anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import fastjsonschema
import jmespath

Render = Callable[[dict[str, Any]], Any]
_EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def _is_false(value: Any) -> bool:
    """JMESPath's false values: null, false, "", [] and {} (0 is true)."""
    return value is None or value is False or value == "" or value == [] or value == {}


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _compile(template: Any, options: jmespath.Options) -> Render:
    if isinstance(template, dict):
        items = [(key, _compile(value, options)) for key, value in template.items()]

        def render_dict(ctx: dict[str, Any]) -> dict[str, Any]:
            out = {}
            for key, render in items:
                value = render(ctx)
                if value is not None:
                    out[key] = value
            return out

        return render_dict
    if isinstance(template, list):
        renders = [_compile(value, options) for value in template]
        return lambda ctx: [render(ctx) for render in renders]
    if not isinstance(template, str) or "${{" not in template:
        return lambda _ctx: template
    pieces = _EXPRESSION.split(template)  # text, expression, text, expression, ..., text
    if len(pieces) == 3 and not pieces[0] and not pieces[2]:
        whole = jmespath.compile(pieces[1].strip())
        return lambda ctx: whole.search(ctx, options=options)
    parts = [jmespath.compile(p.strip()) if i % 2 else p for i, p in enumerate(pieces)]

    def render_text(ctx: dict[str, Any]) -> str:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part.search(ctx, options=options)
            if value is None:
                raise ValueError("null inside text")
            out.append(_text(value))
        return "".join(out)

    return render_text


def library_mapping(mapping: Any, body_for_schema: dict[str, Any]) -> Callable[..., Any]:
    """`(event, meta, enrichment) -> body | None` for one loaded mapping, built from its document."""
    from timeline_bridge.mapping import contracts, engine
    from timeline_bridge.mapping.expressions import BridgeFunctions

    settings = mapping._settings
    options = jmespath.Options(custom_functions=BridgeFunctions(mapping.lookups))
    template = engine._with_text_values(mapping.target, mapping.raw["body"], settings)
    key_fields = engine._bridge_key_fields(mapping.target, template)
    render = _compile(engine._with_bridge_fields(key_fields, template), options)
    dynamic_keys = [f.path for f in key_fields]
    when_text = (mapping.when or "").strip()
    when_text = (
        when_text[3:-2].strip() if when_text.startswith("${{") and when_text.endswith("}}") else when_text
    )
    when = jmespath.compile(when_text) if when_text else None
    required = [path.split(".") for path in mapping.required]
    schema = dict(contracts.target_schema(mapping.target, body_for_schema, settings))
    schema.setdefault("$schema", "http://json-schema.org/draft-07/schema#")
    validate = fastjsonschema.compile(schema, formats={"uuid": contracts._UUID.pattern}, use_default=False)

    def run(event: Any, meta: dict[str, Any], enrichment: dict[str, Any]) -> Any:
        ctx = {"event": event, "meta": meta, "enrichment": enrichment}
        if when is not None and _is_false(when.search(ctx, options=options)):
            return None
        body = render(ctx)
        for path in dynamic_keys:  # the key where an expression gives the object holding it
            node = body
            for part in path[:-1]:
                child = node.get(part) if type(node) is dict else None
                node = node[part] = dict(child) if type(child) is dict else None  # not the event's own
            if type(node) is dict:
                node[path[-1]] = meta["key"]
        for path in required:
            value: Any = body
            for part in path:
                value = value.get(part) if type(value) is dict else None
            if value is None or value == [] or value == {} or (type(value) is str and not value.strip()):
                raise ValueError(f"required {'.'.join(path)} is empty")
        validate(body)
        return body

    return run
