"""The mapping engine: compiled mappings, rendering, and the set of mappings the route stage uses.

A `Mapping` is one mapping file, compiled: its `when`, every `${{ }}` in its body and its
`enrich:` arguments are JMESPath closures built once at load. Rendering an envelope gives a
`DeliveryJob` whose body has been checked against the target's contract, or raises
`MappingError` naming the file, line, field and reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from jmespath import exceptions as jp_exceptions

from timeline_bridge.errors import MappingError
from timeline_bridge.keys import event_scope, job_key
from timeline_bridge.mapping import contracts
from timeline_bridge.mapping.expressions import (
    BridgeFunctions,
    ExpressionError,
    Getter,
    compared_literals,
    compile_expression,
    did_you_mean,
    function_calls,
    has_non_finite,
    is_false,
    referenced_roots,
    split_template,
    stringify,
    to_text,
)
from timeline_bridge.mapping.yaml_lines import Path_, dotted, line_of
from timeline_bridge.models import DeliveryJob, Envelope, utc_now_iso
from timeline_bridge.target_registry import is_target, target_spec

if TYPE_CHECKING:
    from timeline_bridge.config import Settings
    from timeline_bridge.targets.spec import KeyField

CONTEXT_ROOTS = frozenset({"event", "meta", "enrichment"})
WHEN_ROOTS = frozenset({"event", "meta"})
MAX_REASON = 300


class RenderError(Exception):
    """Raised inside compiled closures; `Mapping` turns it into a MappingError with file and line."""

    def __init__(self, path: Path_, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.reason = reason


def _endpoint_name_problems(text: str) -> list[str]:
    """`meta.name` compared with a name no endpoint is recorded under: it would never match."""
    literals = [v for v in compared_literals(text, ("meta", "name")) if isinstance(v, str)]
    if not literals:
        return []
    from timeline_bridge.sources import endpoint_name_problem

    problems = []
    for literal in literals:
        problem = endpoint_name_problem(literal)
        if problem is not None:
            rule, canonical = problem
            hint = f"; write {canonical!r}" if canonical else ""
            problems.append(f"meta.name is never {literal!r} in {text!r}: {rule}{hint}")
    return problems


def _describe(exc: BaseException) -> str:
    # One line, short: errors are printed as `file:line: field: reason` (jmespath's parse errors
    # draw a caret diagram over several lines, at a 0-based column of the expression alone).
    return shorten(_syntax_error(exc) or " ".join(str(exc).split()) or type(exc).__name__)


def shorten(reason: str) -> str:
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 3] + "..."


def _syntax_error(exc: BaseException) -> str | None:
    """Where a JMESPath syntax error is, as a 1-based column of its expression and the text before it."""
    position = getattr(exc, "lex_position", None)
    expression = getattr(exc, "expression", None)
    if not isinstance(position, int) or not isinstance(expression, str):
        return None
    if isinstance(exc, jp_exceptions.IncompleteExpressionError):
        what = "the expression ends too early"
    elif isinstance(exc, jp_exceptions.LexerError):
        what = f"{' '.join(str(exc.message).split()).rstrip(':')} at {exc.lexer_value!r}"
    else:
        what = f"unexpected {getattr(exc, 'token_value', '')!r}"
    return f"syntax error: {what}, column {position + 1} of {expression!r} (after {expression[:position]!r})"


# --- compiling a body template ----------------------------------------------------------------


@dataclass
class _Compiler:
    """Compiles template values for one mapping file, collecting every error instead of stopping."""

    mapping_file: str
    lines: dict[Path_, int]
    functions: BridgeFunctions
    errors: list[MappingError] = field(default_factory=list)

    def error(self, path: Path_, reason: str) -> None:
        self.errors.append(
            MappingError(
                reason, mapping_file=self.mapping_file, field=dotted(path), line=line_of(self.lines, path)
            )
        )

    def expression(self, text: str, path: Path_, roots: frozenset[str] = CONTEXT_ROOTS) -> Getter | None:
        """Compile one JMESPath expression, with the checks jmespath itself defers to run time."""
        try:
            problems = self._static_checks(text, roots)
            if problems:
                for problem in problems:
                    self.error(path, problem)
                return None
            getter = compile_expression(text, self.functions)
        except (jp_exceptions.JMESPathError, ExpressionError) as exc:
            self.error(path, f"invalid expression {text!r}: {_describe(exc)}")
            return None
        return getter

    def _static_checks(self, text: str, roots: frozenset[str]) -> list[str]:
        problems = []
        for name in sorted(referenced_roots(text) - roots):
            allowed = ", ".join(sorted(roots))
            hint = (
                f" (the literal is `{name}`, in backticks)"
                if name in ("null", "true", "false")
                else did_you_mean(name, roots)
            )
            problems.append(f"unknown name {name!r} in {text!r}: expressions see {allowed}{hint}")
        table = self.functions.FUNCTION_TABLE
        for name, args in function_calls(text):
            spec = table.get(name)
            if spec is None:
                problems.append(f"unknown function {name}() in {text!r}{did_you_mean(name, table)}")
                continue
            signature = spec["signature"]
            low = len(signature)
            high = 3 if name == "lookup" else (None if signature and signature[-1].get("variadic") else low)
            if len(args) < low or (high is not None and len(args) > high):
                want = f"{low}" if high == low else f"{low} to {high}" if high else f"at least {low}"
                problems.append(f"{name}() takes {want} arguments, got {len(args)}, in {text!r}")
            if name == "lookup" and args and args[0].get("type") == "literal":
                table_name = args[0]["value"]
                if not isinstance(table_name, str):
                    problems.append(f"lookup() takes the table name as a string, in {text!r}")
                elif table_name not in self.functions.lookups:
                    problems.append(
                        f"lookup table {table_name!r} is not defined in lookups"
                        f"{did_you_mean(table_name, self.functions.lookups)}"
                    )
        problems.extend(_endpoint_name_problems(text))
        return problems

    def value(self, value: Any, path: Path_, roots: frozenset[str] = CONTEXT_ROOTS) -> Callable[[Any], Any]:
        """A closure rendering `value` (dict, list, string template or constant) for a context."""
        if isinstance(value, dict):
            return self._dict(value, path, roots)
        if isinstance(value, list):
            return self._list(value, path, roots)
        if isinstance(value, str):
            return self._string(value, path, roots)
        return lambda _ctx: value

    def _dict(self, value: dict[str, Any], path: Path_, roots: frozenset[str]) -> Callable[[Any], Any]:
        items: list[tuple[str, Callable[[Any], Any] | None, Any]] = []
        for key, item in value.items():
            if isinstance(item, dict | list) or (isinstance(item, str) and "${{" in item):
                items.append((key, self.value(item, (*path, key), roots), None))
            else:
                items.append((key, None, item))
        if all(render is None for _, render, _ in items):
            constants = {key: item for key, _, item in items}
            return lambda _ctx: dict(constants)

        def render_dict(ctx: Any) -> dict[str, Any]:
            out = {}
            for key, render, constant in items:
                if render is None:
                    out[key] = constant
                else:
                    result = render(ctx)
                    if result is not None:  # a whole `${{ }}` that is null leaves the field out
                        out[key] = result
            return out

        return render_dict

    def _list(self, value: list[Any], path: Path_, roots: frozenset[str]) -> Callable[[Any], Any]:
        items = [self.value(item, (*path, i), roots) for i, item in enumerate(value)]
        return lambda ctx: [render(ctx) for render in items]

    def _string(self, text: str, path: Path_, roots: frozenset[str]) -> Callable[[Any], Any]:
        try:
            parts = split_template(text)
        except jp_exceptions.JMESPathError as exc:
            self.error(path, f"invalid expression in {text!r}: {_describe(exc)}")
            return lambda _ctx: None
        if parts is None:
            return lambda _ctx: text
        compiled: list[str | tuple[Getter, str]] = []
        for part in parts:
            if isinstance(part, str):
                compiled.append(part)
                continue
            getter = self.expression(part[0], path, roots)
            compiled.append((getter or (lambda _ctx: None), part[0]))
        if len(compiled) == 1 and not isinstance(compiled[0], str):
            return _whole(compiled[0][0], compiled[0][1], path)
        return _interpolated(compiled, path)


def _whole(getter: Getter, text: str, path: Path_) -> Callable[[Any], Any]:
    """A string that is only `${{ expr }}`: the value keeps its JSON type (null omits the field)."""

    def whole(ctx: Any) -> Any:
        try:
            value = getter(ctx)
        except Exception as exc:  # any failure inside an expression is this mapping's error
            raise RenderError(path, f"${{{{ {text} }}}}: {_describe(exc)}") from exc
        kind = type(value)
        # NaN and Infinity parse from webhook JSON in Python but are not JSON: never send them.
        if (kind is float and not math.isfinite(value)) or (kind in (dict, list) and has_non_finite(value)):
            raise RenderError(path, f"${{{{ {text} }}}} is not valid JSON (NaN or Infinity)")
        return value

    return whole


def _interpolated(parts: list[str | tuple[Getter, str]], path: Path_) -> Callable[[Any], Any]:
    """Text with `${{ }}` inside: every value is stringified; a missing one is an error."""

    def interpolated(ctx: Any) -> str:
        chunks = []
        for part in parts:
            if isinstance(part, str):
                chunks.append(part)
                continue
            getter, text = part
            try:
                value = getter(ctx)
            except Exception as exc:
                raise RenderError(path, f"${{{{ {text} }}}}: {_describe(exc)}") from exc
            if value is None:
                raise RenderError(
                    path, f"${{{{ {text} }}}} is missing (null) inside text; use default() or ||"
                )
            chunks.append(value if type(value) is str else stringify(value))
        return "".join(chunks)

    return interpolated


# --- compiled mappings --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EnrichSpec:
    """One named fetch of a mapping's `enrich:` block; the enrichment stage runs it."""

    name: str
    fetch: str
    # The `with:` arguments rendered for one event's context (event, meta, enrichment so far).
    args: Callable[[Any], Any]


@dataclass(frozen=True, eq=False)
class ReplySpec:
    """A mapping's `reply:`: the text the person who clicked sees once the job is accepted."""

    render_text: Callable[[Any], Any]
    replace_original: bool
    # Where the source event says replies go (Slack: the click's `response_url`).
    url_of: Callable[[Any], str | None]


@dataclass(eq=False)
class Mapping:
    name: str
    source: str
    target: str
    file: str
    description: str = field(repr=False)
    when: str | None = field(repr=False)
    lookups: dict[str, dict[str, Any]] = field(repr=False)
    required: tuple[str, ...] = field(repr=False)
    enrich: dict[str, EnrichSpec] = field(repr=False)
    lines: dict[Path_, int] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)
    _when: Getter | None = field(repr=False)
    _body: Callable[[Any], Any] = field(repr=False)
    # The body fields the bridge sets to the job key (its target's key fields the mapping leaves).
    _key_fields: tuple[KeyField, ...] = field(repr=False)
    # The settings the mapping was loaded with: the contract of a body naming none is theirs.
    _settings: Settings = field(repr=False)
    reply: ReplySpec | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._required_paths = tuple(tuple(path.split(".")) for path in self.required)

    def error(self, reason: str, path: Path_ = ()) -> MappingError:
        return MappingError(
            reason, mapping_file=self.file, field=dotted(path), line=line_of(self.lines, path)
        )

    def key(self, envelope: Envelope) -> str:
        """The job key: source event (within its source, or its generic endpoint) and mapping."""
        return job_key(event_scope(envelope.source, envelope.name), envelope.event_id, self.name)

    def context(
        self, envelope: Envelope, enrichment: dict[str, Any] | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """What expressions see: `event`, `meta` (source, event_type, event_id, received_at, key, ...), `enrichment`."""
        return {
            "event": envelope.event,
            "meta": {
                "source": envelope.source,
                "event_type": envelope.event_type,
                "event_id": envelope.event_id,
                "occurred_at": envelope.occurred_at,
                "received_at": envelope.received_at,
                "name": envelope.name,
                "key": key or self.key(envelope),
            },
            "enrichment": enrichment or {},
        }

    def applies_to(self, context: dict[str, Any]) -> bool:
        """`when` is truthy for this context (always, without a `when`)."""
        if self._when is None:
            return True
        try:
            return not is_false(self._when(context))
        except Exception as exc:
            raise self.error(f"when: {_describe(exc)}", ("when",)) from exc

    def applies(self, envelope: Envelope) -> bool:
        return envelope.source == self.source and self.applies_to(self.context(envelope))

    def render_body(self, context: dict[str, Any]) -> dict[str, Any]:
        """The target body for a context: rendered, idempotency fields set, checked. Raises MappingError."""
        try:
            body = self._body(context)
        except RenderError as exc:
            raise self.error(exc.reason, exc.path) from None
        for key_field in self._key_fields:
            _set_key(body, key_field.path, context["meta"]["key"])
        self.check_body(body)
        return body

    def check_body(self, body: Any) -> None:
        """Check a rendered body: `required:` fields first, then the target's JSON Schema (compiled
        once). Raises MappingError."""
        for parts in self._required_paths:
            value: Any = body
            for part in parts:
                value = value.get(part) if type(value) is dict else None
            if value is None or value == [] or value == {} or (type(value) is str and not value.strip()):
                raise self.error("required value is empty", ("body", *parts))
        try:
            contracts.validate_body(self.target, body, self._settings)
        except contracts.ContractViolation as exc:
            where = ("body", *_split_field(exc.field))
            raise self.error(f"breaks the {self.target} contract: {exc.reason}", where) from None

    def render(self, envelope: Envelope, enrichment: dict[str, Any] | None = None) -> DeliveryJob:
        """Render this mapping for one envelope (without checking `when`)."""
        key = self.key(envelope)
        body = self.render_body(self.context(envelope, enrichment, key))
        return self._job(envelope, key, body)

    def reply_for(self, envelope: Envelope, context: dict[str, Any] | None) -> dict[str, Any] | None:
        """The job's `reply` (`url`, `text`, `replace_original`), or None: no `reply:`, a replayed
        event (nobody is waiting for it), or no reply URL on the event. `context` None: the job
        failed to render, so only the not-recorded note can go out (text None). A text that does
        not render costs the reply, never the timeline event."""
        spec = self.reply
        if spec is None or envelope.replay:
            return None
        url = spec.url_of(envelope.event)
        if not url:
            return None
        text = None
        if context is not None:
            try:
                value = spec.render_text(context)
                text = None if value is None else stringify(value)
            except RenderError as exc:
                from timeline_bridge.observability import logger

                error = self.error(exc.reason, exc.path)
                logger.warning(
                    "reply not rendered: the job goes out without it",
                    extra={"mapping_file": error.mapping_file, "line": error.line, "field": error.field},
                )
        return {"url": url, "text": text, "replace_original": spec.replace_original}

    def _job(self, envelope: Envelope, key: str, body: dict[str, Any]) -> DeliveryJob:
        return DeliveryJob(
            key=key,
            target=self.target,
            mapping=self.name,
            mapping_file=self.file,
            source=envelope.source,
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            occurred_at=envelope.occurred_at,
            body=body,
        )


def _split_field(text: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in text.replace("[", ".[").split("."):
        if not chunk:
            continue
        if chunk.startswith("[") and chunk.endswith("]") and chunk[1:-1].isdigit():
            parts.append(int(chunk[1:-1]))
        else:
            parts.append(chunk)
    return parts


def compile_mapping(
    data: dict[str, Any], lines: dict[Path_, int], mapping_file: str, settings: Settings
) -> tuple[Mapping | None, list[MappingError]]:
    """Compile a schema-valid mapping document for a function with `settings` (they choose the
    contract of a body naming none). Returns the mapping, or None and every error found."""
    # A schema-invalid document is still compiled (its other errors are reported too): every block
    # is read only when it has the shape the schema asks for.
    lookups = {
        name: dict(table) for name, table in _block(data, "lookups").items() if isinstance(table, dict)
    }
    compiler = _Compiler(mapping_file, lines, BridgeFunctions(lookups))
    target = data.get("target", "")
    body_value = data.get("body")
    body_raw: dict[str, Any] = _with_text_values(
        target, body_value if isinstance(body_value, dict) else {}, settings
    )

    when_text = data.get("when")
    when_getter = None
    if isinstance(when_text, str):
        expression = when_text.strip()
        parts = split_template(expression) if "${{" in expression else None
        if parts is not None and len(parts) == 1 and isinstance(parts[0], tuple):
            expression = parts[0][0]  # `when: "${{ expr }}"` is the bare expression
        if "enrichment" in _safe_roots(expression):
            compiler.error(("when",), "when cannot use enrichment: it is decided before any fetch runs")
        else:
            when_getter = compiler.expression(expression, ("when",), WHEN_ROOTS)

    render_body = compiler.value(body_raw, ("body",))

    enrich: dict[str, EnrichSpec] = {}
    for name, spec in _block(data, "enrich").items():
        if not isinstance(spec, dict):
            continue
        with_raw = spec.get("with") or {}
        enrich[name] = EnrichSpec(
            name=name,
            fetch=str(spec.get("fetch", "")),
            args=compiler.value(with_raw, ("enrich", name, "with")),
        )
    if enrich:
        from timeline_bridge.enrichment.checks import problems as enrich_problems

        for path, reason in enrich_problems(_block(data, "enrich"), body_raw):
            compiler.error(path, reason)

    reply = _compile_reply(compiler, data)
    _check_target_rules(compiler, target, body_raw, settings)
    key_fields = _bridge_key_fields(target, body_raw)
    if is_target(target) and not compiler.errors:
        for problem in contracts.template_problems(
            target, _with_bridge_fields(key_fields, body_raw), settings
        ):
            field_path: Path_ = ("body", *_split_field(problem.field))
            compiler.error(field_path, f"breaks the {target} contract: {problem.reason}")
    required = tuple(str(p).removeprefix("body.") for p in data.get("required") or ())
    for index, required_path in enumerate(required):
        node: Any = body_raw
        for part in required_path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            compiler.error(("required", index), f"required field {required_path!r} is not in body")

    if compiler.errors:
        return None, compiler.errors
    mapping = Mapping(
        name=str(data.get("name", "")),
        source=str(data.get("source", "")),
        target=target,
        file=mapping_file,
        description=data.get("description", ""),
        when=when_text,
        lookups=lookups,
        required=required,
        enrich=enrich,
        lines=lines,
        raw=data,
        _when=when_getter,
        _body=render_body,
        _key_fields=key_fields,
        _settings=settings,
        reply=reply,
    )
    return mapping, []


def _block(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Block `name` of a mapping document when it is a mapping, else {} (the schema says why)."""
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _compile_reply(compiler: _Compiler, data: dict[str, Any]) -> ReplySpec | None:
    """The `reply:` block, for a source that says where replies go (its spec's `reply_url`)."""
    raw = data.get("reply")
    if not isinstance(raw, dict):
        return None
    from timeline_bridge.sources import source_spec

    source = str(data.get("source", ""))
    try:
        url_of = source_spec(source).reply_url
    except ValueError:
        return None  # the unknown source is reported already
    if url_of is None:
        compiler.error(("reply",), f"{source} events carry no reply URL: reply is for Slack clicks")
        return None
    return ReplySpec(
        render_text=compiler.value(str(raw.get("text", "")), ("reply", "text")),
        replace_original=raw.get("replace_original", True) is not False,
        url_of=url_of,
    )


_UNSET: Any = object()


def _template_value(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    """What the template writes at `path` itself, or `_UNSET` (nothing there, or inside a value an
    expression gives)."""
    node: Any = body
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _UNSET
        node = node[part]
    return node


def _bridge_key_fields(target: str, body: dict[str, Any]) -> tuple[KeyField, ...]:
    """The target's key fields the bridge sets for this body template (not those the mapping
    may set and does)."""
    if not is_target(target):
        return ()
    return tuple(
        key_field
        for key_field in target_spec(target).key_fields
        if not (key_field.mapping_may_set and _template_value(body, key_field.path) is not _UNSET)
    )


def _set_key(body: dict[str, Any], path: tuple[str, ...], key: Any) -> None:
    """Set `path` of a rendered body to the job key, when the objects above it are there. Nested
    objects are copied first: a rendered object may be the event's own."""
    node = body
    for part in path[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            return
        node[part] = node = dict(child)
    node[path[-1]] = key


def _with_bridge_fields(key_fields: tuple[KeyField, ...], body: dict[str, Any]) -> dict[str, Any]:
    """The body template with the fields the bridge adds itself (see `render_body`)."""
    template = dict(body)  # the mapping's own template stays as written (`_set_key` copies below)
    for key_field in key_fields:
        _set_key(template, key_field.path, "${{ meta.key }}")
    return template


def _with_text_values(target: str, body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The body template with the values of the maps its contract takes as strings only
    (`contracts.text_fields`: HubSpot's tokens and properties) written as text: constants now,
    each whole `${{ expr }}` through to_text() per event. What the contract checks, and what
    `bridge map` shows, is then what the provider gets."""
    if not is_target(target):
        return body
    fields = [
        name for name in contracts.text_fields(target, body, settings) if isinstance(body.get(name), dict)
    ]
    if not fields:
        return body
    return {**body, **{name: {k: _as_text(v) for k, v in body[name].items()} for name in fields}}


def _as_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        return to_text(value)
    if not isinstance(value, str) or "${{" not in value:
        return value  # text, null, objects and arrays: the contract says what is wrong with them
    try:
        parts = split_template(value)
        if parts is None or len(parts) != 1 or not isinstance(parts[0], tuple):
            return value  # text with `${{ }}` inside renders text already
        wrapped = f"${{{{ to_text({parts[0][0]}) }}}}"
        if split_template(wrapped) != [(f"to_text({parts[0][0]})",)]:
            return value
    except jp_exceptions.JMESPathError:
        return value  # compiling the original reports it
    return wrapped


def _safe_roots(expression: str) -> set[str]:
    try:
        return referenced_roots(expression)
    except jp_exceptions.JMESPathError:
        return set()


def _check_target_rules(compiler: _Compiler, target: str, body: dict[str, Any], settings: Settings) -> None:
    """Static checks of the body against its target, before any event arrives."""
    if not is_target(target):
        return  # the schema already says so
    spec = target_spec(target)
    named = spec.contract_fields_named(body)
    if len(named) > 1:
        compiler.error(
            ("body", named[1]),
            f"{' and '.join(named)} name different {target} APIs: a mapping writes one (keep one of them)",
        )
    allowed = contracts.top_level_fields(target, body, settings)
    if allowed is not None:
        for key in body:
            if key not in allowed:
                compiler.error(
                    ("body", key),
                    f"unknown field for target {target} (allowed: {', '.join(sorted(allowed))})",
                )
    if spec.template_problems is not None:
        contract = contracts.contract_name(target, body, settings)
        for path, reason in spec.template_problems(body, contract):
            compiler.error(("body", *path), reason)
    for key_field in spec.key_fields:
        value = _template_value(body, key_field.path)
        if key_field.mapping_may_set or value is _UNSET:
            continue
        if str(value).replace(" ", "") != "${{meta.key}}":
            compiler.error(
                ("body", *key_field.path),
                f"{'.'.join(key_field.path)} is set by the bridge from the job key: leave it out",
            )


# --- the set of mappings ------------------------------------------------------------------------

Enricher = Callable[[Mapping, Envelope], dict[str, Any]]


def no_enrichment(mapping: Mapping, envelope: Envelope) -> dict[str, Any]:
    """The default enrich hook: nothing fetched."""
    return {}


@dataclass(frozen=True)
class RenderFailure:
    """One (event, mapping) that could not become a job. Dead-lettered to the target's DLQ."""

    mapping: Mapping
    error: MappingError
    key: str
    reason: str = "mapping_error"
    details: dict[str, Any] = field(default_factory=dict)  # e.g. the failed fetch, its status and code

    @property
    def target(self) -> str:
        return self.mapping.target

    def dead_letter(self, envelope: Envelope, stage: str = "route") -> DeliveryJob:
        """The dead-letter record: an empty body and the reason a person acts on."""
        job = self.mapping._job(envelope, self.key, {})
        job.reply = self.mapping.reply_for(envelope, None)
        job.dead_letter = {
            "reason": self.reason,
            "stage": stage,
            "mapping": self.mapping.name,
            "mapping_file": self.error.mapping_file or self.mapping.file,
            "line": self.error.line,
            "field": self.error.field,
            "detail": self.error.reason,
            "message": str(self.error),
            "target": self.mapping.target,
            "idempotency_key": self.key,
            "at": utc_now_iso(),
            **self.details,
            # The envelope, so the event can be routed again once the mapping is fixed.
            "envelope": {k: v for k, v in asdict(envelope).items() if k != "replay"},
        }
        return job


Outcome = DeliveryJob | RenderFailure


class MappingSet:
    """Every mapping of a deployment, grouped by source. Load once per cold start."""

    def __init__(self, mappings: Iterable[Mapping]) -> None:
        self.mappings = list(mappings)
        self._by_source: dict[str, list[Mapping]] = {}
        for mapping in self.mappings:
            self._by_source.setdefault(mapping.source, []).append(mapping)

    def __len__(self) -> int:
        return len(self.mappings)

    def __iter__(self) -> Iterator[Mapping]:
        return iter(self.mappings)

    def get(self, name: str) -> Mapping | None:
        return next((m for m in self.mappings if m.name == name), None)

    def for_source(self, source: str) -> list[Mapping]:
        return self._by_source.get(source, [])

    def render_jobs(self, envelope: Envelope, enrich: Enricher | None = None) -> list[Outcome]:
        """One outcome per matching mapping: a job, or the failure to dead-letter.

        One bad mapping never stops the others. The enrich hook runs only for mappings that
        declare `enrich:` and whose `when` holds; a RetryLaterError from it propagates (the
        record is retried), any other DeliveryFailure dead-letters that job.
        """
        from timeline_bridge.errors import DeliveryFailure, RetryLaterError

        outcomes: list[Outcome] = []
        for mapping in self.for_source(envelope.source):
            key = mapping.key(envelope)
            context = mapping.context(envelope, None, key)
            try:
                if not mapping.applies_to(context):
                    continue
                if mapping.enrich:
                    context["enrichment"] = (enrich or no_enrichment)(mapping, envelope) or {}
                body = mapping.render_body(context)
            except MappingError as exc:
                outcomes.append(RenderFailure(mapping, exc, key))
                continue
            except RetryLaterError:
                raise
            except DeliveryFailure as exc:
                # Enrichment failures name the fetch (enrich.<name>), its status and the provider's code.
                fetch = getattr(exc, "fetch", "")
                error = mapping.error(
                    f"enrichment failed: {exc}", ("enrich", fetch) if fetch else ("enrich",)
                )
                details = {
                    "fetch": fetch,
                    "fetch_kind": getattr(exc, "kind", ""),
                    "status": exc.status,
                    "code": exc.code,
                }
                outcomes.append(
                    RenderFailure(mapping, error, key, reason="enrichment_error", details=details)
                )
                continue
            job = mapping._job(envelope, key, body)
            job.reply = mapping.reply_for(envelope, context)
            outcomes.append(job)
        return outcomes
