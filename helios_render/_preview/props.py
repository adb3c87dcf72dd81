"""Props from the preview's editor, checked as ``render --props`` checks them.

The schema and the check are the batch's (:mod:`helios_render._props`,
:mod:`helios_render._props_source`): with a declared props schema, new props are validated
against it and its defaults filled in (what a render's page would get); without one, any JSON
value goes to the page, as with ``render --props``.
"""

from __future__ import annotations

import json
from typing import Any

from .._exceptions import PropsError
from .._props import validate_props

__all__ = ["check_props"]


def check_props(schema: dict[str, Any] | None, props: Any, *, strict: bool = False) -> Any:
    """``props`` as the composition's page will get them (the schema's defaults filled in).

    Raises:
        PropsError: One line naming the prop that does not match the schema, or props that
            are not JSON.
    """
    try:
        json.dumps(props)
    except (TypeError, ValueError) as exc:
        raise PropsError(f"props are not JSON: {exc}") from exc
    if schema is None and not strict:
        return props
    return validate_props(schema, props, strict=strict)
