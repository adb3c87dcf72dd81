"""A length, a frame rate and a size for any page: what the user left out is read from the
composition (a Helios page's own timing, its ``helios:*`` declarations, the end of its last
finite animation), by loading it once; the answer is cached per composition contents.

:func:`resolve_page_timing` is the one function the commands call (render, still, preview,
batch, inspect); the rules themselves are pure, in :mod:`helios_render._model.length`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

from ._executors.worker import open_chunk_worker
from ._model.job import FolderSource
from ._model.length import PageFacts, ResolvedTiming, resolve_timing, with_timing
from ._model.options import RenderOptions
from ._model.plan import Environment, plan_render
from ._toolcache import recall, remember

__all__ = [
    "declared_in_file",
    "facts_cache_key",
    "read_page_facts",
    "resolve_composition",
    "resolve_page_timing",
]

logger = logging.getLogger(__name__)

#: Bumped when what the page is asked (``__helios.length()``) changes meaning.
FACTS_FORMAT = 1
#: The start of a page file read for its declarations.
DECLARATION_BYTES = 256 * 1024


class _MetaReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "meta":
            return
        values = dict(attrs)
        name = (values.get("name") or "").strip().lower()
        if name.startswith("helios:") and values.get("content") is not None:
            self.found.setdefault(name.removeprefix("helios:"), str(values["content"]))


def declared_in_file(path: Path) -> PageFacts:
    """The ``<meta name="helios:*">`` declarations written in a local page's HTML, read
    without a browser (the page's scripts cannot change them here)."""
    try:
        with path.open("rb") as handle:
            text = handle.read(DECLARATION_BYTES).decode("utf-8", "replace")
    except OSError:
        return PageFacts()
    reader = _MetaReader()
    reader.feed(text)
    return PageFacts(
        declared_duration=reader.found.get("duration"),
        declared_fps=reader.found.get("fps"),
        declared_size=reader.found.get("size"),
    )


def facts_cache_key(options: RenderOptions, env: Environment) -> str | None:
    """The tool-cache key of a local composition's facts: the same files, props, size,
    pinning and browser say the same; ``None`` for a URL, whose contents can change."""
    if env.source_digest is None:
        return None
    facts = [
        FACTS_FORMAT,
        env.source_digest,
        options.props,
        options.seed,
        options.frame_width,
        options.frame_height,
        options.timezone,
        options.locale,
        env.browser_version,
        str(env.source),
    ]
    return "page-facts|" + hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()


async def read_page_facts(options: RenderOptions, env: Environment) -> PageFacts:
    """Load the composition once in a browser of its own (the same runtime and loading rules
    as a render) and return what it says of its timing; cached for a local composition.

    Raises:
        WorkerError: The page failed to load (``__cause__`` says why).

    Cancellation:
        The browser is stopped and reaped.
    """
    provisional = replace(options, fps=options.exact_fps, frames=1, duration=None)
    job = plan_render(provisional, env).jobs[0]
    key = facts_cache_key(options, env)
    known = recall(key) if key else None
    if isinstance(known, dict):
        return PageFacts.from_json(known)
    async with open_chunk_worker() as worker:
        facts = await worker.page_facts(job)
    if key:
        remember(key, facts.to_json())
    return facts


def _needs_page(options: RenderOptions) -> bool:
    return options.fps is None or (options.frames is None and options.duration is None)


async def resolve_composition(
    options: RenderOptions, env: Environment, *, load: bool | None = None
) -> tuple[PageFacts, ResolvedTiming]:
    """What the page says and the size, fps and frames resolved from it and the user's
    options (with where each came from). The page is loaded when the fps or the length is
    left out (or ``load`` says so); else only a local page's declared size is read from its
    file.

    Raises:
        OptionsError: A declaration that cannot be read.
        WorkerError: The page failed to load.
    """
    if load if load is not None else _needs_page(options):
        facts = await read_page_facts(options, env)
    elif options.width is None and options.height is None and isinstance(env.source, FolderSource):
        facts = declared_in_file(Path(env.source.root) / env.source.entry)
    else:
        facts = PageFacts()
    given_frames = (
        options.frame_count if options.frames is not None or options.duration is not None else None
    )
    timing = resolve_timing(
        facts,
        width=options.width,
        height=options.height,
        fps=options.exact_fps if options.fps is not None else None,
        frames=given_frames,
    )
    return facts, timing


async def resolve_page_timing(options: RenderOptions, env: Environment) -> RenderOptions:
    """``options`` with the size, fps and length the user left out read from the composition
    (see :mod:`helios_render._model.length` for the order); ``options`` itself when the user
    gave them all.

    Raises:
        OptionsError: No length was given and the page has none (an animation that never
            ends, a bare requestAnimationFrame loop, nothing animated): the message names it.
        WorkerError: The page failed to load (``__cause__`` says why).
    """
    if not _needs_page(options) and (options.width is not None or options.height is not None):
        return options
    _, timing = await resolve_composition(options, env)
    resolved = with_timing(options, timing)
    taken = [
        f"{name} from the page ({source})"
        for name, source in timing.sources.items()
        if source not in ("user", "default", None)
    ]
    if taken:
        what = f"{timing.width}x{timing.height}, {timing.fps} fps, {timing.frames} frames"
        by = f"; the last to end: {timing.decided_by.name}" if timing.decided_by else ""
        logger.info("%s: %s%s", ", ".join(taken), what, by)
    return resolved
