"""The static composition server, over real HTTP on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from helios_render._source import server as _server
from helios_render._source.server import StaticServer, serve_directory

SECRET = b"TOPSECRET-do-not-serve"
VIDEO = bytes(range(256)) * 40  # 10240 bytes


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class Client:
    """A tiny HTTP/1.1 client over one connection; sends request targets verbatim."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def request(
        self,
        target: str | bytes,
        *,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> Response:
        await self.send(build_request(target, method=method, headers=headers, body=body))
        return await self.read_response(head_only=method == "HEAD")

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("connection closed")
        self.buffer += data

    async def read_response(self, *, head_only: bool = False) -> Response:
        while b"\r\n\r\n" not in self.buffer:
            await self._fill()
        end = self.buffer.index(b"\r\n\r\n")
        status_line, *lines = self.buffer[:end].decode("latin-1").split("\r\n")
        del self.buffer[: end + 4]
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1"
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only else int(headers["content-length"])
        while len(self.buffer) < length:
            await self._fill()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return Response(int(status), headers, body)

    async def at_eof(self) -> bool:
        """Whether the server closed the connection (after any buffered bytes)."""
        with trio.fail_after(5):
            try:
                data = await self.stream.receive_some(65536)
            except trio.BrokenResourceError:
                return True
        return not data


def build_request(
    target: str | bytes,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    all_headers = {"Host": "127.0.0.1", **(headers or {})}
    if body:
        all_headers["Content-Length"] = str(len(body))
    lines = [method.encode() + b" " + raw_target + b" HTTP/1.1"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in all_headers.items()]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def connect(server: StaticServer) -> Client:
    return Client(await trio.open_tcp_stream("127.0.0.1", server.port))


async def fetch(
    server: StaticServer,
    target: str | bytes,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    """One request on a fresh connection."""
    client = await connect(server)
    async with client.stream:
        with trio.fail_after(10):
            return await client.request(target, method=method, headers=headers, body=body)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "index.html").write_text("<!doctype html><p>home</p>", encoding="utf-8")
    (root / "app.js").write_text("export const x = 1;\n", encoding="utf-8")
    (root / "lib.mjs").write_text("export default 2;\n", encoding="utf-8")
    (root / "sub" / "index.html").write_text("<p>sub</p>", encoding="utf-8")
    (root / "sub" / "a b.txt").write_text("spaced", encoding="utf-8")
    (root / "video.mp4").write_bytes(VIDEO)
    (root / "empty.bin").write_bytes(b"")
    for name in ("a.wasm", "a.woff2", "a.webm", "a.svg", "a.json", "a.css", "a.png"):
        (root / name).write_bytes(b"x")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return root


@pytest.fixture
async def server(site: Path) -> AsyncIterator[StaticServer]:
    async with serve_directory(site) as running:
        yield running


# --- content ------------------------------------------------------------------------------


async def test_serves_html_js_and_mjs(server: StaticServer, site: Path) -> None:
    html = await fetch(server, "/index.html")
    assert html.status == 200
    assert html.body == (site / "index.html").read_bytes()
    assert html.headers["content-type"].split(";")[0] == "text/html"
    assert html.headers["content-length"] == str(len(html.body))
    assert html.headers["cache-control"] == "no-store"
    assert html.headers["accept-ranges"] == "bytes"

    js = await fetch(server, "/app.js")
    assert js.status == 200
    assert js.body == b"export const x = 1;\n"
    assert js.headers["content-type"].split(";")[0] == "text/javascript"

    mjs = await fetch(server, "/lib.mjs")
    assert mjs.status == 200
    assert mjs.body == b"export default 2;\n"
    assert mjs.headers["content-type"].split(";")[0] == "text/javascript"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.wasm", "application/wasm"),
        ("a.woff2", "font/woff2"),
        ("video.mp4", "video/mp4"),
        ("a.webm", "video/webm"),
        ("a.svg", "image/svg+xml"),
        ("a.json", "application/json"),
        ("a.css", "text/css"),
        ("a.png", "image/png"),
    ],
)
async def test_content_types(server: StaticServer, name: str, content_type: str) -> None:
    response = await fetch(server, f"/{name}")
    assert response.status == 200
    assert response.headers["content-type"].split(";")[0] == content_type


async def test_missing_file_is_404(server: StaticServer) -> None:
    response = await fetch(server, "/nope.html")
    assert response.status == 404
    assert (await fetch(server, "/app.js/")).status == 404


async def test_directory_serves_its_index(server: StaticServer) -> None:
    root = await fetch(server, "/")
    assert root.status == 200
    assert root.body == b"<!doctype html><p>home</p>"
    sub = await fetch(server, "/sub/")
    assert sub.status == 200
    assert sub.body == b"<p>sub</p>"
    assert sub.headers["content-type"].startswith("text/html")


async def test_directory_without_slash_redirects(server: StaticServer) -> None:
    response = await fetch(server, "/sub?x=1")
    assert response.status == 301
    assert response.headers["location"] == "/sub/?x=1"


async def test_directory_without_index_is_404(server: StaticServer) -> None:
    assert (await fetch(server, "/empty/")).status == 404


async def test_query_string_is_ignored_and_names_are_decoded(server: StaticServer) -> None:
    response = await fetch(server, "/app.js?v=123#frag")
    assert response.body == b"export const x = 1;\n"
    spaced = await fetch(server, "/sub/a%20b.txt")
    assert spaced.status == 200
    assert spaced.body == b"spaced"


async def test_url_for(server: StaticServer, site: Path) -> None:
    assert server.root == Path(await trio.Path(site).resolve())
    assert server.url_for("sub/index.html") == f"http://127.0.0.1:{server.port}/sub/index.html"
    assert server.url_for("/sub/a b.txt") == f"http://127.0.0.1:{server.port}/sub/a%20b.txt"
    assert server.url_for("x?#%.js").endswith("/x%3F%23%25.js")
    target = server.url_for("sub/a b.txt").removeprefix(f"http://127.0.0.1:{server.port}")
    assert (await fetch(server, target)).body == b"spaced"


async def test_head(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        head = await client.request("/video.mp4", method="HEAD")
        assert head.status == 200
        assert head.headers["content-length"] == str(len(VIDEO))
        assert head.headers["content-type"] == "video/mp4"
        assert head.body == b""
        # No body was sent: the next response on the connection parses cleanly.
        after = await client.request("/app.js")
        assert after.status == 200
        assert after.body == b"export const x = 1;\n"


async def test_large_file_is_sent_whole(tmp_path: Path) -> None:
    data = os.urandom(_server.CHUNK_SIZE * 3 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    async with serve_directory(tmp_path) as server:
        response = await fetch(server, "/big.bin")
    assert response.status == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.body == data


async def test_empty_file(server: StaticServer) -> None:
    response = await fetch(server, "/empty.bin")
    assert response.status == 200
    assert response.body == b""


# --- ranges -------------------------------------------------------------------------------


async def test_range_request(server: StaticServer) -> None:
    response = await fetch(server, "/video.mp4", headers={"Range": "bytes=10-19"})
    assert response.status == 206
    assert response.body == VIDEO[10:20]
    assert response.headers["content-range"] == f"bytes 10-19/{len(VIDEO)}"
    assert response.headers["content-length"] == "10"
    assert response.headers["content-type"] == "video/mp4"


async def test_open_ended_and_clamped_ranges(server: StaticServer) -> None:
    open_ended = await fetch(server, "/video.mp4", headers={"Range": "bytes=10000-"})
    assert open_ended.status == 206
    assert open_ended.body == VIDEO[10000:]
    assert open_ended.headers["content-range"] == f"bytes 10000-{len(VIDEO) - 1}/{len(VIDEO)}"
    clamped = await fetch(server, "/video.mp4", headers={"Range": "bytes=10200-99999"})
    assert clamped.status == 206
    assert clamped.body == VIDEO[10200:]


async def test_suffix_range(server: StaticServer) -> None:
    response = await fetch(server, "/video.mp4", headers={"Range": "bytes=-100"})
    assert response.status == 206
    assert response.body == VIDEO[-100:]
    assert response.headers["content-range"] == f"bytes {len(VIDEO) - 100}-10239/{len(VIDEO)}"
    whole = await fetch(server, "/video.mp4", headers={"Range": "bytes=-999999"})
    assert whole.status == 206
    assert whole.body == VIDEO


@pytest.mark.parametrize("value", ["bytes=10240-", "bytes=999999-1000000", "bytes=-0"])
async def test_unsatisfiable_range_is_416(server: StaticServer, value: str) -> None:
    response = await fetch(server, "/video.mp4", headers={"Range": value})
    assert response.status == 416
    assert response.headers["content-range"] == f"bytes */{len(VIDEO)}"


@pytest.mark.parametrize("value", ["bytes=5-1", "bytes=0-1,5-6", "items=0-1", "bytes=x-y"])
async def test_unusable_range_serves_whole_file(server: StaticServer, value: str) -> None:
    response = await fetch(server, "/video.mp4", headers={"Range": value})
    assert response.status == 200
    assert response.body == VIDEO


async def test_range_on_head(server: StaticServer) -> None:
    response = await fetch(server, "/video.mp4", method="HEAD", headers={"Range": "bytes=0-9"})
    assert response.status == 206
    assert response.headers["content-length"] == "10"
    assert response.body == b""


# --- connections --------------------------------------------------------------------------


async def test_keep_alive_two_requests_on_one_connection(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        with trio.fail_after(10):
            first = await client.request("/app.js")
            second = await client.request("/video.mp4", headers={"Range": "bytes=0-3"})
            third = await client.request("/nope")
    assert first.status == 200
    assert first.headers["connection"] == "keep-alive"
    assert first.body == b"export const x = 1;\n"
    assert second.status == 206
    assert second.body == VIDEO[:4]
    assert third.status == 404


async def test_pipelined_requests(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        with trio.fail_after(10):
            await client.send(build_request("/app.js") + build_request("/lib.mjs"))
            first = await client.read_response()
            second = await client.read_response()
    assert first.body == b"export const x = 1;\n"
    assert second.body == b"export default 2;\n"


async def test_connection_close_is_honored(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        response = await client.request("/app.js", headers={"Connection": "close"})
        assert response.status == 200
        assert response.headers["connection"] == "close"
        assert await client.at_eof()


async def test_http_10_closes_by_default(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        await client.send(b"GET /app.js HTTP/1.0\r\n\r\n")
        response = await client.read_response()
        assert response.body == b"export const x = 1;\n"
        assert await client.at_eof()


async def test_idle_connection_times_out(
    server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_server, "IDLE_TIMEOUT", 0.2)
    client = await connect(server)
    async with client.stream:
        assert (await client.request("/app.js")).status == 200
        with trio.fail_after(5):
            assert await client.at_eof()


async def test_listens_on_loopback(server: StaticServer) -> None:
    assert server.host == "127.0.0.1"
    assert server.url_for("index.html").startswith(f"http://127.0.0.1:{server.port}/")
    client = await connect(server)
    async with client.stream:
        assert client.stream.socket.getpeername()[:2] == ("127.0.0.1", server.port)
        assert (await client.request("/")).status == 200


async def test_connecting_fails_after_exit(site: Path) -> None:
    async with serve_directory(site) as server:
        port = server.port
        assert (await fetch(server, "/app.js")).status == 200
    with pytest.raises(OSError):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.aclose()


async def test_exit_closes_idle_keep_alive_connections(site: Path) -> None:
    with trio.fail_after(5):
        async with serve_directory(site) as server:
            client = await connect(server)
            assert (await client.request("/app.js")).status == 200
        # The context exited promptly although the connection was idle, and closed it.
        async with client.stream:
            assert await client.at_eof()


async def test_error_in_block_propagates_unwrapped(site: Path) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with serve_directory(site):
            raise KeyError("boom")


async def test_cancelled_block_stops_the_server(site: Path) -> None:
    port = 0
    with trio.move_on_after(0.1) as scope:
        async with serve_directory(site) as server:
            port = server.port
            await trio.sleep_forever()
    assert scope.cancelled_caught
    with pytest.raises(OSError):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.aclose()


async def test_root_must_be_a_folder(site: Path) -> None:
    with pytest.raises(NotADirectoryError):
        async with serve_directory(site / "app.js"):
            pass


async def test_host_must_be_an_ip_address(site: Path) -> None:
    with pytest.raises(ValueError, match="IP address"):
        async with serve_directory(site, host="localhost"):
            pass


async def test_client_disconnect_does_not_break_server(server: StaticServer) -> None:
    for _ in range(3):
        client = await connect(server)
        await client.send(build_request("/video.mp4"))
        await trio.aclose_forcefully(client.stream)
        half = await connect(server)
        await half.send(b"GET /app.js HTT")
        await half.stream.aclose()
    assert (await fetch(server, "/app.js")).status == 200


# --- refusals -----------------------------------------------------------------------------


TRAVERSALS = [
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/./../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub%2f..%2f..%2fsecret.txt",
    "/%2e%2e%5csecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "/\\..\\secret.txt",
    "/secret.txt%00",
    "/%00/../secret.txt",
    "/..%00/secret.txt",
    "/%252e%252e/secret.txt",
    "/..%c0%afsecret.txt",
    "%2e%2e/secret.txt",
    "../secret.txt",
    "http://127.0.0.1/../secret.txt",
    "http://127.0.0.1/%2e%2e/secret.txt",
    "*",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_traversal_is_refused(server: StaticServer, target: str) -> None:
    response = await fetch(server, target)
    assert response.status in (400, 403, 404)
    assert SECRET not in response.body


async def test_absolute_paths_stay_under_root(server: StaticServer, site: Path) -> None:
    secret = (site.parent / "secret.txt").resolve()
    for target in (
        f"/{secret.as_posix()}",
        f"/{secret.as_posix().replace('/', '%2f')}",
        f"//{secret.as_posix().lstrip('/')}",
        secret.as_posix(),
    ):
        response = await fetch(server, target)
        assert response.status in (403, 404)
        assert SECRET not in response.body


async def test_raw_nul_byte_is_refused(server: StaticServer) -> None:
    response = await fetch(server, b"/\x00../secret.txt")
    assert response.status in (400, 403, 404)
    assert SECRET not in response.body


async def test_symlinks_pointing_outside_are_refused(server: StaticServer, site: Path) -> None:
    try:
        (site / "link.txt").symlink_to(site.parent / "secret.txt")
        (site / "outside").symlink_to(site.parent, target_is_directory=True)
        (site / "inside.js").symlink_to(site / "app.js")
    except OSError as exc:  # pragma: no cover - platforms without symlinks
        pytest.skip(f"cannot create symlinks: {exc}")
    for target in ("/link.txt", "/outside/secret.txt", "/outside/"):
        response = await fetch(server, target)
        assert response.status in (403, 404), target
        assert SECRET not in response.body
    inside = await fetch(server, "/inside.js")
    assert inside.status == 200
    assert inside.body == b"export const x = 1;\n"


async def test_index_html_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root" / "d").mkdir(parents=True)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tmp_path / "root" / "d" / "index.html").symlink_to(tmp_path / "secret.txt")
    async with serve_directory(tmp_path / "root") as server:
        response = await fetch(server, "/d/")
    assert response.status in (403, 404)
    assert SECRET not in response.body


async def test_post_is_405(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        response = await client.request("/index.html", method="POST", body=b"a=1" * 1000)
        assert response.status == 405
        assert response.headers["allow"] == "GET, HEAD"
        assert await client.at_eof()
    for method in ("PUT", "DELETE", "OPTIONS", "get"):
        assert (await fetch(server, "/index.html", method=method)).status == 405


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /app.js\r\n\r\n",
        b"GET /app.js HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /app.js HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /app.js HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /app.js HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
        b"GET /app.js HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /app.js HTTP/2.0\r\nHost: x\r\n\r\n",
    ],
)
async def test_malformed_request_is_400_and_closes(server: StaticServer, raw: bytes) -> None:
    client = await connect(server)
    async with client.stream:
        await client.send(raw)
        response = await client.read_response()
        assert response.status in (400, 505)
        assert response.headers["connection"] == "close"
        assert await client.at_eof()


async def test_oversized_head_is_refused_and_closes(server: StaticServer) -> None:
    client = await connect(server)
    async with client.stream:
        filler = "x" * 1000
        headers = {f"X-Filler-{i}": filler for i in range(80)}
        await client.send(build_request("/app.js", headers=headers))
        response = await client.read_response()
        assert response.status in (400, 431)
        assert await client.at_eof()
    # A large head under the limit is still fine.
    ok = await fetch(server, "/app.js", headers={f"X-Filler-{i}": "x" * 1000 for i in range(50)})
    assert ok.status == 200


# --- names that are not UTF-8 -------------------------------------------------------------


async def test_file_name_that_is_not_utf8_is_served(tmp_path: Path) -> None:
    # b"sc\xe8ne.html" is a valid Linux file name (Latin-1), not UTF-8: Python spells it
    # "sc\udce8ne.html" (surrogateescape). Its URL is quoted byte for byte, and served back.
    raw_name = b"sc\xe8ne.html"
    try:
        (tmp_path / os.fsdecode(raw_name)).write_bytes(b"<p>latin-1</p>")
    except OSError as exc:  # pragma: no cover - file systems that insist on UTF-8
        pytest.skip(f"cannot create a non-UTF-8 file name: {exc}")
    (tmp_path / "d\udce8").mkdir()
    (tmp_path / "d\udce8" / "index.html").write_bytes(b"<p>folder</p>")
    name = os.fsdecode(raw_name)
    async with serve_directory(tmp_path) as server:
        url = server.url_for(name)
        assert url.endswith("/sc%E8ne.html")
        response = await fetch(server, url.removeprefix(server.base_url))
        assert response.status == 200
        assert response.body == b"<p>latin-1</p>"
        assert response.headers["content-type"].startswith("text/html")
        redirect = await fetch(server, "/d%E8")
        assert redirect.status == 301
        assert redirect.headers["location"] == "/d%E8/"
        assert (await fetch(server, "/d%E8/")).body == b"<p>folder</p>"
        # An overlong or invalid UTF-8 sequence is just a name that does not exist.
        assert (await fetch(server, "/sc%C3%A8ne.html")).status == 404
