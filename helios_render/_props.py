"""Props schemas: a composition's props declared as JSON Schema, and props checked against it.

A composition declares its props in ``<script type="application/json"
id="helios-props-schema">…</script>`` (:func:`schema_from_html`), or as the ``schema`` of a
Helios-core composition (read from the page, see :mod:`helios_render._props_source`). This
module is pure (no I/O): the same checks serve ``render --props``, every row of a batch and the
preview's props editor.

* :func:`validate_props` checks props with the ``jsonschema`` library (the validator the schema's
  ``$schema`` names, Draft 2020-12 by default), fills in the defaults the schema declares
  (nested objects included), and returns a new dict; the props given are not changed.
* A failure is one :class:`~helios_render.PropsError` line naming the row (where there is one)
  and the prop: ``row 3: prop 'color': 12 is not of type 'string'``.
* ``strict=True`` also refuses props the schema does not declare.
* :func:`type_cell` reads a CSV cell as the schema types its column: kept as text for a
  ``string`` prop, else read as JSON when it parses.

It sits beside ``_model`` (the values layer) rather than inside it, because ``_model`` uses the
standard library only and this module needs ``jsonschema``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

from ._exceptions import PropsError

if TYPE_CHECKING:
    import jsonschema.exceptions

__all__ = [
    "SCHEMA_SCRIPT_ID",
    "check_schema",
    "iter_properties",
    "schema_from_html",
    "type_cell",
    "validate_props",
]

#: The ``id`` of the ``<script type="application/json">`` that holds a page's props schema.
SCHEMA_SCRIPT_ID = "helios-props-schema"

_SHOWN = 60  # characters of a value quoted in an error


class _SchemaScript(HTMLParser):
    """Collects the text of the first ``<script id="helios-props-schema">``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = False
        self.inside = False
        self.kind: str | None = None
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("id") == SCHEMA_SCRIPT_ID and not self.found:
            self.found = self.inside = True
            self.kind = (values.get("type") or "").split(";")[0].strip().lower()

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.parts.append(data)


def schema_from_html(text: str) -> dict[str, Any] | None:
    """The props schema a page declares in ``<script type="application/json"
    id="helios-props-schema">``, or ``None`` when it has none.

    Raises:
        PropsError: The script holds no JSON object, is not of type ``application/json``, or
            is not a valid JSON Schema.
    """
    parser = _SchemaScript()
    parser.feed(text)
    parser.close()
    if not parser.found:
        return None
    if parser.kind != "application/json":
        raise PropsError(
            f'the <script id="{SCHEMA_SCRIPT_ID}"> must have type="application/json", '
            f"got {parser.kind or 'none'!r}"
        )
    body = "".join(parser.parts)
    try:
        schema = json.loads(body)
    except ValueError as exc:
        raise PropsError(
            f'the page\'s <script id="{SCHEMA_SCRIPT_ID}"> is not valid JSON: {exc}'
        ) from exc
    check_schema(schema)
    return schema  # type: ignore[no-any-return]


def check_schema(schema: Any) -> None:
    """Raise :class:`~helios_render.PropsError` unless ``schema`` is a valid JSON Schema (an
    object, checked against its own meta-schema)."""
    if not isinstance(schema, dict):
        raise PropsError(
            f"the props schema must be a JSON object (a JSON Schema), got {_type_name(schema)}"
        )
    import jsonschema.exceptions  # here: a page without a schema never needs it (0.05 s)
    import jsonschema.validators

    validator = jsonschema.validators.validator_for(schema)
    try:
        validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        raise PropsError(
            f"the props schema is not valid JSON Schema"
            f"{f' at {where}' if where else ''}: {_one_line(exc.message)}"
        ) from None


def validate_props(
    schema: Mapping[str, Any] | None,
    props: Any,
    *,
    strict: bool = False,
    row: int | str | None = None,
) -> dict[str, Any]:
    """``props`` checked against ``schema``, with the schema's defaults filled in (a new dict;
    ``props`` is not changed).

    Args:
        schema: The composition's props schema; ``None`` when it declares none (then props
            are only checked to be an object, and ``strict`` is refused).
        props: The props given (``None`` for none).
        strict: Also refuse props the schema does not declare (at the top level, and in
            nested objects whose schema lists ``properties``).
        row: Named in the error: a batch row's index (``row 3``), or a label used as is.

    Raises:
        PropsError: One line naming the row and the prop: a wrong type, a missing required
            prop, an unknown prop with ``strict``, or a schema that is not valid.
    """
    where = _row_label(row)
    if props is None:
        props = {}
    if not isinstance(props, dict):
        raise PropsError(f"{where}props must be a JSON object, got {_type_name(props)}")
    if schema is None:
        if strict:
            raise PropsError(
                f"{where}--strict-props needs a props schema, and the composition declares "
                f'none (add <script type="application/json" id="{SCHEMA_SCRIPT_ID}">)'
            )
        return copy.deepcopy(props)
    check_schema(dict(schema))
    filled = copy.deepcopy(props)
    _fill_defaults(schema, filled)
    if strict:
        unknown = _unknown_prop(schema, filled, ())
        if unknown is not None:
            path, known = unknown
            listed = ", ".join(sorted(known)) or "none"
            raise PropsError(
                f"{where}prop {_path_name(path)} is not declared by the composition's props "
                f"schema (--strict-props; declared: {listed})"
            )
    import jsonschema.exceptions
    import jsonschema.validators

    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(filled))
    if error is not None:
        raise PropsError(f"{where}{_describe(error)}") from None
    return filled


def type_cell(text: str, prop_schema: Any) -> Any:
    """A CSV cell as its column's prop: the text itself when the prop's schema allows only
    strings, else the cell read as JSON when it parses (``42``, ``true``, ``[1, 2]``), else the
    text. An empty cell is ``None`` unless the prop is a string."""
    types = _types(prop_schema)
    if types == {"string"}:
        return text
    if text == "" and "string" not in types:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if "string" in types and not _fits(value, types):
        return text  # "007" for a prop that may be a string or a null stays "007"
    return value


def _types(prop_schema: Any) -> set[str]:
    if not isinstance(prop_schema, dict):
        return set()
    declared = prop_schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {item for item in declared if isinstance(item, str)}
    enum = prop_schema.get("enum")
    if isinstance(enum, list) and all(isinstance(item, str) for item in enum):
        return {"string"}
    if "const" in prop_schema and isinstance(prop_schema["const"], str):
        return {"string"}
    return set()


def _fits(value: Any, types: set[str]) -> bool:
    checks = {
        "null": value is None,
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
        "string": isinstance(value, str),
    }
    return any(checks.get(kind, False) for kind in types)


def _fill_defaults(schema: Mapping[str, Any], value: dict[str, Any]) -> None:
    """Fill the ``default`` of every declared property missing from ``value``, and go into
    nested objects (given or defaulted) whose schema declares properties."""
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            continue
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])
        if isinstance(value.get(name), dict):
            _fill_defaults(sub, value[name])


def _unknown_prop(
    schema: Mapping[str, Any], value: dict[str, Any], path: tuple[str, ...]
) -> tuple[tuple[str, ...], set[str]] | None:
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    patterns = schema.get("patternProperties")
    for name in value:
        if name in properties:
            sub = properties[name]
            if isinstance(sub, dict) and isinstance(value[name], dict):
                found = _unknown_prop(sub, value[name], (*path, name))
                if found is not None:
                    return found
            continue
        if isinstance(patterns, dict) and any(re.search(p, name) for p in patterns):
            continue
        return (*path, name), set(properties)
    return None


def _describe(error: jsonschema.exceptions.ValidationError) -> str:
    """One line: the prop (its path) and what is wrong with it."""
    path = tuple(error.absolute_path)
    required = error.validator_value
    if error.validator == "required" and isinstance(error.instance, dict):
        names = required if isinstance(required, list) else []
        missing = [name for name in names if name not in error.instance]
        if missing:
            return f"prop {_path_name((*path, missing[0]))} is required"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return f"{_path_name(path, top='props')}: {_one_line(error.message)}"
    if not path:
        return f"props: {_one_line(error.message)}"
    return f"prop {_path_name(path)}: {_one_line(error.message)}"


def _path_name(path: tuple[Any, ...], top: str = "") -> str:
    if not path:
        return top
    text = str(path[0])
    for part in path[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return repr(text)


def _row_label(row: int | str | None) -> str:
    if row is None:
        return ""
    if isinstance(row, int):
        return f"row {row}: "
    return f"{row}: "


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= 3 * _SHOWN else line[: 3 * _SHOWN - 1] + "…"


def _type_name(value: Any) -> str:
    shown = json.dumps(value, default=str)
    if len(shown) > _SHOWN:
        shown = shown[: _SHOWN - 1] + "…"
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for kind, name in kinds.items():
        if isinstance(value, kind):
            return f"{name} ({shown})"
    if value is None:
        return "null"
    return f"a number ({shown})" if isinstance(value, int | float) else shown


def iter_properties(schema: Mapping[str, Any] | None) -> Iterator[tuple[str, Any]]:
    """The top-level declared props of ``schema`` and their schemas (for typing CSV cells)."""
    if schema is None:
        return
    properties = schema.get("properties")
    if isinstance(properties, dict):
        yield from properties.items()
