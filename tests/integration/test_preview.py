"""The preview: a real Chromium, driven through our own CDP client, opens the control page,
and the frame it shows in the composition's iframe equals ``helios-render still`` of that
frame; the servers refuse requests without the token or with a foreign ``Host``."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trio

import helios_render
from helios_render._chromium.browser import chromium_args, find_browser
from helios_render._chromium.cdp import CdpSession, open_cdp
from helios_render._preview import open_preview

from ..cli_sandbox import Sandbox
from ..conftest import COMPOSITIONS, Frame, decode_frames, our_processes, wait_no_processes

pytestmark = pytest.mark.usefixtures("clean_processes")

#: The corpus's own size; at 60 fps, frames 45 and 46 (0.75 s) show every page's moving part
#: inside the frame (a 480 px wide bar counter on the rAF page, the video's source frame 22).
W, H, FPS, FRAMES = 480, 270, 60, 90
#: Largest difference per channel allowed between the preview's frame and the still.
TOLERANCE = 3


@dataclass(frozen=True)
class SharedBrowser:
    endpoint: str


@pytest.fixture(scope="module")
def shared_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedBrowser]:
    """One Chromium for every test of this module (the CI budget): a plain browser that
    the tests reach over our CDP client, as a user's browser would show the page."""
    profile = Path(tempfile.mkdtemp(prefix="preview-browser-", dir=tmp_path_factory.getbasetemp()))
    args = chromium_args(find_browser(), profile, width=1024, height=768,
                         begin_frame_control=False, extra_args=(), as_root=os.geteuid() == 0)
    log = open(profile / "chromium.log", "wb")  # noqa: SIM115 - closed below
    # As launch_browser does: its crash database, caches and temp files in the profile.
    env = {**os.environ, "TMPDIR": str(profile), "XDG_CONFIG_HOME": str(profile / "config"),
           "XDG_CACHE_HOME": str(profile / "cache")}
    process = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True, env=env)
    try:
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            lines = port_file.read_text().split() if port_file.exists() else []
            if len(lines) >= 2:
                break
            assert process.poll() is None, (profile / "chromium.log").read_text()[-2000:]
            trio.run(trio.sleep, 0.05)
        yield SharedBrowser(f"ws://127.0.0.1:{int(lines[0])}{lines[1]}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


@asynccontextmanager
async def control_tab(browser: SharedBrowser, url: str) -> AsyncIterator[CdpSession]:
    """A tab of the shared browser showing ``url``; closed on exit."""
    async with open_cdp(browser.endpoint) as connection:
        root = connection.session(None)
        target = (await root.execute("Target.createTarget", {"url": "about:blank"}))["targetId"]
        try:
            attached = await root.execute(
                "Target.attachToTarget", {"targetId": target, "flatten": True}
            )
            tab = connection.session(attached["sessionId"])
            await tab.execute("Page.enable")
            await tab.execute("Emulation.setDeviceMetricsOverride",
                              {"width": 1024, "height": 768, "deviceScaleFactor": 1,
                               "mobile": False})
            await tab.execute("Page.navigate", {"url": url})
            yield tab
        finally:
            await root.execute("Target.closeTarget", {"targetId": target})


async def evaluate(tab: CdpSession, expression: str) -> Any:
    reply = await tab.execute(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": True},
    )
    assert "exceptionDetails" not in reply, reply
    return reply["result"].get("value")


async def wait_for(tab: CdpSession, expression: str, within: float = 90) -> Any:
    """Poll ``expression`` in the control page until it is truthy."""
    with trio.fail_after(within):
        while True:
            value = await evaluate(tab, expression)
            if value:
                return value
            await trio.sleep(0.02)


async def shown(tab: CdpSession, frame: int) -> None:
    await wait_for(tab, f"document.body && document.body.dataset.shown === '{frame}'")


async def press(tab: CdpSession, key: str, code: int) -> None:
    for kind in ("keyDown", "keyUp"):
        await tab.execute("Input.dispatchKeyEvent", {
            "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code,
        })


async def iframe_pixels(tab: CdpSession, path: Path, size: tuple[int, int] = (W, H)) -> Frame:
    """The composition's iframe as the browser drew it, as RGB."""
    box = await evaluate(
        tab,
        "(() => { const r = document.querySelector('#box iframe').getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()",
    )
    x, y, width, height = box
    assert (width, height) == size
    shot = await tab.execute("Page.captureScreenshot", {
        "format": "png",
        "clip": {"x": x, "y": y, "width": width, "height": height, "scale": 1},
    })
    path.write_bytes(base64.b64decode(shot["data"]))
    return decode_frames(path)[0]


def largest_difference(a: Frame, b: Frame) -> int:
    assert (a.width, a.height) == (b.width, b.height)
    return max(abs(p - q) for p, q in zip(a.rgb, b.rgb, strict=True))


def options(source: Path | str, output: Path, **overrides: Any) -> helios_render.RenderOptions:
    settings: dict[str, Any] = {"source": source, "output": output, "width": W, "height": H,
                                "fps": FPS, "frames": FRAMES}
    settings.update(overrides)
    return helios_render.RenderOptions(**settings)


async def frame_45_then_46(tab: CdpSession, tmp_path: Path) -> tuple[Frame, Frame]:
    """The iframe's pixels at frame 45 (the control page opened with ``frame=45``), then at 46
    after → on the focused slider."""
    await shown(tab, 45)
    at_45 = await iframe_pixels(tab, tmp_path / "preview-45.png")
    await evaluate(tab, "document.getElementById('frame').focus()")
    await press(tab, "ArrowRight", 39)
    await shown(tab, 46)
    return at_45, await iframe_pixels(tab, tmp_path / "preview-46.png")


async def still(source: Path | str, tmp_path: Path, frame: int) -> Frame:
    """What ``helios-render still --frame N`` makes of ``source`` (a file or a URL)."""
    output = tmp_path / f"still-{Path(str(source).split('?')[0]).stem}-{frame}.png"
    settings = options(source, output, frames=1, image_format="png")
    await helios_render.render_still(settings, frame)
    return decode_frames(output)[0]


@pytest.fixture
def video_site(tmp_path: Path) -> Path:
    """media.html and the clip it plays (source frame n is a flat grey of 8 * n)."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(COMPOSITIONS / "media.html", site / "media.html")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=black:s=160x90:r=30:d=2",
         "-vf", "geq=r='8*N':g='8*N':b='8*N'", "-c:v", "libvpx-vp9", "-lossless", "1",
         "-pix_fmt", "yuv444p", "-g", "1", str(site / "clip.webm")],
        check=True,
    )
    return site


CORPUS = {
    "css": "css_linear.html",
    "waapi": "waapi.html",
    "gsap": "gsap.html",
    "clocks-and-timers": "clocks.html",
    "raf-canvas-replayed": "raf_canvas.html",
    "video": "media.html",
}


@pytest.mark.parametrize("kind", list(CORPUS))
async def test_the_preview_shows_the_frames_that_still_makes(
    tmp_path: Path, shared_browser: SharedBrowser, request: pytest.FixtureRequest, kind: str
) -> None:
    folder = request.getfixturevalue("video_site") if kind == "video" else COMPOSITIONS
    source = folder / CORPUS[kind]
    async with (
        open_preview(options(source, tmp_path / "out.mp4"), watch=False) as preview,
        control_tab(shared_browser, f"{preview.url}&frame=45&zoom=100") as tab,
    ):
        at_45, at_46 = await frame_45_then_46(tab, tmp_path)
        assert "frame=46" in await evaluate(tab, "location.search")
        problems = await evaluate(tab, "document.getElementById('problems').textContent")
        assert problems == ""
    stills: dict[int, Frame] = {}

    async def make(frame: int) -> None:
        stills[frame] = await still(source, tmp_path, frame)

    async with trio.open_nursery() as nursery:
        for frame in (45, 46):
            nursery.start_soon(make, frame)
    still_45, still_46 = stills[45], stills[46]
    # The two frames differ by more than the tolerance: showing the wrong one would fail.
    assert largest_difference(still_45, still_46) > TOLERANCE
    assert largest_difference(at_45, still_45) <= TOLERANCE
    assert largest_difference(at_46, still_46) <= TOLERANCE


# ---- security ---------------------------------------------------------------------------


async def http(port: int, request: str) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request to 127.0.0.1:port; the status, headers and body."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request.encode())
        data = b""
        with trio.fail_after(10):
            while True:
                piece = await stream.receive_some(65536)
                if not piece:
                    break
                data += piece
                head, _, body = data.partition(b"\r\n\r\n")
                lengths = [line for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")]
                if lengths and len(body) >= int(lengths[0].split(b":")[1]):
                    break
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def post(path: str, port: int, *, token: str | None, host: str | None = None,
         body: str = "{}", origin: str | None = None) -> str:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}",
             "Content-Type: application/json", f"Content-Length: {len(body)}",
             "Connection: close"]
    if token is not None:
        lines.append(f"X-Helios-Token: {token}")
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines) + "\r\n\r\n" + body


def get(path: str, port: int, host: str | None = None) -> str:
    return (f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
            "Connection: close\r\n\r\n")


async def test_requests_without_the_token_or_with_a_foreign_host_get_403_and_do_nothing(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(COMPOSITIONS / "css_linear.html", site / "index.html")
    (tmp_path / "secret.txt").write_text("outside the root")
    (site / "link.txt").symlink_to(tmp_path / "secret.txt")
    async with open_preview(options(site / "index.html", tmp_path / "out.mp4"),
                            watch=False) as preview:
        port, token = preview.control_port, preview.token
        # The page and the state need the token; the wrong one is refused too.
        assert (await http(port, get("/", port)))[0] == 403
        assert (await http(port, get("/?token=wrong", port)))[0] == 403
        assert (await http(port, get("/api/state", port)))[0] == 403
        status, _, page = await http(port, get(f"/?token={token}", port))
        assert status == 200 and b"preview.js" in page
        # Acting requests: no token, a foreign Host, a foreign Origin: 403, and nothing done.
        for request in (
            post("/api/render", port, token=None),
            post("/api/render", port, token="x" * len(token)),
            post("/api/render", port, token=token, host=f"evil.example:{port}"),
            post("/api/render", port, token=token, origin="http://evil.example"),
            post("/api/still", port, token=None, body='{"frame": 3}'),
            post("/api/props", port, token=None, body='{"props": {"a": 1}}'),
            post("/api/cancel", port, token=None),
        ):
            assert (await http(port, request))[0] == 403, request
        assert preview.render_job is None and preview.props is None
        assert preview.last_still is None and not list(tmp_path.glob("*.png"))
        assert not list(tmp_path.glob(".out.mp4*")) and not (tmp_path / "out.mp4").exists()
        # With the token and the right Host, props are taken.
        status, _, _ = await http(port, post("/api/props", port, token=token,
                                             body='{"props": {"a": 1}}'))
        assert status == 200 and preview.props == {"a": 1}
        # The composition origin: its own Host only; nothing outside the root.
        other = preview.composition_port
        assert other != port
        foreign = get("/index.html", other, host=f"evil.example:{other}")
        assert (await http(other, foreign))[0] == 403
        status, headers, html = await http(other, get("/index.html", other))
        assert status == 200 and b"__helios" in html and token.encode() not in html
        assert headers["content-security-policy"] == f"frame-ancestors {preview.control_origin}"
        assert b'"props": {"a": 1}' in html  # the props the next load gets
        assert (await http(other, get("/../secret.txt", other)))[0] in (403, 404)
        assert (await http(other, get("/%2e%2e/secret.txt", other)))[0] == 403
        assert (await http(other, get("/link.txt", other)))[0] == 403
        # The control page is not served from the composition's origin, nor the reverse.
        assert (await http(other, get("/preview.js", other)))[0] == 404
        assert (await http(port, get(f"/index.html?token={token}", port)))[0] == 404


async def test_an_https_url_source_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(helios_render.OptionsError, match=r"http:// URLs only"):
        async with open_preview(options("https://127.0.0.1:9/x.html", tmp_path / "o.mp4")):
            pass


@pytest.fixture
def site_server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The corpus served over HTTP by another server, as a dev server would: its origin, and
    every request it got (path, headers)."""
    seen: list[tuple[str, str]] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(COMPOSITIONS), **kwargs)

        def do_GET(self) -> None:
            seen.append((self.path, str(self.headers)))
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def test_a_url_source_is_proxied_with_the_runtime_and_never_given_the_token(
    tmp_path: Path, shared_browser: SharedBrowser,
    site_server: tuple[str, list[tuple[str, str]]],
) -> None:
    origin, seen = site_server
    url = f"{origin}/css_linear.html?from=preview"
    async with (
        open_preview(options(url, tmp_path / "out.mp4"), watch=False) as preview,
        control_tab(shared_browser, f"{preview.url}&frame=45&zoom=100") as tab,
    ):
        at_45, at_46 = await frame_45_then_46(tab, tmp_path)
        token = preview.token
        # The proxy fetches from the site's origin only: an absolute-form target is refused.
        status, _, _ = await http(
            preview.composition_port,
            f"GET http://127.0.0.1:9/x HTTP/1.1\r\nHost: 127.0.0.1:{preview.composition_port}"
            "\r\n\r\n",
        )
        assert status == 400
    assert any(path == "/css_linear.html?from=preview" for path, _ in seen)
    assert all(token not in path + headers for path, headers in seen)
    stills = {frame: await still(url, tmp_path, frame) for frame in (45, 46)}
    assert largest_difference(stills[45], stills[46]) > TOLERANCE
    assert largest_difference(at_45, stills[45]) <= TOLERANCE
    assert largest_difference(at_46, stills[46]) <= TOLERANCE



# ---- the page's Render, Cancel, live reload, props, play ---------------------------------


async def click(tab: CdpSession, element: str) -> None:
    await evaluate(tab, f"document.getElementById('{element}').click()")


def small(source: Path, output: Path, **overrides: Any) -> helios_render.RenderOptions:
    return options(source, output, width=320, height=180, fps=30, **overrides)


async def test_render_from_the_page_reaches_100_percent_and_makes_the_cli_file(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    source = COMPOSITIONS / "css_linear.html"
    output = tmp_path / "page.mp4"
    async with (
        open_preview(small(source, output, frames=12, image_format="png", crf=0),
                     watch=False) as preview,
        control_tab(shared_browser, preview.url) as tab,
    ):
        await shown(tab, 0)
        await click(tab, "render")
        await wait_for(tab, "document.body.dataset.render === 'done'", within=120)
        assert await evaluate(tab, "document.body.dataset.renderProgress") == "1"
        assert "100 %" in await evaluate(tab, "document.getElementById('render-text').textContent")
    cli = tmp_path / "cli.mp4"
    await trio.run_process(
        [sys.executable, "-m", "helios_render", "render", str(source), str(cli), "--width", "320",
         "--height", "180", "--fps", "30", "--frames", "12", "--image-format", "png",
         "--crf", "0", "--progress", "none"],
    )
    page_frames, cli_frames = decode_frames(output), decode_frames(cli)
    assert len(page_frames) == 12
    assert [f.rgb for f in page_frames] == [f.rgb for f in cli_frames]
    assert output.read_bytes() == cli.read_bytes()  # the same file


async def test_cancel_from_the_page_reaps_everything_and_keeps_the_job_folder(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    output = tmp_path / "out.mp4"
    before = our_processes()
    async with (
        open_preview(small(COMPOSITIONS / "slow.html", output, frames=120), watch=False) as preview,
        control_tab(shared_browser, preview.url) as tab,
    ):
        await shown(tab, 0)
        await click(tab, "render")
        # Past half the frames: some of the 8 chunks are finished and recorded.
        await wait_for(tab, "Number(document.body.dataset.renderProgress) >= 0.5", within=60)
        assert our_processes() - before, "the render started no browser"
        await click(tab, "cancel")
        await wait_for(tab, "document.body.dataset.render === 'cancelled'", within=10)
        assert not wait_no_processes() - before, "a browser or an encoder was left running"
        text = await evaluate(tab, "document.getElementById('render-text').textContent")
        assert "run the same command again to resume" in text
        assert preview.render_job is not None and preview.render_job.state == "cancelled"
        assert not output.exists()
        (job,) = tmp_path.glob(".out.mp4.helios-job-*")
        assert (job / "manifest.json").is_file()
        # Render again: it resumes from the finished chunks and completes the file.
        await click(tab, "render")
        await wait_for(tab, "document.body.dataset.render === 'done'", within=120)
        text = await evaluate(tab, "document.getElementById('render-text').textContent")
        assert "frames reused from the job folder" in text, text
        assert preview.render_job.reused > 0
    assert len(decode_frames(output)) == 120
    assert not list(tmp_path.glob(".out.mp4.helios-job-*"))


async def test_editing_a_file_reloads_the_composition_at_the_same_frame(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    page = site / "index.html"
    page.write_text((COMPOSITIONS / "css_linear.html").read_text())
    async with (
        open_preview(small(page, tmp_path / "out.mp4", frames=60)) as preview,
        control_tab(shared_browser, f"{preview.url}&frame=10&zoom=100&in=5&out=30") as tab,
    ):
        await shown(tab, 10)
        await trio.sleep(0.3)  # the watcher is up
        red = await iframe_pixels(tab, tmp_path / "red.png", (320, 180))
        loads = await evaluate(tab, "document.body.dataset.loads")
        page.write_text(page.read_text().replace("background: #f00", "background: #00f"))
        changed = trio.current_time()
        await wait_for(tab, f"document.body.dataset.loads !== '{loads}'", within=10)
        await shown(tab, 10)
        reloaded = trio.current_time() - changed
        blue = await iframe_pixels(tab, tmp_path / "blue.png", (320, 180))
        assert "in=5" in await evaluate(tab, "location.search")
    print(f"reloaded and shown again {reloaded:.3f} s after the file changed")
    # The box at frame 10 (x = 500 px/s * 0.333 s = 167 px) turned from red to blue.
    assert red.pixel(185, 120)[0] > 200 and red.pixel(185, 120)[2] < 60
    assert blue.pixel(185, 120)[2] > 200 and blue.pixel(185, 120)[0] < 60


PROPS_PAGE = """<!doctype html>
<style>html, body { margin: 0; background: #fff; }
#box { position: absolute; top: 40px; width: 40px; height: 40px;
       animation: move 2s linear both; }
@keyframes move { from { left: 0; } to { left: 300px; } }</style>
<div id="box"></div>
<script type="application/json" id="helios-props-schema">
{"type": "object", "required": ["color"],
 "properties": {"color": {"type": "string"}, "size": {"type": "integer", "default": 40}}}
</script>
<script>
  const box = document.getElementById("box");
  box.style.background = window.__HELIOS_PROPS__.color;
  box.style.height = `${window.__HELIOS_PROPS__.size}px`;
</script>
"""


async def test_props_from_the_editor_are_applied_at_the_same_frame_and_used_by_still(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    page = tmp_path / "props.html"
    page.write_text(PROPS_PAGE)
    async with (
        open_preview(small(page, tmp_path / "out.mp4", frames=60, props={"color": "#f00"}),
                     watch=False) as preview,
        control_tab(shared_browser, f"{preview.url}&frame=30&zoom=100") as tab,
    ):
        await shown(tab, 30)
        before = await iframe_pixels(tab, tmp_path / "before.png", (320, 180))
        loads = await evaluate(tab, "document.body.dataset.loads")
        # Props that do not match the schema: refused, with the schema's words, nothing reloaded.
        await evaluate(tab, """(() => {
            document.getElementById('props').value = '{"color": 12}';
            document.getElementById('apply-props').click(); })()""")
        note = await wait_for(tab, "document.getElementById('props-note').className === 'error'"
                                   " && document.getElementById('props-note').textContent")
        assert "prop 'color'" in note and "not of type 'string'" in note, note
        assert await evaluate(tab, "document.body.dataset.loads") == loads
        assert preview.props == {"color": "#f00", "size": 40}
        await evaluate(tab, """(() => {
            document.getElementById('props').value = '{"color": "#0a0"}';
            document.getElementById('apply-props').click(); })()""")
        await wait_for(tab, "document.getElementById('props-note').textContent === 'applied'")
        await shown(tab, 30)
        after = await iframe_pixels(tab, tmp_path / "after.png", (320, 180))
        assert preview.props == {"color": "#0a0", "size": 40}  # the schema's default
        await click(tab, "still")
        await wait_for(tab, "document.getElementById('status').textContent.startsWith('wrote')",
                       within=60)
        assert preview.last_still == tmp_path / "out.f00030.png"
    x = 150 + 20  # the box's middle at 1 s: left = 150 px
    assert before.pixel(x, 60) == (255, 0, 0)
    assert after.pixel(x, 60) == (0, 170, 0)
    made = decode_frames(tmp_path / "out.f00030.png")[0]
    assert largest_difference(made, after) <= TOLERANCE


async def test_play_advances_in_real_time_and_counts_the_frames_it_drops(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    # At 240 fps a frame is due every 4.2 ms; a frame is drawn at most once per display
    # frame of the browser (60 Hz), so frames must be dropped to keep to real time.
    async with (
        open_preview(options(COMPOSITIONS / "css_linear.html", tmp_path / "out.mp4",
                             fps=240, frames=2000, width=320, height=180),
                     watch=False) as preview,
        control_tab(shared_browser, preview.url) as tab,
    ):
        await shown(tab, 0)
        before_play = trio.current_time()
        await press(tab, " ", 32)
        playing = trio.current_time()
        await trio.sleep(2)
        pausing = trio.current_time()
        await press(tab, " ", 32)
        after_pause = trio.current_time()
        played = await wait_for(tab, "document.body.dataset.played")
        frame = int(await evaluate(tab, "document.body.dataset.wanted"))
        await shown(tab, frame)  # the frame asked for last is drawn, even after the pause
    drawn, dropped = map(int, played.split())
    print(f"played to frame {frame}: {drawn} frames drawn, {dropped} dropped")
    # It played for at least the 2 s between the key presses and at most from before the first
    # to after the second (both seen by the test's clock): at 240 fps about 480 frames, on a
    # busy machine fewer (the page steps when the browser gives it a display frame, and the
    # last step before the pause may be late), never more than real time allows. The frames
    # drawn plus those dropped make up the way travelled.
    at_least, at_most = 240 * (pausing - playing), 240 * (after_pause - before_play)
    assert at_least / 2 <= frame <= at_most + 24, (frame, at_least, at_most)
    assert dropped > 0
    assert drawn + dropped == frame


# ---- the command line -------------------------------------------------------------------


def test_ctrl_c_while_a_render_from_the_page_runs_exits_130_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # The sandbox's own machine-wide orphan check would also count other users' Chromium
    # helpers on a shared machine; what this preview started is marked with its pid, and
    # checked below by that mark.
    box = Sandbox(tmp_path)
    try:
        process = box.spawn(
            "preview", str(COMPOSITIONS / "slow.html"), "--no-open", "--frames", "240",
            "--width", "320", "--height", "180", "--output", str(box.output),
            "--progress", "json", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline().decode()
            second = process.stdout.readline().decode()
            assert first.startswith("preview: http://127.0.0.1:"), first
            url = first.removeprefix("preview: ").strip()
            assert json.loads(second) == {"event": "listening", "url": url}
            origin, token = url.split("/?token=")
            started = urllib.request.Request(
                f"{origin}/api/render", data=b"{}", method="POST",
                headers={"X-Helios-Token": token, "Content-Type": "application/json"},
            )
            with urllib.request.urlopen(started, timeout=10) as answer:
                assert answer.status == 202
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with urllib.request.urlopen(f"{origin}/api/state?token={token}") as answer:
                    render = json.load(answer)["render"]
                if render["progress"] > 0:
                    break
                time.sleep(0.1)
            assert render["state"] == "running" and render["progress"] > 0, render
            assert our_processes(process.pid), "the render started no browser"
            process.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            _, stderr = process.communicate(timeout=30)
            took = time.monotonic() - interrupted
        finally:
            process.kill()
            process.wait()
        print(f"exited {process.returncode} {took:.2f} s after Ctrl+C")
        assert process.returncode == 130, stderr.decode()
        assert b"interrupted; every browser and encoder was stopped" in stderr
        assert b"Traceback" not in stderr
        assert not wait_no_processes(owner=process.pid)
        # The job folder stays for a resume (as after Ctrl+C on render); nothing else is left.
        box.check_left_as_found(job_kept=True)
        assert took < 5, f"took {took:.2f} s to exit"
    finally:
        shutil.rmtree(box.tmp, ignore_errors=True)


async def test_the_problems_panel_names_a_frame_that_never_becomes_ready_and_a_missing_file(
    tmp_path: Path, shared_browser: SharedBrowser
) -> None:
    page = tmp_path / "index.html"
    page.write_text('<!doctype html><script src="nope.js"></script>'
                    '<script>heliosRender.delay("waiting for godot");</script>')
    async with (
        open_preview(small(page, tmp_path / "out.mp4", frames=10, timeout=1), watch=False)
        as preview,
        control_tab(shared_browser, f"{preview.url}&frame=3") as tab,
    ):
        problems = await wait_for(
            tab, "document.getElementById('problem-count')"
                 " && document.getElementById('problem-count').textContent === '2'"
                 " && document.getElementById('problems').textContent")
    assert "the composition could not load the script" in problems and "nope.js" in problems
    assert ("frame 2 was not ready within 1 s; still waiting for: waiting for godot "
            "(raise --timeout, or resume every heliosRender.delay() handle)") in problems
