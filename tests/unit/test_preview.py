"""The preview's pure parts and its HTTP loop: where the runtime goes in a page, the props
schema a page declares, and the Host check (no browser)."""

from __future__ import annotations

import pytest
import trio

from helios_render._exceptions import PropsError
from helios_render._preview.composition import inject_scripts
from helios_render._preview.http import MAX_BODY, Request, Response, serve_http
from helios_render._preview.props import check_props
from helios_render._preview.service import _hosts

SCRIPT = "<script>A</script>"


def test_scripts_go_after_the_doctype_html_and_head_tags() -> None:
    page = b"<!DOCTYPE html>\n<html lang='en'>\n<head><meta charset=utf-8><script>page()</script>"
    out = inject_scripts(page, ["A"])
    assert out.startswith(b"<!DOCTYPE html>\n<html lang='en'>\n<head>" + SCRIPT.encode())
    assert out.index(SCRIPT.encode()) < out.index(b"page()")


def test_a_page_without_doctype_or_head_gets_the_scripts_first() -> None:
    assert inject_scripts(b"<div>x</div>", ["A"]) == SCRIPT.encode() + b"<div>x</div>"
    # A doctype stays first (scripts before it would put the page in quirks mode).
    out = inject_scripts(b"\xef\xbb\xbf<!-- c --> <!doctype html><style></style>", ["A"])
    assert out.endswith(SCRIPT.encode() + b"<style></style>")


def test_a_closing_script_tag_inside_a_script_cannot_end_it() -> None:
    out = inject_scripts(b"", ['s = "</script><img src=x>"'])
    assert out.count(b"</script>") == 1


def test_props_are_checked_against_the_schema_with_its_defaults_filled_in() -> None:
    schema = {"type": "object", "required": ["color"],
              "properties": {"color": {"type": "string"}, "size": {"type": "integer",
                                                                     "default": 40}}}
    assert check_props(schema, {"color": "red"}) == {"color": "red", "size": 40}
    with pytest.raises(PropsError, match="color"):
        check_props(schema, {"color": 12})
    with pytest.raises(PropsError, match="extra"):
        check_props(schema, {"color": "red", "extra": 1}, strict=True)
    # Without a schema any JSON value goes to the page, as with render --props.
    assert check_props(None, [1, "two"]) == [1, "two"]


def test_hosts_are_the_address_and_localhost_on_loopback_only() -> None:
    assert _hosts("127.0.0.1", 8000) == {"127.0.0.1:8000", "localhost:8000"}
    assert _hosts("::1", 8000) == {"[::1]:8000", "localhost:8000"}
    assert _hosts("192.168.1.5", 80) == {"192.168.1.5:80"}


async def _exchange(port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(data)
        received = b""
        with trio.fail_after(10):
            while piece := await stream.receive_some(65536):
                received += piece
    return received


async def test_the_http_loop_checks_host_and_body_size_before_the_handler() -> None:
    seen: list[Request] = []

    async def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, [("Content-Type", "text/plain")], b"ok " + request.body)

    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_http, handler, "127.0.0.1", 0,
                                   lambda p: frozenset({f"127.0.0.1:{p}"}))
        # Two requests on one connection (keep-alive), the second with a body and a query.
        both = (f"GET /a HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                f"POST /b?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\nhi").encode()
        answer = await _exchange(port, both)
        assert answer.count(b"HTTP/1.1 200") == 2 and answer.endswith(b"ok hi")
        assert [(r.method, r.path, r.query) for r in seen] == [
            ("GET", "/a", {}), ("POST", "/b", {"x": "1"})]
        foreign = f"GET /a HTTP/1.1\r\nHost: attacker.example:{port}\r\n\r\n".encode()
        assert (await _exchange(port, foreign)).startswith(b"HTTP/1.1 403")
        big = (f"POST /c HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Content-Length: {MAX_BODY + 1}\r\n\r\n").encode() + b"x" * (MAX_BODY + 1)
        assert (await _exchange(port, big)).startswith(b"HTTP/1.1 413")
        assert len(seen) == 2
        nursery.cancel_scope.cancel()
