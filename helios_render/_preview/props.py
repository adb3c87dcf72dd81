"""Props for the preview's editor: the composition's declared schema, and the check of new
props before they are applied."""

from __future__ import annotations

import json
import logging
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

__all__ = ["check_props", "props_schema"]

logger = logging.getLogger(__name__)

SCHEMA_ID = "helios-props-schema"


class _SchemaScript(HTMLParser):
    """Finds ``<script type="application/json" id="helios-props-schema">``'s text."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.text: list[str] = []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("id") == SCHEMA_ID and not self.found:
            self.inside = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self.inside:
            self.inside = False
            self.found = True

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text.append(data)


def props_schema(page: Path) -> Any:
    """The JSON Schema the page declares for its props, or ``None``."""
    try:
        html = page.read_text("utf-8", errors="replace")
    except OSError:
        return None
    parser = _SchemaScript()
    parser.feed(html)
    if not parser.found:
        return None
    try:
        return json.loads("".join(parser.text))
    except ValueError:
        logger.warning("preview: the props schema of %s is not JSON; props are checked as "
                       "JSON only", page)
        return None


def check_props(schema: Any, props: Any) -> list[str]:
    """What is wrong with ``props`` (empty when nothing is).

    The editor's text is parsed as JSON by the page and again here; the schema check is the
    batch's (issue 21), when this build has it.
    """
    try:
        json.dumps(props)
    except (TypeError, ValueError) as exc:
        return [f"props are not JSON: {exc}"]
    return []
