"""Props schemas (helios_render._props): the schema a page declares, props checked with
jsonschema, defaults filled in, one-line errors naming the row and the prop."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render import PropsError, validate_props
from helios_render._props import schema_from_html, type_cell

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "color": {"type": "string", "default": "#ff0000"},
        "count": {"type": "integer", "minimum": 0, "default": 3},
        "box": {
            "type": "object",
            "properties": {"size": {"type": "number", "default": 10}},
        },
    },
    "required": ["title"],
}


def test_defaults_are_filled_in_and_the_props_given_are_not_changed() -> None:
    given_props = {"title": "Hi", "box": {}}
    filled = validate_props(SCHEMA, given_props)
    assert filled == {"title": "Hi", "color": "#ff0000", "count": 3, "box": {"size": 10}}
    assert given_props == {"title": "Hi", "box": {}}


def test_a_wrong_type_is_one_line_naming_the_prop_and_the_row() -> None:
    with pytest.raises(PropsError) as caught:
        validate_props(SCHEMA, {"title": 12}, row=4)
    assert str(caught.value) == "row 4: prop 'title': 12 is not of type 'string'"


def test_a_missing_required_prop_is_named() -> None:
    with pytest.raises(PropsError, match=r"^prop 'title' is required$"):
        validate_props(SCHEMA, {"color": "#00ff00"})


def test_a_nested_prop_is_named_by_its_path() -> None:
    with pytest.raises(PropsError, match=r"^row 1: prop 'box.size': 'big' is not of type"):
        validate_props(SCHEMA, {"title": "x", "box": {"size": "big"}}, row=1)


def test_a_row_label_is_used_as_given() -> None:
    with pytest.raises(PropsError, match=r"^row 2 \(rows.csv line 4\): prop 'count'"):
        validate_props(SCHEMA, {"title": "x", "count": -1}, row="row 2 (rows.csv line 4)")


def test_strict_refuses_an_unknown_prop_and_lists_the_declared_ones() -> None:
    assert validate_props(SCHEMA, {"title": "x", "extra": 1})["extra"] == 1
    with pytest.raises(PropsError, match=r"prop 'extra' is not declared .*title"):
        validate_props(SCHEMA, {"title": "x", "extra": 1}, strict=True)
    with pytest.raises(PropsError, match=r"prop 'box.depth' is not declared"):
        validate_props(SCHEMA, {"title": "x", "box": {"depth": 1}}, strict=True)


def test_strict_without_a_schema_says_how_to_declare_one() -> None:
    assert validate_props(None, {"a": 1}) == {"a": 1}
    with pytest.raises(PropsError, match="helios-props-schema"):
        validate_props(None, {"a": 1}, strict=True)


def test_props_that_are_not_an_object_are_refused_when_a_schema_is_declared() -> None:
    with pytest.raises(PropsError, match=r"^props must be a JSON object, got an array"):
        validate_props(SCHEMA, [1, 2])


def test_an_invalid_schema_is_refused() -> None:
    with pytest.raises(PropsError, match="not valid JSON Schema"):
        validate_props({"type": "objekt"}, {})


def test_the_schema_script_is_found_in_a_page() -> None:
    page = (
        "<!doctype html><title>x</title><script>var a = '<p>';</script>"
        '<script type="application/json" id="helios-props-schema">'
        f"{json.dumps(SCHEMA)}</script><div></div>"
    )
    assert schema_from_html(page) == SCHEMA
    assert schema_from_html("<html><script>1</script></html>") is None


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ('<script id="helios-props-schema">{}</script>', 'type="application/json"'),
        ('<script type="application/json" id="helios-props-schema">{x</script>', "not valid JSON"),
        ('<script type="application/json" id="helios-props-schema">[1]</script>', "JSON object"),
    ],
)
def test_a_broken_schema_script_is_one_clear_error(script: str, message: str) -> None:
    with pytest.raises(PropsError, match=message):
        schema_from_html(script)


@pytest.mark.parametrize(
    ("text", "prop", "expected"),
    [
        ("007", {"type": "string"}, "007"),
        ("42", {"type": "string"}, "42"),
        ("42", {"type": "integer"}, 42),
        ("42", {}, 42),
        ("true", {"type": "boolean"}, True),
        ("[1, 2]", {"type": "array"}, [1, 2]),
        ("hello", {}, "hello"),
        ("", {"type": "integer"}, None),
        ("", {"type": "string"}, ""),
        ("12", {"enum": ["12", "13"]}, "12"),
        ("12", {"type": ["string", "null"]}, "12"),
        ("null", {"type": ["string", "null"]}, None),
    ],
)
def test_a_csv_cell_is_typed_by_its_prop(text: str, prop: Any, expected: Any) -> None:
    assert type_cell(text, prop) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@given(st.dictionaries(st.sampled_from(["title", "color", "count", "box", "x"]), json_values))
def test_validation_either_passes_with_defaults_or_raises_one_line(props: dict[str, Any]) -> None:
    before = copy.deepcopy(props)
    try:
        filled = validate_props(SCHEMA, props, row=0)
    except PropsError as exc:
        text = str(exc)
        assert "\n" not in text and text.startswith("row 0: ")
    else:
        assert filled["title"] == props["title"]
        assert {"color", "count"} <= filled.keys()
        for name, value in props.items():
            if name != "box":
                assert filled[name] == value
    assert props == before
