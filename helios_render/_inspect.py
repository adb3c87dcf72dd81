"""``helios-render inspect`` and ``render --preflight``: load the composition once, with the
same runtime and loading rules as a render plus the inspection hooks, and report its size,
fps and length (with where each came from), its props schema, media and fonts, and whatever
may make its frames differ between runs or machines.

The JSON shape (:meth:`Inspection.to_json`) is documented in ``docs/inspect.md`` and stable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import trio

from ._chromium.browser import browser_version, find_browser
from ._chromium.inspection import FontUse, PageReport
from ._environment import check_timezone, digest_folder, resolve_source
from ._exceptions import PreflightError, WorkerError
from ._executors.worker import open_chunk_worker
from ._model.length import PageFacts, ResolvedTiming, resolve_timing, with_timing
from ._model.options import RenderOptions
from ._model.plan import Environment, default_concurrency, plan_render
from ._nursery import task_nursery
from ._timing import facts_cache_key
from ._toolcache import remember

__all__ = [
    "WARNING_KINDS",
    "Inspection",
    "inspect_composition",
    "inspection_environment",
    "inspection_from",
    "preflight",
    "props_defaults",
]

logger = logging.getLogger(__name__)

#: Every kind of warning, in the order they are listed (docs/inspect.md describes each).
WARNING_KINDS = (
    "network",
    "random-values",
    "web-audio",
    "worker",
    "cross-origin-iframe",
    "timezone-locale",
    "canvas-readback",
    "has-focus",
    "font-fallback",
    "media-decode",
    "video-keyframes",
    "props-schema",
)


@dataclass(frozen=True, slots=True)
class Inspection:
    """What one load of the composition told."""

    timing: ResolvedTiming
    facts: PageFacts
    timezone: str
    locale: str
    props_schema: Any = None
    media: list[dict[str, Any]] = field(default_factory=list)
    fonts: list[FontUse] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON value of ``inspect --json``."""
        timing = self.timing
        last = timing.decided_by or self.facts.last
        return {
            "width": timing.width,
            "height": timing.height,
            "fps": str(timing.fps),
            "frames": timing.frames,
            "duration": None if timing.duration is None else float(timing.duration),
            "source": {
                "size": timing.sources.get("size"),
                "fps": timing.sources.get("fps"),
                "frames": timing.sources.get("frames"),
            },
            "length": {
                "last_animation": None if last is None else {
                    "kind": last.kind,
                    "name": last.name,
                    "end": None if last.end is None else last.end / 1000,
                },
                "animations": self.facts.count,
                "unbounded": [e.name for e in self.facts.unbounded],
                "problem": timing.problem,
            },
            "props_schema": self.props_schema,
            "props_defaults": props_defaults(self.props_schema),
            "media": self.media,
            "fonts": [use.to_json() for use in self.fonts],
            "warnings": self.warnings,
            "timezone": self.timezone,
            "locale": self.locale,
        }

    def describe(self) -> list[str]:
        """The report as lines of text for a terminal."""
        timing, sources = self.timing, self.timing.sources
        lines = [
            f"size      {timing.width}x{timing.height} ({sources.get('size')})",
            f"fps       {timing.fps} ({sources.get('fps')})",
        ]
        if timing.frames is not None and timing.duration is not None:
            by = f"; last to end: {timing.decided_by.name}" if timing.decided_by else ""
            lines.append(
                f"frames    {timing.frames} = {float(timing.duration):g} s "
                f"({sources.get('frames')}{by})"
            )
        else:
            lines.append(f"frames    unknown: {timing.problem}")
        schema = "a JSON Schema" if self.props_schema is not None else "no schema"
        lines.append(f"props     {schema}")
        for item in self.media:
            duration = item.get("duration")
            length = f"{duration:g} s" if isinstance(duration, int | float) else "no duration"
            state = "decodes" if item.get("decodes") else f"does not decode ({item.get('error')})"
            lines.append(f"media     {item.get('element')} {item.get('src')}: {length}, {state}")
        for use in self.fonts:
            what = (
                "fallback!" if use.fallback
                else "web font" if use.web_font
                else "generic: each machine's fonts decide" if use.generic
                else "installed"
            )
            lines.append(f"font      '{use.family}' drawn with '{use.face}' ({what})")
        lines.append(f"pinned    time zone {self.timezone}, locale {self.locale}")
        for warning in self.warnings:
            lines.append(
                f"warning   [{warning['kind']}] {warning['message']} (at {warning['where']})"
            )
        if not self.warnings:
            lines.append("no warnings: nothing seen that would make frames differ")
        return lines


def props_defaults(schema: Any) -> dict[str, Any] | None:
    """The ``default`` of each top-level property of a props JSON Schema (``None`` without a
    schema or without defaults)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None
    defaults = {
        name: spec["default"]
        for name, spec in schema["properties"].items()
        if isinstance(spec, dict) and "default" in spec
    }
    if isinstance(schema.get("default"), dict):
        defaults = {**schema["default"], **defaults}
    return defaults or None


async def inspection_environment(options: RenderOptions) -> Environment:
    """The machine facts a page load needs (no output, no FFmpeg: nothing is encoded).

    Raises:
        UsageError: No Chromium, a missing composition, an unknown time zone.
    """
    check_timezone(options.timezone)
    browser = find_browser(options.browser)
    source, served = resolve_source(options.source, options.root)
    facts: dict[str, Any] = {}

    async def ask(name: str, question: Callable[[], object]) -> None:
        facts[name] = await trio.to_thread.run_sync(question)

    async with task_nursery() as nursery:
        nursery.start_soon(ask, "browser", lambda: browser_version(browser))
        if served is not None:
            nursery.start_soon(ask, "digest", lambda: digest_folder(served))
    return Environment(
        browser=browser,
        browser_version=facts["browser"],
        ffmpeg=Path(os.devnull),
        ffmpeg_version="",
        begin_frame=False,
        source=source,
        source_digest=facts.get("digest"),
        default_concurrency=default_concurrency(),
    )


def _media_warnings(media: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "kind": "media-decode",
            "message": "this media cannot be played here: "
            f"{item.get('error') or 'no decodable source'} (re-encode it, e.g. H.264 in MP4 or "
            "VP9 in WebM)",
            "where": f"{item.get('element')} {item.get('src')}".strip(),
        }
        for item in media
        if not item.get("decodes")
    ]


async def inspect_composition(
    options: RenderOptions, env: Environment | None = None
) -> Inspection:
    """Load ``options.source`` once with the inspection hooks and report what it told.

    Raises:
        UsageError: Bad options or environment (no Chromium, missing composition).
        OptionsError: A ``helios:*`` declaration that cannot be read.
        WorkerError: The page failed to load (``__cause__`` says why).

    Cancellation:
        The browser is stopped and reaped.
    """
    env = env or await inspection_environment(options)
    provisional = replace(options, fps=options.exact_fps, frames=1, duration=None)
    job = plan_render(provisional, env).jobs[0]
    job = replace(job, page=replace(job.page, inspect=True))
    try:
        async with open_chunk_worker() as worker:
            facts, report = await worker.inspect(job)
    except WorkerError as exc:
        # One page load, no chunk: its cause is what the user needs (as for a still).
        cause = exc.__cause__
        if isinstance(cause, Exception):
            raise cause from cause.__cause__
        raise
    key = facts_cache_key(options, env)
    if key:  # the next render of these files needs no page load for its timing
        remember(key, facts.to_json())
    return inspection_from(options, facts, report)


def inspection_from(options: RenderOptions, facts: PageFacts, report: PageReport) -> Inspection:
    """The inspection of a page that told ``facts`` and ``report``, with the user's
    ``options``: the resolved timing, and every warning in the documented order.

    Raises:
        OptionsError: A ``helios:*`` declaration that cannot be read.
    """
    length_given = options.frames is not None or options.duration is not None
    timing = resolve_timing(
        facts,
        width=options.width,
        height=options.height,
        fps=options.exact_fps if options.fps is not None else None,
        frames=options.frame_count if length_given else None,
    )
    warnings = list(report.warnings) + _media_warnings(report.media)
    if report.props_error is not None:
        warnings.append({
            "kind": "props-schema",
            "message": f"the props schema is not valid JSON: {report.props_error}",
            "where": '<script id="helios-props-schema">',
        })
    order = {kind: index for index, kind in enumerate(WARNING_KINDS)}
    warnings.sort(key=lambda w: order.get(w["kind"], len(order)))
    return Inspection(
        timing=timing,
        facts=facts,
        timezone=options.timezone,
        locale=options.locale,
        props_schema=report.props_schema,
        media=report.media,
        fonts=report.fonts,
        warnings=warnings,
    )


async def preflight(options: RenderOptions, env: Environment) -> tuple[RenderOptions, Environment]:
    """``render --preflight``: inspect the page, log each warning, and return ``options``
    with what the user left out (size, fps, length) taken from the same page load, and
    ``env`` with the font families the page's text asks for (a cluster compares the files
    its workers draw them from).

    Raises:
        PreflightError: ``options.strict`` and there is something to warn about.
        OptionsError: No length was given and the page has none.
        UsageError, WorkerError: As :func:`inspect_composition`.
    """
    inspection = await inspect_composition(options, env)
    for warning in inspection.warnings:
        logger.warning(
            "preflight: [%s] %s (at %s)", warning["kind"], warning["message"], warning["where"]
        )
    if options.strict and inspection.warnings:
        first = inspection.warnings[0]
        count = len(inspection.warnings)
        raise PreflightError(
            f"--strict: the preflight found {count} thing{'s' if count > 1 else ''} that may make "
            f"frames differ between runs or machines, first [{first['kind']}] {first['message']} "
            f"(at {first['where']}); see them all with helios-render inspect {options.source}"
        )
    families = tuple(sorted({use.family for use in inspection.fonts if not use.web_font}))
    return with_timing(options, inspection.timing), replace(env, font_families=families)
