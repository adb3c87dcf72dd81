"""The composition's origin: the composition's folder (or, for a URL SOURCE, a proxy of its
site), with the runtime in every HTML page.

A render installs the runtime over CDP (``Page.addScriptToEvaluateOnNewDocument``); a browser
that no CDP client drives gets it from the server instead: every HTML page served here starts
with the preview bridge and the runtime, filled in with the same settings a render's page gets
(:func:`~helios_render._chromium.page.runtime_source`). Nothing outside the served folder is
served (the same path rules and checks as the render's server), and only the control page's
origin may frame it.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from importlib import resources
from pathlib import Path

import trio

from .._chromium.page import runtime_source
from .._model.job import PageConfig
from .._source import server as static
from .http import Request, Response, text_response

__all__ = ["CompositionSite", "ProxySite", "inject_scripts"]

# After the doctype, <html ...> and <head ...> when they are there: scripts placed before the
# doctype would switch the page to quirks mode.
_PREAMBLE = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(?:\s|<!--.*?-->)*(?:<!doctype[^>]*>)?(?:\s|<!--.*?-->)*"
    rb"(?:<html(?:\s[^>]*)?>)?(?:\s|<!--.*?-->)*(?:<head(?:\s[^>]*)?>)?",
    re.IGNORECASE | re.DOTALL,
)


def inject_scripts(html: bytes, scripts: list[str]) -> bytes:
    """``html`` with ``scripts`` (inline) placed before anything the page runs."""
    tags = "".join(
        "<script>" + script.replace("</script", "<\\/script") + "</script>" for script in scripts
    ).encode()
    match = _PREAMBLE.match(html)
    at = match.end() if match else 0
    return html[:at] + tags + html[at:]


def bridge_source(control_origin: str, config: PageConfig) -> str:
    """The preview bridge with its settings filled in."""
    template = resources.files(__package__).joinpath("bridge.js").read_text("utf-8")
    settings = {
        "control": control_origin,
        "timeout": config.timeout,
        "fpsNumerator": config.fps.numerator,
        "fpsDenominator": config.fps.denominator,
    }
    return template.replace("__HELIOS_PREVIEW__", json.dumps(settings))


class CompositionSite:
    """Answers the composition origin's requests from ``root``; ``page_config()`` gives the
    settings (props included) that the next page load gets."""

    def __init__(
        self, root: Path, control_origin: Callable[[], str], page_config: Callable[[], PageConfig]
    ) -> None:
        self.root = root.resolve()
        self.control_origin = control_origin
        self.page_config = page_config

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED)
        try:
            target = static._parse_target(request.target)
            opened = await trio.to_thread.run_sync(static._open_file, self.root, target)
        except static._HTTPError as error:
            return text_response(error.status)
        if isinstance(opened, static._Redirect):
            location = "/" + "".join(f"{static._quote_segment(s)}/" for s in target.segments)
            return Response(HTTPStatus.MOVED_PERMANENTLY.value, [("Location", location)])
        # Only the control page may show the composition in a frame.
        headers = [
            ("Content-Type", opened.content_type),
            ("Content-Security-Policy", f"frame-ancestors {self.control_origin()}"),
        ]
        if opened.content_type.split(";")[0] == "text/html":
            with opened.file:
                html = await trio.to_thread.run_sync(opened.file.read)
            config = self.page_config()
            body = inject_scripts(
                html, [bridge_source(self.control_origin(), config), runtime_source(config)]
            )
            return Response(HTTPStatus.OK.value, headers, body)
        headers.append(("Accept-Ranges", "bytes"))
        size, first, length, status = opened.size, 0, opened.size, HTTPStatus.OK
        wanted = request.headers.get("range")
        if wanted is not None:
            try:
                byte_range = static._parse_range(wanted, size)
            except static._RangeNotSatisfiable:
                opened.file.close()
                return Response(
                    HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE.value,
                    [("Content-Range", f"bytes */{size}")],
                )
            if byte_range is not None:
                first, last = byte_range
                length, status = last - first + 1, HTTPStatus.PARTIAL_CONTENT
                headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        # The file opened (and checked) here is the one sent; the response closes it.
        return Response(status.value, headers, file=(opened.file, first, length))


#: Headers of the site's answer that the proxy passes on (everything else stays behind:
#: cookies, caching and security headers of the site are its own business).
_PASSED_ON = ("content-type", "content-range", "accept-ranges", "content-language")


def _fetch(url: str, byte_range: str | None, timeout: float) -> tuple[int, list[tuple[str, str]],
                                                                       bytes]:
    """GET ``url`` (blocking: run in a thread); any HTTP status is an answer."""
    headers = {"Range": byte_range} if byte_range else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, found, body = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, found, body = error.code, error.headers, error.read()
    kept = [(name, value) for name, value in found.items() if name.lower() in _PASSED_ON]
    return status, kept, body


class ProxySite:
    """The composition's origin for a URL SOURCE: every GET is fetched from the site's own
    origin (that one only: this is no open proxy) and HTML pages get the bridge and the runtime
    as :class:`CompositionSite` gives them. Nothing of the browser's request is passed on
    but the path and a ``Range``: no cookie, no referrer, and so never the control page's
    token."""

    def __init__(
        self,
        upstream: str,
        control_origin: Callable[[], str],
        page_config: Callable[[], PageConfig],
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.control_origin = control_origin
        self.page_config = page_config

    async def __call__(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED)
        if not request.target.startswith("/"):
            return text_response(HTTPStatus.BAD_REQUEST)
        config = self.page_config()
        url = self.upstream + request.target
        try:
            status, headers, body = await trio.to_thread.run_sync(
                _fetch, url, request.headers.get("range"), config.timeout,
                abandon_on_cancel=True,
            )
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            return text_response(
                HTTPStatus.BAD_GATEWAY, f"the preview could not fetch {url}: {reason}"
            )
        headers.append(("Content-Security-Policy", f"frame-ancestors {self.control_origin()}"))
        kind = next((value for name, value in headers if name.lower() == "content-type"), "")
        if kind.split(";")[0].strip().lower() == "text/html" and status == HTTPStatus.OK:
            body = inject_scripts(
                body, [bridge_source(self.control_origin(), config), runtime_source(config)]
            )
        return Response(status, headers, body)
