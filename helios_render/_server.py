"""A minimal static HTTP/1.1 file server on Trio, for serving a composition over loopback.

Chromium refuses ES modules, ``fetch`` and several font and media features on ``file://``
URLs, so a local composition folder is served over ``http://127.0.0.1:PORT/`` instead. The
server understands just enough HTTP/1.1 for a browser: ``GET`` and ``HEAD``, persistent
connections, and single byte ranges (needed to seek a ``<video>``).

It serves one folder and nothing outside it: the request path is percent-decoded once,
``..`` segments, backslashes and NUL bytes are refused, and the resolved file (symlinks
followed) must lie under the resolved root.

Only ``trio`` and the standard library are used.
"""

from __future__ import annotations

import ipaddress
import logging
import mimetypes
import os
import re
import stat
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from io import BufferedReader
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import trio

__all__ = ["CHUNK_SIZE", "IDLE_TIMEOUT", "MAX_HEAD_SIZE", "StaticServer", "serve_directory"]

logger = logging.getLogger(__name__)

#: Seconds a connection may wait for (the rest of) a request head, or for the client to
#: accept more response bytes, before it is closed.
IDLE_TIMEOUT: float = 30.0
#: Largest request head (request line plus headers) accepted, in bytes.
MAX_HEAD_SIZE: int = 64 * 1024
#: Bytes read from a file and sent per step.
CHUNK_SIZE: int = 256 * 1024

_RECEIVE_SIZE = 64 * 1024
# After a response that closes the connection, unread request bytes are drained for a
# moment so that closing the socket does not reset it before the client reads the response.
_LINGER_SECONDS = 2.0
_LINGER_MAX_BYTES = 1024 * 1024

_SERVER_NAME = "helios-render"
_ALLOW = "GET, HEAD"

# Types the browser must see exactly, whatever the host's mime database says.
_CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html",
    ".htm": "text/html",
    ".xhtml": "application/xhtml+xml",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".cjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".wasm": "application/wasm",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".vtt": "text/vtt",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".apng": "image/apng",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mov": "video/quicktime",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".flac": "audio/flac",
}

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) HTTP/(\d)\.(\d)")
_HEADER_NAME = re.compile(_TOKEN)
_CONTENT_LENGTH = re.compile(r"\d{1,18}")
_BYTE_RANGE = re.compile(r"[ \t]*(\d{0,18})[ \t]*-[ \t]*(\d{0,18})[ \t]*")


@dataclass(frozen=True, slots=True)
class StaticServer:
    """A running static server.

    Attributes:
        root: The served folder, fully resolved.
        port: The TCP port the server listens on.
        host: The IP address the server listens on.
    """

    root: Path
    port: int
    host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        """The server's origin, e.g. ``http://127.0.0.1:8123`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, relative_path: str) -> str:
        """The URL of a path under the root.

        Args:
            relative_path: A ``/``-separated path relative to the root, e.g.
                ``"sub/index.html"``. Leading slashes are ignored. It is a path, not a URL:
                every component is percent-encoded, including ``?``, ``#`` and ``%``.

        Returns:
            The URL, e.g. ``http://127.0.0.1:8123/sub/index.html``.
        """
        return f"{self.base_url}/{quote(relative_path.lstrip('/'), safe='/')}"


@asynccontextmanager
async def serve_directory(root: Path, *, host: str = "127.0.0.1") -> AsyncIterator[StaticServer]:
    """Serve the files under ``root`` over HTTP while the block runs.

    The server listens on an ephemeral port of ``host`` only and runs in a nursery owned by
    this context manager. Each connection is handled in its own task; a failing or
    disconnecting client only ends its own connection.

    Args:
        root: The folder to serve. Nothing outside it (after resolving symlinks) is served.
        host: The IP address to listen on. Keep the loopback default unless the files must
            be reachable from elsewhere.

    Yields:
        The running server, to build URLs with :meth:`StaticServer.url_for`.

    Raises:
        ValueError: ``host`` is not an IP address literal.
        NotADirectoryError: ``root`` is not a folder.
        OSError: The port could not be opened.

    Cancellation:
        When the block exits for any reason, including cancellation, the listener is closed
        and every connection task is cancelled and its socket closed, idle keep-alive ones
        included, before the context manager returns. A cancellation of the block propagates
        unchanged, as does any other exception raised in it (never wrapped in an
        ``ExceptionGroup``). Cancelled while starting, nothing is left listening.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise ValueError(f"host must be an IP address literal, got {host!r}") from exc
    resolved_root = Path(await trio.Path(root).resolve())
    if not await trio.Path(resolved_root).is_dir():
        raise NotADirectoryError(f"cannot serve {root}: not a folder")
    handler = partial(_handle_connection, root=resolved_root)
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, handler, 0, host=str(address))
        )
        port = int(listeners[0].socket.getsockname()[1])
        server = StaticServer(root=resolved_root, port=port, host=str(address))
        logger.debug("serving %s at %s/", resolved_root, server.base_url)
        try:
            yield server
        except BaseException as exc:
            # Re-raised below, outside the nursery, so that it is not wrapped in a group.
            body_error = exc
        finally:
            nursery.cancel_scope.cancel()
    logger.debug("stopped serving %s", resolved_root)
    if body_error is not None:
        try:
            raise body_error
        finally:
            body_error = None


# --- errors and small value types ---------------------------------------------------------


class _HTTPError(Exception):
    """A request that gets an error response."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(f"{status.value} {status.phrase}")
        self.status = status


class _RangeNotSatisfiable(Exception):
    """A ``Range`` header that selects no byte of the file."""


class _FileShrankError(Exception):
    """The file got shorter while it was being sent."""


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    keep_alive: bool
    has_body: bool


@dataclass(frozen=True, slots=True)
class _Target:
    segments: tuple[str, ...]
    trailing_slash: bool
    query: str


@dataclass(frozen=True, slots=True)
class _OpenedFile:
    file: BufferedReader
    size: int
    content_type: str


class _Redirect:
    """A folder requested without its trailing slash."""


_REDIRECT = _Redirect()


# --- parsing (pure functions) -------------------------------------------------------------


def _content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    content_type = _CONTENT_TYPES.get(suffix)
    if content_type is None:
        content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return content_type


def _parse_head(head: bytes) -> _Request:
    """Parse a request head (without its final blank line).

    Raises:
        _HTTPError: A malformed head (400) or an HTTP version other than 1.x (505).
    """
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        raise _HTTPError(HTTPStatus.BAD_REQUEST)
    method, target, major, minor = match.groups()
    if major != "1":
        raise _HTTPError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon or _HEADER_NAME.fullmatch(name) is None:
            raise _HTTPError(HTTPStatus.BAD_REQUEST)
        value = value.strip(" \t")
        if any(char in value for char in "\r\n\0"):
            raise _HTTPError(HTTPStatus.BAD_REQUEST)
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    if minor != "0" and "host" not in headers:
        raise _HTTPError(HTTPStatus.BAD_REQUEST)
    has_body = "transfer-encoding" in headers
    if "content-length" in headers:
        if _CONTENT_LENGTH.fullmatch(headers["content-length"]) is None:
            raise _HTTPError(HTTPStatus.BAD_REQUEST)
        has_body = has_body or int(headers["content-length"]) > 0
    connection = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    keep_alive = "close" not in connection if minor != "0" else "keep-alive" in connection
    return _Request(method, target, headers, keep_alive, has_body)


def _parse_target(target: str) -> _Target:
    """Split a request target into safe, decoded path segments.

    Raises:
        _HTTPError: 400 for a target that is not a path or not UTF-8; 403 for any attempt to
            leave the root (``..``, encoded or not, backslashes, NUL bytes).
    """
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
        path = path.partition("#")[0]
    if not path.startswith("/"):
        raise _HTTPError(HTTPStatus.BAD_REQUEST)
    try:
        decoded = unquote(path, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise _HTTPError(HTTPStatus.BAD_REQUEST) from exc
    if "\0" in decoded or "\\" in decoded:
        raise _HTTPError(HTTPStatus.FORBIDDEN)
    segments = tuple(segment for segment in decoded.split("/") if segment not in ("", "."))
    for segment in segments:
        if (
            segment == ".."
            or (os.altsep is not None and os.altsep in segment)
            or (os.name == "nt" and ":" in segment)
        ):
            raise _HTTPError(HTTPStatus.FORBIDDEN)
    return _Target(segments, decoded.endswith("/"), query)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """The inclusive ``(first, last)`` byte range a ``Range`` header asks for.

    Returns:
        The range, or ``None`` when the header is to be ignored (not ``bytes``, several
        ranges, or invalid syntax) and the whole file served.

    Raises:
        _RangeNotSatisfiable: A valid single range that selects no byte of the file.
    """
    unit, equals, ranges = value.partition("=")
    if not equals or unit.strip().lower() != "bytes" or "," in ranges:
        return None
    match = _BYTE_RANGE.fullmatch(ranges)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise _RangeNotSatisfiable
    return first, min(last, size - 1)


# --- file system (runs in a worker thread) ------------------------------------------------


def _open_file(root: Path, target: _Target) -> _OpenedFile | _Redirect:
    """Open the regular file a target names under ``root`` (already resolved).

    Raises:
        _HTTPError: 404 for a missing or non-regular file, 403 for one outside the root or
            not readable.
    """
    resolved = _resolve_inside(root, root.joinpath(*target.segments))
    try:
        is_dir = resolved.is_dir()
    except OSError as exc:
        raise _HTTPError(HTTPStatus.NOT_FOUND) from exc
    if is_dir:
        if not target.trailing_slash:
            return _REDIRECT
        resolved = _resolve_inside(root, resolved / "index.html")
    elif target.trailing_slash:
        raise _HTTPError(HTTPStatus.NOT_FOUND)
    flags = os.O_RDONLY
    for name in ("O_NOFOLLOW", "O_NONBLOCK", "O_CLOEXEC", "O_BINARY"):
        flags |= getattr(os, name, 0)
    try:
        fd = os.open(resolved, flags)
    except PermissionError as exc:
        raise _HTTPError(HTTPStatus.FORBIDDEN) from exc
    except OSError as exc:
        raise _HTTPError(HTTPStatus.NOT_FOUND) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _HTTPError(HTTPStatus.NOT_FOUND)
        file = open(fd, "rb", closefd=True)  # noqa: SIM115 - returned open, closed by caller
    except BaseException:
        os.close(fd)
        raise
    return _OpenedFile(file, info.st_size, _content_type(resolved.name))


def _resolve_inside(root: Path, candidate: Path) -> Path:
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # missing, symlink loop, bad name
        raise _HTTPError(HTTPStatus.NOT_FOUND) from exc
    if not resolved.is_relative_to(root):
        raise _HTTPError(HTTPStatus.FORBIDDEN)
    return resolved


# --- connection handling ------------------------------------------------------------------


async def _handle_connection(stream: trio.SocketStream, *, root: Path) -> None:
    """Serve requests on one connection until it closes; never raises except ``Cancelled``."""
    try:
        await _serve_requests(stream, root)
    except (
        trio.BrokenResourceError,
        trio.ClosedResourceError,
        trio.TooSlowError,
        ConnectionError,
    ) as exc:
        logger.debug("connection ended: %r", exc)
    except Exception:
        logger.debug("error while serving a connection; closing it", exc_info=True)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_requests(stream: trio.SocketStream, root: Path) -> None:
    buffer = bytearray()
    while True:
        try:
            head = await _receive_head(stream, buffer)
            if head is None:
                return
            request = _parse_head(head)
        except _HTTPError as error:
            await _send_error(stream, error.status, head_only=False, keep_alive=False)
            await _close_gracefully(stream)
            return
        if not await _respond(stream, request, root):
            await _close_gracefully(stream)
            return


async def _receive_head(stream: trio.SocketStream, buffer: bytearray) -> bytes | None:
    """The next request head (without the blank line), or ``None`` if the client is done.

    ``None`` means the client closed the connection or sent nothing for ``IDLE_TIMEOUT``
    seconds. Bytes after the head stay in ``buffer`` (pipelined requests).

    Raises:
        _HTTPError: 431 for a head over ``MAX_HEAD_SIZE``, 400 for a truncated one.
    """
    with trio.move_on_after(IDLE_TIMEOUT):
        while True:
            # A client may send stray blank lines between requests (RFC 9112, 2.2).
            stripped = buffer.lstrip(b"\r\n")
            del buffer[: len(buffer) - len(stripped)]
            end = buffer.find(b"\r\n\r\n")
            if end > MAX_HEAD_SIZE or (end < 0 and len(buffer) >= MAX_HEAD_SIZE + 4):
                raise _HTTPError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            if end >= 0:
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                return head
            data = await stream.receive_some(_RECEIVE_SIZE)
            if not data:
                if buffer:
                    raise _HTTPError(HTTPStatus.BAD_REQUEST)
                return None
            buffer += data
    logger.debug("closing a connection idle for %s s", IDLE_TIMEOUT)
    return None


async def _respond(stream: trio.SocketStream, request: _Request, root: Path) -> bool:
    """Answer one request; whether the connection stays open for another."""
    # The body of a request is never read, so a connection that carried one is closed.
    keep_alive = request.keep_alive and not request.has_body
    if request.method not in ("GET", "HEAD"):
        await _send_error(
            stream,
            HTTPStatus.METHOD_NOT_ALLOWED,
            head_only=False,
            keep_alive=False,
            extra=[("Allow", _ALLOW)],
        )
        return False
    head_only = request.method == "HEAD"
    try:
        target = _parse_target(request.target)
        opened = await trio.to_thread.run_sync(_open_file, root, target)
    except _HTTPError as error:
        await _send_error(stream, error.status, head_only=head_only, keep_alive=keep_alive)
        return keep_alive
    if isinstance(opened, _Redirect):
        location = "/" + "".join(f"{quote(segment, safe='')}/" for segment in target.segments)
        if target.query:
            location += f"?{target.query}"
        await _send_error(
            stream,
            HTTPStatus.MOVED_PERMANENTLY,
            head_only=head_only,
            keep_alive=keep_alive,
            extra=[("Location", location)],
        )
        return keep_alive
    file = trio.wrap_file(opened.file)
    try:
        await _send_file(
            stream,
            request,
            opened,
            read=file.read,
            seek=file.seek,
            head_only=head_only,
            keep_alive=keep_alive,
        )
    finally:
        await file.aclose()
    return keep_alive


async def _send_file(
    stream: trio.SocketStream,
    request: _Request,
    opened: _OpenedFile,
    *,
    read: Callable[[int], Awaitable[bytes]],
    seek: Callable[[int], Awaitable[int]],
    head_only: bool,
    keep_alive: bool,
) -> None:
    size = opened.size
    status = HTTPStatus.OK
    headers = [("Content-Type", opened.content_type), ("Accept-Ranges", "bytes")]
    first, length = 0, size
    range_header = request.headers.get("range")
    # Without validators (no ETag or Last-Modified is sent), an If-Range never matches.
    if range_header is not None and "if-range" not in request.headers:
        try:
            byte_range = _parse_range(range_header, size)
        except _RangeNotSatisfiable:
            await _send_error(
                stream,
                HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
                head_only=head_only,
                keep_alive=keep_alive,
                extra=[("Accept-Ranges", "bytes"), ("Content-Range", f"bytes */{size}")],
            )
            return
        if byte_range is not None:
            first, last = byte_range
            status = HTTPStatus.PARTIAL_CONTENT
            length = last - first + 1
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
    headers.append(("Content-Length", str(length)))
    pending = _format_head(status, headers, keep_alive=keep_alive)
    if head_only or length == 0:
        await _send(stream, pending)
        return
    if first:
        await seek(first)
    remaining = length
    while remaining > 0:
        chunk = await read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise _FileShrankError(f"{opened.file.name!r} shrank while being sent")
        remaining -= len(chunk)
        # The head goes out with the first chunk: one write for a small file.
        await _send(stream, pending + chunk if pending else chunk)
        pending = b""


async def _send_error(
    stream: trio.SocketStream,
    status: HTTPStatus,
    *,
    head_only: bool,
    keep_alive: bool,
    extra: Sequence[tuple[str, str]] = (),
) -> None:
    body = f"{status.value} {status.phrase}\n".encode()
    headers = [
        *extra,
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ]
    head = _format_head(status, headers, keep_alive=keep_alive)
    await _send(stream, head if head_only else head + body)


def _format_head(
    status: HTTPStatus, headers: Sequence[tuple[str, str]], *, keep_alive: bool
) -> bytes:
    lines = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Date: {formatdate(usegmt=True)}",
        f"Server: {_SERVER_NAME}",
        *(f"{name}: {value}" for name, value in headers),
        "Cache-Control: no-store",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _send(stream: trio.SocketStream, data: bytes) -> None:
    with trio.fail_after(IDLE_TIMEOUT):
        await stream.send_all(data)


async def _close_gracefully(stream: trio.SocketStream) -> None:
    """Finish sending, then drain what the client still sends for a moment.

    Closing a socket with unread received data makes the kernel reset the connection, which
    can destroy the response before the client has read it.
    """
    await stream.send_eof()
    drained = 0
    with trio.move_on_after(_LINGER_SECONDS):
        while drained < _LINGER_MAX_BYTES:
            data = await stream.receive_some(_RECEIVE_SIZE)
            if not data:
                break
            drained += len(data)
