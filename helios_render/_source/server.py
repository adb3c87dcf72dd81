"""A static HTTP/1.1 file server on Trio and h11, for serving a composition over loopback.

Chromium refuses ES modules, ``fetch`` and several font and media features on ``file://``
URLs, so a local composition folder is served over ``http://127.0.0.1:PORT/`` instead. The
server answers what a browser needs: ``GET`` and ``HEAD``, persistent and pipelined
connections, and single byte ranges (needed to seek a ``<video>``). The HTTP/1.1 framing
(parsing requests, keep-alive, HTTP/1.0 peers) is h11's; this module decides what to answer.

It serves one folder and nothing outside it: the request path is percent-decoded once, to
bytes, and those bytes are the file name (``os.fsdecode``, so a name that is not UTF-8 is
served as it is on disk); ``..`` segments, backslashes and NUL bytes are refused, and the
resolved file (symlinks followed) must lie under the resolved root.
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
from urllib.parse import quote, unquote_to_bytes, urlsplit

import h11
import trio

from .._exceptions import SourceError
from .._nursery import background_nursery

__all__ = [
    "CHUNK_SIZE",
    "IDLE_TIMEOUT",
    "MAX_HEAD_SIZE",
    "PAGE_TYPES",
    "StaticServer",
    "check_page_file",
    "serve_directory",
]

logger = logging.getLogger(__name__)

#: Seconds a connection may wait for (the rest of) a request head, or for the client to
#: accept more response bytes, before it is closed.
IDLE_TIMEOUT: float = 30.0
#: Largest request head (request line plus headers) accepted, in bytes (to within 4 KiB).
MAX_HEAD_SIZE: int = 64 * 1024
#: Bytes read from a file and sent per step.
CHUNK_SIZE: int = 256 * 1024

_RECEIVE_SIZE = 64 * 1024
# Received bytes are handed to h11 this many at a time (see _Connection.next_event).
_FEED_SIZE = 4 * 1024
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

#: Content types Chromium renders as a document we can drive (anything else it downloads or
#: shows as a media or text viewer).
PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml"})
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
                every component is percent-encoded, including ``?``, ``#`` and ``%``. A
                name that is not UTF-8 (surrogate-escaped, as ``os.listdir`` returns it) is
                encoded byte for byte.

        Returns:
            The URL, e.g. ``http://127.0.0.1:8123/sub/index.html``.
        """
        return f"{self.base_url}/{_quote_path(relative_path.lstrip('/'))}"


def check_page_file(path: Path) -> None:
    """Refuse a local SOURCE that this server would not serve as a page.

    The content type comes from the name (as the server sends it); a file whose first bytes
    hold a NUL byte (and no UTF-16 byte order mark) is binary whatever its name says.

    Raises:
        SourceError: The file would be served as something else than HTML or SVG, is binary,
            or cannot be read.
    """
    hint = "give an HTML file, a folder with an index.html, or the URL of a page"
    content_type = _content_type(path.name).split(";")[0]
    if content_type not in PAGE_TYPES:
        raise SourceError(
            f"SOURCE is not an HTML page: {path} would be served as {content_type} ({hint})"
        )
    try:
        with open(path, "rb") as file:
            head = file.read(4096)
    except OSError as exc:
        raise SourceError(f"cannot read SOURCE {path}: {exc.strerror}") from exc
    if b"\0" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(f"SOURCE is not an HTML page: {path} is a binary file ({hint})")


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
    # The block's own error comes out of the nursery alone, so unwrapped (the nursery policy's
    # rule 1); the connection tasks never raise but Cancelled.
    async with background_nursery() as nursery:
        listeners: list[trio.SocketListener] = await nursery.start(
            partial(trio.serve_tcp, handler, 0, host=str(address))
        )
        port = int(listeners[0].socket.getsockname()[1])
        server = StaticServer(root=resolved_root, port=port, host=str(address))
        logger.debug("serving %s at %s/", resolved_root, server.base_url)
        yield server
    logger.debug("stopped serving %s", resolved_root)


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


def _quote_path(path: str) -> str:
    """Percent-encode a file path byte for byte, as the file system spells it."""
    return quote(os.fsencode(path), safe="/")


def _parse_target(target: str) -> _Target:
    """Split a request target into safe, decoded path segments.

    Raises:
        _HTTPError: 400 for a target that is not a path; 403 for any attempt to leave the
            root (``..``, encoded or not, backslashes, NUL bytes).
    """
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        path, query = parts.path or "/", parts.query
    else:
        path, _, query = target.partition("?")
        path = path.partition("#")[0]
    if not path.startswith("/"):
        raise _HTTPError(HTTPStatus.BAD_REQUEST)
    # Percent-decoded to bytes, which are the file name as it is on disk: a name that is not
    # UTF-8 (``sc\xe8ne.html``, valid on Linux) round-trips through surrogateescape.
    decoded = os.fsdecode(unquote_to_bytes(path))
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


@dataclass(frozen=True, slots=True)
class _Request:
    """One request head, as h11 parsed it."""

    method: str
    target: str
    headers: dict[str, str]
    has_body: bool


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


class _Connection:
    """One client connection: an h11 state machine over a Trio stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_SIZE)
        self._unfed = bytearray()

    async def next_event(self) -> h11.Event | None:
        """The next h11 event; ``None`` when the client closed or was idle too long.

        Raises:
            h11.RemoteProtocolError: A malformed or oversized request.
        """
        with trio.move_on_after(IDLE_TIMEOUT):
            while True:
                event = self.h11.next_event()
                if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                    return None
                if event is not h11.NEED_DATA:
                    assert isinstance(event, h11.Event)
                    return event
                if not self._unfed:
                    data = await self.stream.receive_some(_RECEIVE_SIZE)
                    if not data:
                        self.h11.receive_data(b"")  # the client closed its side
                        continue
                    self._unfed += data
                # h11 checks the size of a head only while it is incomplete: fed in small
                # pieces, a head over MAX_HEAD_SIZE is refused before it is ever complete.
                self.h11.receive_data(bytes(self._unfed[:_FEED_SIZE]))
                del self._unfed[:_FEED_SIZE]
        logger.debug("closing a connection idle for %s s", IDLE_TIMEOUT)
        return None

    async def send(self, *events: h11.Event) -> None:
        """Send ``events`` in one write, within :data:`IDLE_TIMEOUT`."""
        data = b"".join(self.h11.send(event) or b"" for event in events)
        with trio.fail_after(IDLE_TIMEOUT):
            await self.stream.send_all(data)

    def response(
        self, status: HTTPStatus, headers: Sequence[tuple[str, str]], *, keep_alive: bool
    ) -> h11.Response:
        """A response head with the headers every response carries.

        h11 turns ``keep-alive`` into ``close`` when the connection cannot be kept (an
        HTTP/1.0 client, or a client that asked to close).
        """
        return h11.Response(
            status_code=status.value,
            reason=status.phrase.encode("ascii"),
            headers=[
                ("Date", formatdate(usegmt=True)),
                ("Server", _SERVER_NAME),
                *headers,
                ("Cache-Control", "no-store"),
                ("Connection", "keep-alive" if keep_alive else "close"),
            ],
        )

    async def send_error(
        self,
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
        head = self.response(status, headers, keep_alive=keep_alive)
        if head_only:
            await self.send(head, h11.EndOfMessage())
        else:
            await self.send(head, h11.Data(data=body), h11.EndOfMessage())

    async def close_gracefully(self) -> None:
        """Finish sending, then drain what the client still sends for a moment.

        Closing a socket with unread received data makes the kernel reset the connection,
        which can destroy the response before the client has read it.
        """
        await self.stream.send_eof()
        drained = 0
        with trio.move_on_after(_LINGER_SECONDS):
            while drained < _LINGER_MAX_BYTES:
                data = await self.stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    break
                drained += len(data)


async def _serve_requests(stream: trio.SocketStream, root: Path) -> None:
    connection = _Connection(stream)
    while True:
        try:
            event = await connection.next_event()
        except h11.RemoteProtocolError as exc:
            logger.debug("malformed request: %s", exc)
            if connection.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                status = HTTPStatus(exc.error_status_hint)
                await connection.send_error(status, head_only=False, keep_alive=False)
            await connection.close_gracefully()
            return
        if event is None:
            return
        if not isinstance(event, h11.Request):
            # The rest of a request whose body we did not read: we close after such a one.
            continue
        request = _Request(
            method=event.method.decode("ascii"),
            target=event.target.decode("ascii"),
            headers={
                name.decode("ascii"): value.decode("latin-1")
                for name, value in _joined_headers(event.headers)
            },
            has_body=_has_body(event.headers),
        )
        if not event.http_version.startswith(b"1."):
            await connection.send_error(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, head_only=False, keep_alive=False
            )
        elif not request.has_body:
            # A request without a body has its end of message in the buffer already.
            end = await connection.next_event()
            if not isinstance(end, h11.EndOfMessage):
                return
            await _respond(connection, request, root, keep_alive=True)
        else:
            # The body of a request is never read, so a connection that carried one is closed.
            await _respond(connection, request, root, keep_alive=False)
        if connection.h11.our_state is h11.DONE and connection.h11.their_state is h11.DONE:
            connection.h11.start_next_cycle()
        else:
            await connection.close_gracefully()
            return


def _joined_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Repeated headers joined with commas (h11 gives them lower-cased, one per line)."""
    joined: dict[bytes, bytes] = {}
    for name, value in headers:
        joined[name] = joined[name] + b", " + value if name in joined else value
    return list(joined.items())


def _has_body(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    names = dict(headers)
    return b"transfer-encoding" in names or names.get(b"content-length", b"0") != b"0"


async def _respond(
    connection: _Connection, request: _Request, root: Path, *, keep_alive: bool
) -> None:
    """Answer one request."""
    if request.method not in ("GET", "HEAD"):
        await connection.send_error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            head_only=False,
            keep_alive=False,
            extra=[("Allow", _ALLOW)],
        )
        return
    head_only = request.method == "HEAD"
    try:
        target = _parse_target(request.target)
        opened = await trio.to_thread.run_sync(_open_file, root, target)
    except _HTTPError as error:
        await connection.send_error(error.status, head_only=head_only, keep_alive=keep_alive)
        return
    if isinstance(opened, _Redirect):
        location = "/" + "".join(f"{_quote_segment(segment)}/" for segment in target.segments)
        if target.query:
            location += f"?{target.query}"
        await connection.send_error(
            HTTPStatus.MOVED_PERMANENTLY,
            head_only=head_only,
            keep_alive=keep_alive,
            extra=[("Location", location)],
        )
        return
    file = trio.wrap_file(opened.file)
    try:
        await _send_file(
            connection,
            request,
            opened,
            read=file.read,
            seek=file.seek,
            head_only=head_only,
            keep_alive=keep_alive,
        )
    finally:
        await file.aclose()


def _quote_segment(segment: str) -> str:
    return quote(os.fsencode(segment), safe="")


async def _send_file(
    connection: _Connection,
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
            await connection.send_error(
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
    head: h11.Event | None = connection.response(status, headers, keep_alive=keep_alive)
    if head_only or length == 0:
        assert head is not None
        await connection.send(head, h11.EndOfMessage())
        return
    if first:
        await seek(first)
    remaining = length
    while remaining > 0:
        chunk = await read(min(CHUNK_SIZE, remaining))
        if not chunk:
            raise _FileShrankError(f"{opened.file.name!r} shrank while being sent")
        remaining -= len(chunk)
        # The head goes out with the first chunk (one write for a small file), the end of
        # the message with the last.
        events: list[h11.Event] = [] if head is None else [head]
        events.append(h11.Data(data=chunk))
        if remaining == 0:
            events.append(h11.EndOfMessage())
        await connection.send(*events)
        head = None
