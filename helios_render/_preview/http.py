"""A small HTTP/1.1 server on Trio and h11 for the preview's two origins.

The composition's static server (:mod:`helios_render._source.server`) answers files only;
the preview needs request bodies (props), streamed answers (Server-Sent Events) and a check
of the ``Host`` header on every request, so it has this loop of its own. A handler gets a
parsed :class:`Request` and returns a :class:`Response`: bytes, a file range, or a stream.

Every request whose ``Host`` header is not one of the server's own names is refused with 403
before the handler sees it: a page of another site that a DNS name was rebound to 127.0.0.1
for reaches the server with its own name in ``Host``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from functools import partial
from http import HTTPStatus
from io import BufferedReader
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

__all__ = ["MAX_BODY", "Handler", "Request", "Response", "serve_http"]

logger = logging.getLogger(__name__)

#: Largest request body accepted (props are JSON), in bytes.
MAX_BODY = 1024 * 1024
#: Seconds a connection may wait for a request, or for the client to take response bytes.
IDLE_TIMEOUT = 30.0
_RECEIVE_SIZE = 64 * 1024
_FILE_STEP = 256 * 1024


@dataclass(frozen=True, slots=True)
class Request:
    """One request: its method, decoded path, query, headers (lower-case names) and body."""

    method: str
    target: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: ``body``, or ``file`` (path, first byte, length), or ``stream``."""

    status: int
    headers: Sequence[tuple[str, str]] = ()
    body: bytes = b""
    #: An open file (closed once sent), the first byte and the length to send.
    file: tuple[BufferedReader, int, int] | None = None
    stream: Callable[[], AsyncIterator[bytes]] | None = field(default=None)


def text_response(
    status: HTTPStatus, text: str | None = None, *, extra: Sequence[tuple[str, str]] = ()
) -> Response:
    """A plain-text answer (an error's status line by default)."""
    body = (text if text is not None else f"{status.value} {status.phrase}") + "\n"
    return Response(
        status.value, [("Content-Type", "text/plain; charset=utf-8"), *extra], body.encode()
    )


Handler = Callable[[Request], Awaitable[Response]]


async def serve_http(
    handler: Handler,
    host: str,
    port: int,
    allowed_hosts: Callable[[int], frozenset[str]],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on ``host:port`` until cancelled; ``task_status`` gets the port.

    ``allowed_hosts(port)`` is the set of ``Host`` header values accepted (for example
    ``127.0.0.1:8123`` and ``localhost:8123``); any other gets 403.

    Cancellation:
        The listener and every connection are closed.
    """
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(port, host=host)
        bound = int(listeners[0].socket.getsockname()[1])
        hosts = allowed_hosts(bound)
        nursery.start_soon(
            partial(trio.serve_listeners, partial(_connection, handler=handler, hosts=hosts),
                    listeners)
        )
        task_status.started(bound)


async def _connection(
    stream: trio.SocketStream, *, handler: Handler, hosts: frozenset[str]
) -> None:
    try:
        await _serve(stream, handler, hosts)
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
            ConnectionError, h11.ProtocolError) as exc:
        logger.debug("preview connection ended: %r", exc)
    except Exception:
        logger.debug("error while serving a preview connection", exc_info=True)
    finally:
        await trio.aclose_forcefully(stream)


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> h11.Event | None:
    with trio.move_on_after(IDLE_TIMEOUT):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(_RECEIVE_SIZE))
                continue
            if event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return None
            assert isinstance(event, h11.Event)
            return event
    return None


async def _send(conn: h11.Connection, stream: trio.SocketStream, *events: h11.Event) -> None:
    data = b"".join(conn.send(event) or b"" for event in events)
    with trio.fail_after(IDLE_TIMEOUT):
        await stream.send_all(data)


async def _serve(stream: trio.SocketStream, handler: Handler, hosts: frozenset[str]) -> None:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    while True:
        event = await _next_event(conn, stream)
        if not isinstance(event, h11.Request):
            return
        headers = {
            name.decode("latin-1"): value.decode("latin-1") for name, value in event.headers
        }
        body = bytearray()
        too_large = False
        while True:
            part = await _next_event(conn, stream)
            if part is None:
                return
            if isinstance(part, h11.EndOfMessage):
                break
            if isinstance(part, h11.Data):
                body += part.data
                if len(body) > MAX_BODY:
                    too_large = True
                    break
        target = event.target.decode("ascii", "replace")
        split = urlsplit(target)
        request = Request(
            method=event.method.decode("ascii"),
            target=target,
            path=split.path or "/",
            query=dict(parse_qsl(split.query)),
            headers=headers,
            body=bytes(body),
        )
        close = [("Connection", "close")]
        if too_large:
            response = text_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, extra=close)
        elif headers.get("host", "").lower() not in hosts:
            # DNS rebinding: a page of another name that resolves here. The connection is
            # closed after the answer.
            logger.warning("preview: refused a request for Host %r", headers.get("host"))
            response = text_response(HTTPStatus.FORBIDDEN, "403 Forbidden: unknown Host",
                                     extra=close)
        else:
            try:
                response = await handler(request)
            except Exception:
                logger.exception("preview: the handler of %s failed", request.path)
                response = text_response(HTTPStatus.INTERNAL_SERVER_ERROR)
        await _respond(conn, stream, request, response)
        if too_large or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return
        conn.start_next_cycle()


async def _respond(
    conn: h11.Connection, stream: trio.SocketStream, request: Request, response: Response
) -> None:
    headers = [
        ("Date", formatdate(usegmt=True)),
        ("Server", "helios-render-preview"),
        ("Cache-Control", "no-store"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Content-Type-Options", "nosniff"),
        *response.headers,
    ]
    head_only = request.method == "HEAD"
    if response.stream is not None:
        head = h11.Response(status_code=response.status, headers=headers)
        await _send(conn, stream, head)
        async for piece in response.stream():
            await _send(conn, stream, h11.Data(data=piece))
        await _send(conn, stream, h11.EndOfMessage())
        return
    if response.file is not None:
        opened, first, length = response.file
        try:
            headers.append(("Content-Length", str(length)))
            head = h11.Response(status_code=response.status, headers=headers)
            if head_only or length == 0:
                await _send(conn, stream, head, h11.EndOfMessage())
                return
            file = trio.wrap_file(opened)
            await file.seek(first)
            remaining = length
            events: list[h11.Event] = [head]
            while remaining > 0:
                piece = await file.read(min(_FILE_STEP, remaining))
                if not piece:
                    raise ConnectionError(f"{opened.name!r} shrank while being sent")
                remaining -= len(piece)
                events.append(h11.Data(data=piece))
                if remaining == 0:
                    events.append(h11.EndOfMessage())
                await _send(conn, stream, *events)
                events = []
        finally:
            opened.close()
        return
    headers.append(("Content-Length", str(len(response.body))))
    head = h11.Response(status_code=response.status, headers=headers)
    if head_only or not response.body:
        await _send(conn, stream, head, h11.EndOfMessage())
    else:
        await _send(conn, stream, head, h11.Data(data=response.body), h11.EndOfMessage())
