"""A Chrome DevTools Protocol client on trio-websocket.

One reader task per connection reads every message, routes replies to the command that waits
for them (by id) and events to the channels that listen for them (by ``sessionId`` and method).
Flattened sessions (``Target.attachToTarget`` with ``flatten: true``) share the browser's
connection; :class:`CdpSession` is a view of the connection bound to one ``sessionId``.

The routing core, :class:`CdpRouter`, does no I/O so that it can be tested exhaustively.

Guarantees:

* When the socket closes, every pending command fails at once with
  :class:`~helios_render.CdpConnectionClosed`, later commands fail the same way, and every
  event channel is closed so that ``async for`` over it ends.
* A cancelled command leaves nothing behind: its id is forgotten and a late reply is dropped.
* An unknown, unmatched or garbled message is logged and dropped; it never kills the reader.
* Messages up to :data:`MAX_MESSAGE_SIZE` are accepted (a 4K PNG frame in base64 fits).
* An event that no listener wants is dropped before it is parsed: a page that logs 100,000
  console lines per frame costs a string comparison per line, not a JSON parse.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import trio
import trio_websocket

from .._exceptions import CdpCommandError, CdpConnectionClosed
from .._nursery import background_nursery

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_MESSAGE_SIZE",
    "CdpConnection",
    "CdpEvent",
    "CdpReply",
    "CdpRouter",
    "CdpSession",
    "open_cdp",
]

logger = logging.getLogger(__name__)

#: Largest message accepted from Chromium. A 3840x2160 PNG screenshot is up to ~33 MB, and
#: base64 makes it 4/3 larger.
MAX_MESSAGE_SIZE = 256 * 1024 * 1024
#: Seconds allowed to open the websocket to a browser that has announced its endpoint.
CONNECT_TIMEOUT = 10.0
#: Bytes read from the socket at a time. trio-websocket's default (4 KiB) costs ~100 reads
#: and wsproto passes per 1080p frame, which was most of our CPU time per frame.
RECEIVE_BUFFER_SIZE = 1024 * 1024
#: Seconds the websocket close handshake may take on a normal exit.
CLOSE_HANDSHAKE_TIMEOUT = 1.0
#: Events buffered per listener before new ones are dropped (and logged).
DEFAULT_EVENT_BUFFER = 256

JsonObject = dict[str, Any]
_EVENT_PREFIX = '{"method":"'


@dataclass(frozen=True, slots=True)
class CdpEvent:
    """One CDP event, such as ``Page.loadEventFired``."""

    method: str
    params: JsonObject
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class CdpReply:
    """The reply to command ``id``: either ``result`` or an ``error`` object."""

    id: int
    result: JsonObject | None = None
    error: JsonObject | None = None


class CdpRouter:
    """Sans-IO core of the client: numbers commands, parses and classifies messages.

    The router remembers which command ids are pending. :meth:`parse` turns a raw message into
    a :class:`CdpReply` for a pending command, a :class:`CdpEvent`, or ``None`` for anything
    else (garbage, replies nobody waits for), never raising.
    """

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, str] = {}

    @property
    def pending(self) -> dict[int, str]:
        """Pending command ids mapped to their method names (a copy)."""
        return dict(self._pending)

    def encode(
        self, method: str, params: JsonObject | None = None, session_id: str | None = None
    ) -> tuple[int, str]:
        """Register a new command and return its id and its wire text."""
        command_id = next(self._ids)
        message: JsonObject = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        self._pending[command_id] = method
        return command_id, json.dumps(message, separators=(",", ":"))

    def forget(self, command_id: int) -> None:
        """Stop waiting for ``command_id`` (replied, cancelled or failed). Idempotent."""
        self._pending.pop(command_id, None)

    @staticmethod
    def event_method(raw: str | bytes) -> str | None:
        """The method of an event, read without parsing it; ``None`` if ``raw`` may not be one.

        Chromium writes ``"method"`` first in events (``{"method":"Page.loadEventFired",...``)
        and ``"id"`` first in replies, so a prefix tells them apart. Anything else is left to
        :meth:`parse`.
        """
        if not isinstance(raw, str) or not raw.startswith(_EVENT_PREFIX):
            return None
        end = raw.find('"', len(_EVENT_PREFIX))
        if end < 0:
            return None
        method = raw[len(_EVENT_PREFIX) : end]
        return None if "\\" in method else method

    def parse(self, raw: str | bytes) -> CdpReply | CdpEvent | None:
        """Classify one raw message. Never raises."""
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            logger.warning("dropping a CDP message that is not JSON (%d bytes)", len(raw))
            return None
        if not isinstance(message, dict):
            logger.warning("dropping a CDP message that is not an object")
            return None
        command_id = message.get("id")
        if command_id is not None:
            # bool is an int in Python, and True == 1: never a command id.
            if (
                not isinstance(command_id, int)
                or isinstance(command_id, bool)
                or command_id not in self._pending
            ):
                logger.debug("dropping a reply to unknown command id %r", command_id)
                return None
            error = message.get("error")
            result = message.get("result")
            if error is not None:
                return CdpReply(command_id, error=error if isinstance(error, dict) else {})
            return CdpReply(command_id, result=result if isinstance(result, dict) else {})
        method = message.get("method")
        if isinstance(method, str):
            params = message.get("params")
            session_id = message.get("sessionId")
            return CdpEvent(
                method,
                params if isinstance(params, dict) else {},
                session_id if isinstance(session_id, str) else None,
            )
        logger.warning("dropping a CDP message with neither id nor method")
        return None


@dataclass(slots=True, eq=False)
class _Waiter:
    event: trio.Event = field(default_factory=trio.Event)
    reply: CdpReply | None = None
    error: BaseException | None = None


@dataclass(slots=True, eq=False)
class _Listener:
    session_id: str | None
    methods: frozenset[str] | None
    send: trio.MemorySendChannel[CdpEvent]


class CdpConnection:
    """A DevTools connection to a browser. Create it with :func:`open_cdp`."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self._ws = ws
        self._router = CdpRouter()
        self._waiters: dict[int, _Waiter] = {}
        self._listeners: list[_Listener] = []
        self._closed: CdpConnectionClosed | None = None

    @property
    def closed(self) -> bool:
        """Whether the connection has closed."""
        return self._closed is not None

    def session(self, session_id: str | None) -> CdpSession:
        """A view bound to one flattened session (``None``: the browser itself)."""
        return CdpSession(self, session_id)

    async def execute(
        self, method: str, params: JsonObject | None = None, *, session_id: str | None = None
    ) -> JsonObject:
        """Send a command and wait for its result.

        Raises:
            CdpCommandError: Chromium answered with an error.
            CdpConnectionClosed: The connection closed before the reply came.

        Cancellation:
            The command id is forgotten; a reply that comes later is dropped.
        """
        if self._closed is not None:
            raise self._closed
        command_id, text = self._router.encode(method, params, session_id)
        waiter = _Waiter()
        self._waiters[command_id] = waiter
        try:
            logger.debug("-> %s id=%d session=%s", method, command_id, session_id)
            try:
                await self._ws.send_message(text)
            except trio_websocket.ConnectionClosed as exc:
                self._close(f"the connection closed while sending {method}")
                raise CdpConnectionClosed(
                    f"connection to Chromium closed while sending {method}"
                ) from exc
            await waiter.event.wait()
        finally:
            del self._waiters[command_id]
            self._router.forget(command_id)
        if waiter.error is not None:
            raise waiter.error
        assert waiter.reply is not None
        if waiter.reply.error is not None:
            error = waiter.reply.error
            code = error.get("code")
            raise CdpCommandError(
                method,
                code if isinstance(code, int) and not isinstance(code, bool) else 0,
                str(error.get("message", "")),
            )
        return waiter.reply.result or {}

    @contextmanager
    def listen(
        self, *methods: str, session_id: str | None = None, buffer: int = DEFAULT_EVENT_BUFFER
    ) -> Iterator[trio.MemoryReceiveChannel[CdpEvent]]:
        """Receive the events of ``methods`` (all events if none) for one session.

        The channel is closed when the block exits or when the connection closes.
        """
        send, receive = trio.open_memory_channel[CdpEvent](buffer)
        listener = _Listener(session_id, frozenset(methods) if methods else None, send)
        if self._closed is not None:
            send.close()
        else:
            self._listeners.append(listener)
        try:
            yield receive
        finally:
            if listener in self._listeners:
                self._listeners.remove(listener)
            send.close()
            receive.close()

    def _wanted(self, method: str) -> bool:
        """Whether any listener receives events of ``method``."""
        return any(
            listener.methods is None or method in listener.methods
            for listener in self._listeners
        )

    def _deliver(self, item: CdpReply | CdpEvent) -> None:
        if isinstance(item, CdpReply):
            waiter = self._waiters.get(item.id)
            if waiter is not None:
                waiter.reply = item
                waiter.event.set()
            return
        for listener in self._listeners:
            if listener.session_id != item.session_id:
                continue
            if listener.methods is not None and item.method not in listener.methods:
                continue
            try:
                listener.send.send_nowait(item)
            except trio.WouldBlock:
                logger.warning("event buffer full, dropping %s", item.method)
            except trio.BrokenResourceError:
                pass

    async def _read(self) -> None:
        reason = "the connection closed"
        try:
            while True:
                raw = await self._ws.get_message()
                method = self._router.event_method(raw)
                if method is not None and not self._wanted(method):
                    continue
                item = self._router.parse(raw)
                if item is None:
                    continue
                if isinstance(item, CdpReply):
                    logger.debug("<- reply id=%d (%d bytes)", item.id, len(raw))
                else:
                    logger.debug("<- %s session=%s", item.method, item.session_id)
                self._deliver(item)
        except trio_websocket.ConnectionClosed as exc:
            reason = f"the connection closed ({exc.reason})"
        finally:
            self._close(reason)

    def _close(self, reason: str) -> None:
        if self._closed is not None:
            return
        self._closed = CdpConnectionClosed(f"lost the DevTools connection to Chromium: {reason}")
        for waiter in self._waiters.values():
            waiter.error = self._closed
            waiter.event.set()
        for listener in self._listeners:
            listener.send.close()
        self._listeners.clear()


@dataclass(frozen=True, slots=True)
class CdpSession:
    """A :class:`CdpConnection` bound to one flattened target session."""

    connection: CdpConnection
    session_id: str | None

    async def execute(self, method: str, params: JsonObject | None = None) -> JsonObject:
        """Send a command in this session; see :meth:`CdpConnection.execute`."""
        return await self.connection.execute(method, params, session_id=self.session_id)

    def listen(
        self, *methods: str, buffer: int = DEFAULT_EVENT_BUFFER
    ) -> AbstractContextManager[trio.MemoryReceiveChannel[CdpEvent]]:
        """Receive this session's events; see :meth:`CdpConnection.listen`."""
        return self.connection.listen(*methods, session_id=self.session_id, buffer=buffer)


@asynccontextmanager
async def open_cdp(url: str) -> AsyncIterator[CdpConnection]:
    """Connect to a DevTools websocket and run its reader task.

    Raises:
        CdpConnectionClosed: The websocket could not be opened within :data:`CONNECT_TIMEOUT`.

    Cancellation:
        The reader task is cancelled and the websocket closed; pending commands fail with
        :class:`~helios_render.CdpConnectionClosed`.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    resource = parts.path + (f"?{parts.query}" if parts.query else "")
    async with background_nursery() as nursery:
        stream: trio.SocketStream | None = None
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                stream = await trio.open_tcp_stream(host, port)
                # We own the TCP stream: trio-websocket does not close it when the peer
                # closes first (a crashed browser), so it is closed below on every path.
                ws = await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,
                    host,
                    resource or "/",
                    max_message_size=MAX_MESSAGE_SIZE,
                    message_queue_size=16,
                    receive_buffer_size=RECEIVE_BUFFER_SIZE,
                )
        except (OSError, trio.TooSlowError, trio_websocket.HandshakeError) as exc:
            if stream is not None:
                await stream.aclose()
            raise CdpConnectionClosed(f"could not connect to Chromium at {url}: {exc!r}") from exc
        connection = CdpConnection(ws)
        nursery.start_soon(connection._read)
        grace = CLOSE_HANDSHAKE_TIMEOUT
        try:
            yield connection
        except BaseException:
            # Failing or cancelled: the browser is about to be killed; do not wait for it.
            grace = 0.0
            raise
        finally:
            connection._close("the client closed it")
            with trio.CancelScope(shield=True):
                with trio.move_on_after(grace):
                    await ws.aclose()
                await stream.aclose()
