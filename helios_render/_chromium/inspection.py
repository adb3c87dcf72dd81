"""What an inspection reads from a page loaded with the inspection hooks (``js/inspect.js``,
``PageConfig.inspect``): the calls that may make frames differ between runs or machines, the
requests that left the served folder, the props schema, the media and their durations, and
for each font family the page's text asks for, the face that actually draws it (CDP
``CSS.getPlatformFontsForNode``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import trio

from .._exceptions import FrameTimeoutError
from .page import Page, shorten_url

__all__ = [
    "GENERIC_FAMILIES",
    "FontUse",
    "PageReport",
    "first_family",
    "lacks_keyframe_index",
    "read_page_report",
]

logger = logging.getLogger(__name__)

#: CSS generic families: the machine's fontconfig decides what draws them.
GENERIC_FAMILIES = frozenset({
    "serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui", "ui-serif",
    "ui-sans-serif", "ui-monospace", "ui-rounded", "math", "emoji", "fangsong",
})
#: Schemes of requests that reach another machine.
_REMOTE_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
#: The start of every Matroska/WebM file, and the ID of its Cues element (the keyframe index).
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_CUES_ID = b"\x1c\x53\xbb\x6b"
#: Bytes of a video read at most when looking for its keyframe index.
KEYFRAME_SCAN_LIMIT = 1 << 30


def lacks_keyframe_index(path: Path) -> bool:
    """Whether ``path`` is a Matroska/WebM file without Cues (its keyframe index), as
    MediaRecorder and piped FFmpeg output write them: seeking one means reading it from the
    start, and a browser may land on another frame than asked. Other files: ``False``."""
    try:
        with path.open("rb") as handle:
            if handle.read(4) != _EBML_MAGIC:
                return False
            tail = b""
            read = 4
            while read < KEYFRAME_SCAN_LIMIT:
                block = handle.read(1 << 20)
                if not block:
                    return True
                if _CUES_ID in tail + block:
                    return False
                tail = block[-3:]
                read += len(block)
    except OSError:
        return False
    return False


def _local_file(page: Page, url: str) -> Path | None:
    """The file under the served folder that ``url`` (of the page's own origin) names."""
    root = page.config.served_root
    own, asked = urlsplit(page.config.url), urlsplit(url)
    if root is None or (own.scheme, own.netloc) != (asked.scheme, asked.netloc):
        return None
    path = (Path(root) / unquote(asked.path).lstrip("/")).resolve()
    return path if path.is_relative_to(Path(root).resolve()) and path.is_file() else None


async def _keyframe_warnings(page: Page, media: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for item in media:
        element, src = str(item.get("element", "")), str(item.get("src", ""))
        path = _local_file(page, src) if element.startswith("<video") else None
        if path is None or not await trio.to_thread.run_sync(lacks_keyframe_index, path):
            continue
        out.append({
            "kind": "video-keyframes",
            "message": "this video has no keyframe index (a WebM without Cues, as MediaRecorder "
            "writes): seeking it is slow and may show another frame; remux it with "
            "ffmpeg -i IN -c copy OUT.webm",
            "where": f"{element} {src}",
        })
    return out


@dataclass(frozen=True, slots=True)
class FontUse:
    """A font family the page's text asks for (the first of its ``font-family`` list), and the
    face that draws it."""

    family: str
    #: The platform font that draws most of the text's glyphs (``None`` when none was told).
    face: str | None
    #: Whether the family asked for is not what draws the text.
    fallback: bool
    #: An element whose text asks for it.
    where: str
    #: A web font the page loaded (from its folder or a URL).
    web_font: bool = False
    #: A CSS generic family (``serif``, ``monospace``...): the machine's fonts decide its face.
    generic: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "face": self.face, "fallback": self.fallback}


@dataclass(frozen=True, slots=True)
class PageReport:
    """What the inspection hooks and CDP saw in one page."""

    #: ``{"kind", "message", "where"}`` for each call or request that may make frames differ.
    warnings: list[dict[str, str]] = field(default_factory=list)
    props_schema: Any = None
    #: Why the ``helios-props-schema`` script could not be read, if it could not.
    props_error: str | None = None
    media: list[dict[str, Any]] = field(default_factory=list)
    fonts: list[FontUse] = field(default_factory=list)


def first_family(families: str) -> str:
    """The first family of a CSS ``font-family`` list, unquoted."""
    first = families.split(",", 1)[0].strip()
    if len(first) >= 2 and first[0] == first[-1] and first[0] in "\"'":
        first = first[1:-1]
    return first


def _remote_requests(page: Page) -> list[dict[str, str]]:
    """A warning for each request to another origin than the page's own (once per URL)."""
    own = urlsplit(page.config.url)
    seen: set[str] = set()
    out = []
    for kind, url in page.requests:
        parts = urlsplit(url)
        if parts.scheme not in _REMOTE_SCHEMES or (parts.scheme, parts.netloc) == (
            own.scheme, own.netloc
        ) or url in seen:
            continue
        seen.add(url)
        what = "served folder" if page.config.served_root is not None else "page's origin"
        out.append({
            "kind": "network",
            "message": f"a request ({kind.lower()}) leaves the {what}: its answer can change "
            "between runs, or fail on a machine without that network",
            "where": shorten_url(url),
        })
    return out


async def _fonts(page: Page, probes: list[dict[str, Any]]) -> list[FontUse]:
    """Ask CDP which platform font draws each probed element's text."""
    if not probes:
        return []
    session = page.session
    await session.execute("DOM.enable")
    await session.execute("CSS.enable")
    root = (await session.execute("DOM.getDocument", {"depth": 0}))["root"]["nodeId"]
    found = await session.execute(
        "DOM.querySelectorAll", {"nodeId": root, "selector": "[data-helios-font-probe]"}
    )
    by_index = {int(p["index"]): p for p in probes if isinstance(p, dict) and "index" in p}
    uses: list[FontUse] = []
    for node in found.get("nodeIds", []):
        attributes = (await session.execute("DOM.getAttributes", {"nodeId": node}))["attributes"]
        values = dict(zip(attributes[::2], attributes[1::2], strict=True))
        probe = by_index.get(int(values.get("data-helios-font-probe", -1)))
        if probe is None:
            continue
        fonts = (await session.execute("CSS.getPlatformFontsForNode", {"nodeId": node}))["fonts"]
        family = first_family(str(probe.get("family", "")))
        used = max(fonts, key=lambda f: f.get("glyphCount", 0)) if fonts else None
        face = str(used["familyName"]) if used else None
        web_fonts = {str(name).lower() for name in probe.get("webFonts", [])}
        web_font = family.lower() in web_fonts and any(f.get("isCustomFont") for f in fonts)
        generic = family.lower() in GENERIC_FAMILIES
        fallback = not (
            generic
            or web_font
            or any(str(f.get("familyName", "")).lower() == family.lower() for f in fonts)
        )
        uses.append(
            FontUse(family, face, fallback, str(probe.get("where", "")), web_font, generic)
        )
    return uses


async def read_page_report(page: Page) -> PageReport:
    """Everything the inspection hooks noted in ``page`` (loaded with ``config.inspect``),
    its media and fonts.

    Raises:
        FrameTimeoutError: The page did not answer within ``config.timeout``.
        PageError: The hooks are missing (the page was not loaded for inspection).
    """
    with trio.move_on_after(page.config.timeout) as scope:
        raw = await page.evaluate("window.__heliosInspect.report()")
        data = raw if isinstance(raw, dict) else {}
        fonts = await _fonts(page, list(data.get("fonts") or []))
    if scope.cancelled_caught:
        raise FrameTimeoutError(
            f"the page could not be inspected within {page.config.timeout:g} s (raise --timeout)"
        )
    warnings = [
        {"kind": str(w.get("kind")), "message": str(w.get("message")), "where": str(w.get("where"))}
        for w in data.get("warnings") or []
        if isinstance(w, dict)
    ]
    media = [m for m in data.get("media") or [] if isinstance(m, dict)]
    warnings += await _keyframe_warnings(page, media)
    if page.config.served_root is not None:
        # A local page: its scripts and files by their path in the folder, not by this
        # run's port.
        origin = "{0.scheme}://{0.netloc}/".format(urlsplit(page.config.url))
        for warning in warnings:
            warning["where"] = warning["where"].replace(origin, "")
        for item in media:
            if isinstance(item.get("src"), str):
                item["src"] = item["src"].replace(origin, "")
    warnings += _remote_requests(page)
    for use in fonts:
        if use.fallback:
            warnings.append({
                "kind": "font-fallback",
                "message": f"the font family '{use.family}' is not available: its text is drawn "
                f"with '{use.face}' (install it on every machine, or serve it as a web font "
                "from the page's folder)",
                "where": use.where,
            })
    raw_props = data.get("props")
    props: dict[str, Any] = raw_props if isinstance(raw_props, dict) else {}
    return PageReport(
        warnings=warnings,
        props_schema=props.get("schema"),
        props_error=props.get("error"),
        media=media,
        fonts=fonts,
    )
