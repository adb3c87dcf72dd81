"""Where a composition's props schema comes from, and a render's props checked against it
before anything renders.

* A local page: its ``<script type="application/json" id="helios-props-schema">``, read from
  the file (no browser).
* Otherwise (a URL, or a local page without that script whose props need checking): the page
  is loaded once, nothing rendered, and asked for the same script and for the ``schema`` of a
  Helios-core composition (``window.helios.schema``). For a local page the answer is kept
  (:mod:`helios_render._toolcache`) under the folder's digest, so it is asked once.

The check itself is pure: :func:`helios_render._props.validate_props`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._executors.worker import open_chunk_worker
from ._model.job import FolderSource
from ._model.options import RenderOptions
from ._model.plan import Environment, plan_render
from ._props import SCHEMA_SCRIPT_ID, check_schema, schema_from_html, validate_props
from ._toolcache import recall, remember

__all__ = ["PAGE_SCHEMA_EXPRESSION", "check_render_props", "props_schema"]

logger = logging.getLogger(__name__)

#: Evaluated in a loaded page: its schema script and a Helios-core composition's ``schema``.
PAGE_SCHEMA_EXPRESSION = f"""(() => {{
  const script = document.getElementById({json.dumps(SCHEMA_SCRIPT_ID)});
  const helios = window.helios;
  let schema = null;
  if (helios && typeof helios === "object") {{
    schema = helios.schema ?? (helios.options && helios.options.schema) ?? null;
    if (schema === null && typeof helios.getState === "function") {{
      try {{ schema = (helios.getState() || {{}}).schema ?? null; }} catch (error) {{}}
    }}
  }}
  return {{
    script: script ? script.textContent : null,
    scriptType: script ? script.type : null,
    helios: schema === null ? null : JSON.parse(JSON.stringify(schema)),
  }};
}})()"""


async def props_schema(
    options: RenderOptions, env: Environment, *, ask_page: bool = True
) -> dict[str, Any] | None:
    """The composition's props schema, or ``None`` when it declares none.

    Args:
        options: The render (its source, size, browser and props load the page).
        env: The machine's facts (where the source is, its digest).
        ask_page: Load the page to ask when the file declares none (a Helios-core
            composition's schema); ``False`` looks at the file only.

    Raises:
        PropsError: The declared schema is not valid JSON Schema.
        WorkerError: The page failed to load while it was asked.
    """
    if isinstance(env.source, FolderSource):
        entry = Path(env.source.root) / env.source.entry
        try:
            text = entry.read_text("utf-8", errors="replace")
        except OSError:
            text = ""
        schema = schema_from_html(text)
        if schema is not None or not ask_page:
            return schema
    elif not ask_page:
        return None
    key = None
    if env.source_digest is not None:
        facts = [env.source_digest, env.browser_version, str(env.source)]
        key = "props-schema|" + hashlib.sha256(json.dumps(facts).encode()).hexdigest()
        known = recall(key)
        if isinstance(known, dict) and "schema" in known:
            return known["schema"]  # type: ignore[no-any-return]
    schema = await _ask_page(options, env)
    if key is not None:
        remember(key, {"schema": schema})
    return schema


async def _ask_page(options: RenderOptions, env: Environment) -> dict[str, Any] | None:
    provisional = replace(
        options,
        fps=options.exact_fps,
        frames=1,
        duration=None,
        start_frame=0,
    )
    job = plan_render(provisional, env).jobs[0]
    async with open_chunk_worker() as worker:
        answer = await worker.evaluate_loaded(job, PAGE_SCHEMA_EXPRESSION)
    if not isinstance(answer, dict):
        return None
    script = answer.get("script")
    if isinstance(script, str):
        kind = answer.get("scriptType") or ""
        tag = f'<script type="{kind}" id="{SCHEMA_SCRIPT_ID}">{_escape(script)}</script>'
        return schema_from_html(tag)
    schema = answer.get("helios")
    if schema is None:
        return None
    check_schema(schema)
    return schema  # type: ignore[no-any-return]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


async def check_render_props(options: RenderOptions, env: Environment) -> RenderOptions:
    """``options`` with its props checked against the composition's schema and its defaults
    filled in (``options`` itself when there is nothing to check or fill).

    A local page's file is always read; the page is loaded to ask only when props were
    given or ``strict_props`` is set (a Helios-core composition fills its own defaults).

    Raises:
        PropsError: One line naming the prop (see
            :func:`~helios_render._props.validate_props`).
        WorkerError: The page failed to load while it was asked.
    """
    ask = options.props is not None or options.strict_props
    schema = await props_schema(options, env, ask_page=ask)
    if schema is None and not options.strict_props:
        return options  # no schema: any JSON value goes to the page, as before
    filled = validate_props(schema, options.props, strict=options.strict_props)
    if filled == options.props:
        return options
    if options.props is None and not filled:
        return options
    logger.debug("props with the schema's defaults: %s", json.dumps(filled)[:200])
    return replace(options, props=filled)

