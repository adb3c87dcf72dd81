"""A small static HTTP/1.1 server on loopback, so a local composition loads like a website
(ES modules, ``fetch``, fonts, ``<video>`` with range requests).

It serves one folder and nothing outside it: paths are decoded, resolved (symlinks included)
and must stay under the root; anything else is 403/404.
"""

from __future__ import annotations

import logging
import mimetypes
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import trio

from ._util import background_nursery

__all__ = ["IDLE_TIMEOUT", "StaticServer", "serve_directory"]

logger = logging.getLogger(__name__)

#: Seconds a keep-alive connection may sit idle.
IDLE_TIMEOUT = 30.0
#: Largest request head accepted.
MAX_HEAD = 64 * 1024
_CHUNK = 256 * 1024
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
}
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")
_REASONS = {
    200: "OK",
    206: "Partial Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    416: "Range Not Satisfiable",
    431: "Request Header Fields Too Large",
}


@dataclass(frozen=True, slots=True)
class StaticServer:
    """A running server: its root and port."""

    root: Path
    port: int
    host: str = "127.0.0.1"

    def url_for(self, relative_path: str) -> str:
        """The URL of a file under the root."""
        return f"http://{self.host}:{self.port}/{quote(relative_path.lstrip('/'))}"


def content_type(path: Path) -> str:
    """The Content-Type of a file, independent of the host's mime database."""
    known = _TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


def resolve_request_path(root: Path, target: str) -> Path | None:
    """The file a request target names under ``root``, or ``None`` if it is outside or bad."""
    raw_path = urlsplit(target).path
    decoded = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    if "\0" in decoded or "\\" in decoded or not decoded.startswith("/"):
        return None
    parts = [part for part in decoded.split("/") if part]
    if any(part in (".", "..") for part in parts):
        return None
    root = root.resolve()
    candidate = root.joinpath(*parts)
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root):
        return None
    if resolved.is_dir():
        resolved = resolved / "index.html"
    return resolved


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for a single byte range, or ``None`` if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first_text, last_text = match.groups()
    if not first_text:
        length = int(last_text)
        if length == 0:
            return None
        return max(0, size - length), size - 1
    first = int(first_text)
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or first > last:
        return None
    return first, last


async def _send_head(
    stream: trio.SocketStream, status: int, headers: dict[str, str], keep_alive: bool
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}"]
    headers = {
        "Date": formatdate(usegmt=True),
        "Cache-Control": "no-store",
        "Connection": "keep-alive" if keep_alive else "close",
        **headers,
    }
    lines += [f"{name}: {value}" for name, value in headers.items()]
    await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


async def _send_error(stream: trio.SocketStream, status: int, keep_alive: bool) -> None:
    body = f"{status} {_REASONS.get(status, '')}\n".encode()
    await _send_head(
        stream,
        status,
        {"Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))},
        keep_alive,
    )
    await stream.send_all(body)


async def _read_head(stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
    while b"\r\n\r\n" not in buffer:
        if len(buffer) > MAX_HEAD:
            raise ValueError("request head too large")
        data = await stream.receive_some(65536)
        if not data:
            return None
        buffer.extend(data)
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    del buffer[:end]
    return head


async def _serve_file(
    stream: trio.SocketStream, path: Path, method: str, headers: dict[str, str], keep_alive: bool
) -> None:
    size = path.stat().st_size
    response = {"Content-Type": content_type(path), "Accept-Ranges": "bytes"}
    first, last, status = 0, size - 1, 200
    if "range" in headers and size > 0:
        parsed = _parse_range(headers["range"], size)
        if parsed is None:
            response["Content-Range"] = f"bytes */{size}"
            response["Content-Length"] = "0"
            await _send_head(stream, 416, response, keep_alive)
            return
        first, last = parsed
        status = 206
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = max(0, last - first + 1)
    response["Content-Length"] = str(length)
    await _send_head(stream, status, response, keep_alive)
    if method == "HEAD" or length == 0:
        return
    async with await trio.open_file(path, "rb") as handle:
        await handle.seek(first)
        remaining = length
        while remaining > 0:
            data = await handle.read(min(_CHUNK, remaining))
            if not data:
                break
            await stream.send_all(data)
            remaining -= len(data)


async def _handle(stream: trio.SocketStream, root: Path) -> None:
    buffer = bytearray()
    async with stream:
        while True:
            with trio.move_on_after(IDLE_TIMEOUT) as idle:
                try:
                    head = await _read_head(stream, buffer)
                except ValueError:
                    await _send_error(stream, 431, False)
                    return
            if idle.cancelled_caught or head is None:
                return
            try:
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, version = request_line.split(" ")
                headers = {}
                for line in header_lines:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
            except ValueError:
                await _send_error(stream, 400, False)
                return
            keep_alive = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
            if method not in ("GET", "HEAD"):
                await _send_error(stream, 405, keep_alive)
            else:
                try:
                    path = resolve_request_path(root, target)
                except UnicodeDecodeError:
                    path = None
                if path is None:
                    await _send_error(stream, 403, keep_alive)
                elif not path.is_file():
                    await _send_error(stream, 404, keep_alive)
                else:
                    await _serve_file(stream, path, method, headers, keep_alive)
            if not keep_alive:
                return


async def _connection(stream: trio.SocketStream, root: Path) -> None:
    try:
        await _handle(stream, root)
    except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError, OSError) as exc:
        logger.debug("client connection ended: %r", exc)


@asynccontextmanager
async def serve_directory(root: Path, *, host: str = "127.0.0.1") -> AsyncIterator[StaticServer]:
    """Serve ``root`` on ``host`` (loopback) at an ephemeral port while the block runs.

    Cancellation:
        The listener and every open connection are closed when the block exits, whatever
        the reason.
    """
    root = root.resolve()
    async with background_nursery() as nursery:
        handler = partial(_connection, root=root)
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host=host))
        port = listeners[0].socket.getsockname()[1]
        logger.debug("serving %s on http://%s:%d/", root, host, port)
        yield StaticServer(root=root, port=port, host=host)

