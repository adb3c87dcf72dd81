"""The CDP client: the sans-IO router, and the async client against a fake server on loopback."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
import trio
import trio_websocket
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_render._chromium.cdp import CdpConnection, CdpEvent, CdpReply, CdpRouter, open_cdp
from helios_render._exceptions import CdpCommandError, CdpConnectionClosed

JsonObject = dict[str, Any]
Script = Callable[[trio_websocket.WebSocketConnection], Awaitable[None]]

SESSIONS: list[str | None] = [None, "S1", "S2"]
METHODS = ["Page.alpha", "Page.beta"]
#: Messages the client must drop without harm (command 1 is pending when they come).
GARBAGE: list[str | bytes] = [
    "{not json",
    b"\xff\xfe",
    "[1, 2]",
    '"text"',
    "null",
    '{"params": {}}',
    '{"method": 5}',
    '{"id": 999, "result": {}}',
    '{"id": "1", "result": {}}',
]


# -- helpers ---------------------------------------------------------------------------------


async def recv(ws: trio_websocket.WebSocketConnection) -> JsonObject:
    message = json.loads(await ws.get_message())
    assert isinstance(message, dict)
    return message


async def send(ws: trio_websocket.WebSocketConnection, message: JsonObject) -> None:
    await ws.send_message(json.dumps(message))


def event_message(method: str, session_id: str | None, params: JsonObject) -> JsonObject:
    message: JsonObject = {"method": method, "params": params}
    if session_id is not None:
        message["sessionId"] = session_id
    return message


@asynccontextmanager
async def fake_cdp(script: Script) -> AsyncIterator[CdpConnection]:
    """Serve one websocket whose peer runs ``script``, and connect ``open_cdp`` to it.

    After the script the server reads (and ignores) messages until the client closes.
    """

    async def handler(request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            await script(ws)
            while True:
                await ws.get_message()

    async with trio.open_nursery() as nursery:
        serve = partial(trio_websocket.serve_websocket, handler, "127.0.0.1", 0, ssl_context=None)
        server = await nursery.start(serve)
        async with open_cdp(f"ws://127.0.0.1:{server.port}/devtools/browser/fake") as connection:
            yield connection
        nursery.cancel_scope.cancel()


# -- CdpRouter, pure -------------------------------------------------------------------------


def test_router_ids_increase_and_are_pending() -> None:
    router = CdpRouter()
    ids = [router.encode("Test.cmd")[0] for _ in range(5)]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert router.pending == dict.fromkeys(ids, "Test.cmd")


def test_router_encode_includes_session_id_only_when_given() -> None:
    router = CdpRouter()
    command_id, text = router.encode("Page.navigate", {"url": "u"})
    assert json.loads(text) == {"id": command_id, "method": "Page.navigate", "params": {"url": "u"}}
    command_id, text = router.encode("Page.enable", session_id="S1")
    expected = {"id": command_id, "method": "Page.enable", "params": {}, "sessionId": "S1"}
    assert json.loads(text) == expected


def test_router_parses_reply_to_pending_id() -> None:
    router = CdpRouter()
    command_id, _ = router.encode("Test.cmd")
    reply = router.parse(json.dumps({"id": command_id, "result": {"x": 1}}))
    assert reply == CdpReply(command_id, result={"x": 1})
    error = router.parse(json.dumps({"id": command_id, "error": {"code": -1, "message": "m"}}))
    assert error == CdpReply(command_id, error={"code": -1, "message": "m"})


@pytest.mark.parametrize("raw", GARBAGE)
def test_router_drops_garbage_and_unknown_ids(raw: str | bytes) -> None:
    router = CdpRouter()
    router.encode("Test.cmd")
    assert router.parse(raw) is None


def test_router_drops_reply_with_boolean_id() -> None:
    router = CdpRouter()
    assert router.encode("Test.cmd")[0] == 1
    assert router.parse('{"id": true, "result": {}}') is None


def test_router_events_keep_session_id() -> None:
    router = CdpRouter()
    params = {"frameId": "F"}
    assert router.parse(json.dumps(event_message("Page.alpha", "S1", params))) == CdpEvent(
        "Page.alpha", params, "S1"
    )
    assert router.parse(json.dumps(event_message("Page.alpha", None, {}))) == CdpEvent(
        "Page.alpha", {}, None
    )


def test_router_forget_is_idempotent() -> None:
    router = CdpRouter()
    command_id, _ = router.encode("Test.cmd")
    router.forget(command_id)
    router.forget(command_id)
    router.forget(12345)
    assert router.pending == {}
    assert router.parse(json.dumps({"id": command_id, "result": {}})) is None


@given(
    commands=st.lists(st.tuples(st.sampled_from(SESSIONS), st.booleans()), min_size=1, max_size=12),
    events=st.lists(st.tuples(st.sampled_from(SESSIONS), st.sampled_from(METHODS)), max_size=8),
    data=st.data(),
)
def test_router_routes_any_interleaving_of_replies_and_events(
    commands: list[tuple[str | None, bool]],
    events: list[tuple[str | None, str]],
    data: st.DataObject,
) -> None:
    router = CdpRouter()
    sent: list[tuple[int, bool]] = []
    for index, (session_id, cancelled) in enumerate(commands):
        command_id, text = router.encode(f"Test.cmd{index}", {"i": index}, session_id)
        assert json.loads(text).get("sessionId") == session_id
        sent.append((command_id, cancelled))
    for command_id, cancelled in sent:
        if cancelled:
            router.forget(command_id)
    messages = [("reply", k) for k in range(len(sent))] + [("event", k) for k in range(len(events))]
    for kind, k in data.draw(st.permutations(messages)):
        if kind == "reply":
            command_id, cancelled = sent[k]
            item = router.parse(json.dumps({"id": command_id, "result": {"k": k}}))
            assert item == (None if cancelled else CdpReply(command_id, result={"k": k}))
            router.forget(command_id)
        else:
            session_id, method = events[k]
            item = router.parse(json.dumps(event_message(method, session_id, {"k": k})))
            assert item == CdpEvent(method, {"k": k}, session_id)
    assert router.pending == {}


# -- CdpConnection over a real websocket -----------------------------------------------------

Exchange = tuple[list[str | None], list[tuple[str | None, str]], list[tuple[str, int]]]


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    """Commands (their session ids), events, and the order the server sends it all in."""
    sessions = draw(st.lists(st.sampled_from(SESSIONS), min_size=1, max_size=8))
    events = draw(
        st.lists(st.tuples(st.sampled_from(SESSIONS), st.sampled_from(METHODS)), max_size=10)
    )
    messages = [("reply", k) for k in range(len(sessions))]
    messages += [("event", k) for k in range(len(events))]
    return sessions, events, draw(st.permutations(messages))


@settings(deadline=None, max_examples=25)
@given(case=exchanges())
async def test_concurrent_commands_get_own_replies_and_events_reach_their_listeners(
    case: Exchange,
) -> None:
    sessions, events, order = case

    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        commands = [await recv(ws) for _ in sessions]
        for kind, k in order:
            if kind == "reply":
                await send(ws, {"id": commands[k]["id"], "result": {"echo": commands[k]}})
            else:
                session_id, method = events[k]
                await send(ws, event_message(method, session_id, {"k": k}))
        flush = await recv(ws)  # replied last: every event before it has been delivered
        await send(ws, {"id": flush["id"], "result": {}})

    results: dict[int, JsonObject] = {}

    async def run(index: int) -> None:
        results[index] = await connection.execute(f"Test.cmd{index}", session_id=sessions[index])

    async with fake_cdp(script) as connection:
        with contextlib.ExitStack() as stack:
            channels = {
                (session_id, method): stack.enter_context(
                    connection.listen(method, session_id=session_id)
                )
                for session_id in SESSIONS
                for method in METHODS
            }
            every_s1 = stack.enter_context(connection.listen(session_id="S1"))
            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    for index in range(len(sessions)):
                        nursery.start_soon(run, index)
                await connection.execute("Test.flush")

            for index, session_id in enumerate(sessions):
                assert results[index]["echo"]["method"] == f"Test.cmd{index}"
                assert results[index]["echo"].get("sessionId") == session_id
            assert len({result["echo"]["id"] for result in results.values()}) == len(sessions)
            sent = [events[k] + (k,) for kind, k in order if kind == "event"]
            for (session_id, method), channel in channels.items():
                got = drain(channel)
                assert all(e.session_id == session_id and e.method == method for e in got)
                assert [e.params["k"] for e in got] == [
                    k for s, m, k in sent if (s, m) == (session_id, method)
                ]
            assert [e.params["k"] for e in drain(every_s1)] == [k for s, _, k in sent if s == "S1"]


def drain(channel: trio.MemoryReceiveChannel[CdpEvent]) -> list[CdpEvent]:
    got: list[CdpEvent] = []
    with contextlib.suppress(trio.WouldBlock):
        while True:
            got.append(channel.receive_nowait())
    return got


async def test_server_close_fails_pending_commands_at_once_and_ends_listeners() -> None:
    count = 5

    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        for _ in range(count):
            await recv(ws)
        await send(ws, event_message("Page.alpha", None, {}))
        await ws.aclose()

    received: list[CdpEvent] = []
    failed: list[CdpConnectionClosed] = []

    async def pending(index: int) -> None:
        try:
            await connection.execute(f"Test.cmd{index}")
        except CdpConnectionClosed as exc:
            failed.append(exc)

    async with fake_cdp(script) as connection:
        with connection.listen() as channel:

            async def consume() -> None:
                async for event in channel:
                    received.append(event)

            start = trio.current_time()
            with trio.fail_after(5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(consume)
                    for index in range(count):
                        nursery.start_soon(pending, index)
            assert trio.current_time() - start < 1
        assert len(failed) == count
        assert [event.method for event in received] == ["Page.alpha"]
        assert connection.closed
        with pytest.raises(CdpConnectionClosed):
            await connection.execute("Test.after")
        with connection.listen() as late, trio.fail_after(1):
            assert [event async for event in late] == []


@pytest.mark.parametrize("how", ["close handshake", "tcp close"])
async def test_peer_close_does_not_leak_the_client_socket(how: str) -> None:
    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        await (ws.aclose() if how == "close handshake" else ws._stream.aclose())

    async with fake_cdp(script) as connection:
        with pytest.raises(CdpConnectionClosed), trio.fail_after(5):
            await connection.execute("Test.cmd")
    stream = connection._ws._stream
    assert isinstance(stream, trio.SocketStream)
    assert stream.socket.fileno() == -1


async def test_cancelled_command_leaves_nothing_behind_and_late_reply_is_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        first = await recv(ws)
        second = await recv(ws)
        await send(ws, {"id": first["id"], "result": {"late": True}})
        await send(ws, {"id": second["id"], "result": {"ok": True}})

    caplog.set_level(logging.DEBUG, logger="helios_render._chromium.cdp")
    async with fake_cdp(script) as connection:
        with trio.move_on_after(0.1) as scope:
            await connection.execute("Test.never")
        assert scope.cancelled_caught
        assert connection._router.pending == {}
        assert connection._waiters == {}
        with trio.fail_after(5):
            assert await connection.execute("Test.next") == {"ok": True}
        assert connection._router.pending == {}
        assert connection._waiters == {}
    assert "dropping a reply to unknown command id 1" in caplog.text


async def test_garbage_frames_do_not_kill_the_reader() -> None:
    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        command = await recv(ws)
        for message in GARBAGE:
            await ws.send_message(message)
        await send(ws, {"id": command["id"], "result": {"ok": 1}})
        command = await recv(ws)
        await send(ws, {"id": command["id"], "result": {"ok": 2}})

    async with fake_cdp(script) as connection:
        with trio.fail_after(5):
            assert await connection.execute("Test.one") == {"ok": 1}
            assert await connection.execute("Test.two") == {"ok": 2}
        assert not connection.closed


async def test_error_reply_raises_command_error() -> None:
    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        command = await recv(ws)
        error = {"code": -32000, "message": "Cannot navigate to invalid URL"}
        await send(ws, {"id": command["id"], "error": error})

    async with fake_cdp(script) as connection:
        with pytest.raises(CdpCommandError) as info, trio.fail_after(5):
            await connection.execute("Page.navigate", {"url": "nope"})
    assert info.value.method == "Page.navigate"
    assert info.value.code == -32000
    assert info.value.detail == "Cannot navigate to invalid URL"


async def test_large_message_is_received() -> None:
    size = 20 * 1024 * 1024

    async def script(ws: trio_websocket.WebSocketConnection) -> None:
        command = await recv(ws)
        await send(ws, {"id": command["id"], "result": {"data": "x" * size}})

    async with fake_cdp(script) as connection:
        with trio.fail_after(30):
            result = await connection.execute("Page.captureScreenshot")
    assert len(result["data"]) == size


async def test_open_cdp_to_closed_port_raises_connection_closed_quickly() -> None:
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound but never listening: nothing accepts on this port
    with pytest.raises(CdpConnectionClosed, match="could not connect"), trio.fail_after(2):
        async with open_cdp(f"ws://127.0.0.1:{port}/devtools/browser/x"):
            pass
