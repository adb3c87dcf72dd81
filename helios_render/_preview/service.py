"""The preview service: a control page and the composition, on two loopback origins.

``open_preview(options)`` starts, in a nursery of its own:

* the **composition server** (:class:`~helios_render._preview.composition.CompositionSite`):
  the composition's folder on its own port, every HTML page with the runtime at its top;
* the **control server**: the control page (``static/``), its state, and the requests that
  act (Still, Render, Cancel, props), each of which needs the token;
* a **watcher** of the folder (``watchfiles``) that tells the page to reload;
* at most one **render** at a time, started from the page, with its progress streamed to
  the page (Server-Sent Events) and a Cancel that stops it as Ctrl+C does.

Still and Render call :func:`~helios_render._render.render_still` and
:func:`~helios_render._render.render`: the same code as ``helios-render still`` and
``helios-render render``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import secrets
import urllib.parse
import webbrowser
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

import trio

from .._environment import probe_environment
from .._exceptions import HeliosError, OptionsError, PropsError
from .._model.job import FolderSource, PageConfig, UrlSource
from .._model.options import RenderOptions
from .._model.plan import plan_render
from .._model.progress import RenderProgress
from .._nursery import background_nursery
from .._output.jobs import describe_kept
from .._props_source import check_render_props, props_schema
from .._render import render, render_still
from .._timing import resolve_page_timing
from .composition import CompositionSite, ProxySite
from .http import Request, Response, serve_http, text_response
from .props import check_props

__all__ = ["Preview", "open_preview", "preview_sync"]

logger = logging.getLogger(__name__)

#: Seconds between keep-alive comments on an idle event stream.
EVENTS_KEEPALIVE = 15.0
#: Events queued for one page before it is dropped as too slow.
EVENTS_BUFFER = 256
#: Milliseconds the watcher waits for changes to settle before it says the folder changed.
WATCH_DEBOUNCE_MS = 100
#: Milliseconds a wait of the watcher's thread lasts, at most: how soon it sees a cancel.
WATCH_STEP_MS = 300

_STATIC = {
    "/preview.js": "text/javascript; charset=utf-8",
    "/preview.css": "text/css; charset=utf-8",
}


def _hosts(host: str, port: int) -> frozenset[str]:
    """``Host`` header values that name this server."""
    address = ipaddress.ip_address(host)
    literal = f"[{host}]" if address.version == 6 else host
    names = {f"{literal}:{port}"}
    if address.is_loopback:
        names.add(f"localhost:{port}")
    return frozenset(names)


def _origin(host: str, port: int) -> str:
    literal = f"[{host}]" if ":" in host else host
    return f"http://{literal}:{port}"


def _json(status: HTTPStatus, value: Any) -> Response:
    return Response(
        status.value,
        [("Content-Type", "application/json")],
        json.dumps(value).encode(),
    )


def _is_url(source: str) -> bool:
    return str(source).lower().startswith(("http://", "https://"))


def check_preview_source(source: str) -> None:
    """Refuse a URL SOURCE the preview cannot proxy: it serves the site's pages itself (with
    the runtime put in), over plain HTTP.

    Raises:
        OptionsError: ``source`` is an ``https://`` URL.
    """
    if str(source).lower().startswith("https://"):
        raise OptionsError(_NOT_PROXIED)


_NOT_PROXIED = (
    "preview proxies http:// URLs only (it puts the runtime into the pages it serves); for "
    "an https:// page, save it locally or serve it over http:// on this machine, or render it "
    "with helios-render render"
)


def default_output(source: str) -> Path:
    """Where Render writes without ``--output``: beside the source, as ``NAME.mp4``; for a URL,
    in the current folder, named after the URL's page (``index.mp4`` for a folder's URL)."""
    if _is_url(source):
        stem = Path(urllib.parse.urlsplit(source).path).stem or "index"
        return Path.cwd() / f"{stem}.mp4"
    return Path(source).with_suffix(".mp4")


@dataclass(slots=True)
class RenderJob:
    """The render started from the page, while it runs and after."""

    scope: trio.CancelScope
    state: str = "running"  # running, done, failed, cancelled
    progress: float = 0.0
    stage: str = "launching"
    message: str = ""
    #: Frames taken from the job folder of an interrupted (or cancelled) render.
    reused: int = 0


class Preview:
    """A running preview. Create it with :func:`open_preview`.

    Attributes:
        url: The control page's address, with the token: open it in a browser.
        token: The secret every acting request must carry.
        options: The render settings (timing resolved) that Still and Render use.
        frames: Frames of the composition (the slider goes from 0 to ``frames - 1``).
    """

    def __init__(self, options: RenderOptions, page: PageConfig, root: Path | None, entry: str,
                 host: str) -> None:
        self.options = options
        self.page = page
        self.root = root
        self.entry = entry
        self.host = host
        self.token = secrets.token_urlsafe(24)
        self.props: Any = options.props
        #: The composition's props schema (``None`` when it declares none).
        self.schema: dict[str, Any] | None = None
        #: Bumped on every change of the served folder; the page reloads the composition.
        self.version = 0
        self.control_port = 0
        self.composition_port = 0
        self.render_job: RenderJob | None = None
        self.last_still: Path | None = None
        self._listeners: set[trio.MemorySendChannel[dict[str, Any]]] = set()
        self._nursery: trio.Nursery | None = None

    @property
    def frames(self) -> int:
        return self.options.frame_count

    @property
    def control_origin(self) -> str:
        return _origin(self.host, self.control_port)

    @property
    def composition_origin(self) -> str:
        return _origin(self.host, self.composition_port)

    @property
    def url(self) -> str:
        return f"{self.control_origin}/?token={self.token}"

    @property
    def composition_url(self) -> str:
        return f"{self.composition_origin}/{self.entry}"

    def page_config(self) -> PageConfig:
        """The settings of the next composition load: the render's, with the current props."""
        return replace(self.page, url=self.composition_url, props=self.props)

    def output(self) -> Path:
        return self.options.output_path

    def still_path(self, frame: int) -> Path:
        output = self.output()
        return output.with_name(f"{output.stem}.f{frame:05d}.png")

    # ---- events to the pages ---------------------------------------------------------------

    def broadcast(self, event: dict[str, Any]) -> None:
        for channel in list(self._listeners):
            try:
                channel.send_nowait(event)
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._listeners.discard(channel)
                channel.close()

    def _events(self) -> Callable[[], AsyncIterator[bytes]]:
        send, receive = trio.open_memory_channel[dict[str, Any]](EVENTS_BUFFER)
        self._listeners.add(send)
        send.send_nowait({"type": "hello", "version": self.version, **self._render_state()})

        async def stream() -> AsyncIterator[bytes]:
            try:
                while True:
                    with trio.move_on_after(EVENTS_KEEPALIVE):
                        event = await receive.receive()
                        yield f"data: {json.dumps(event)}\n\n".encode()
                        continue
                    yield b": keep-alive\n\n"
            except trio.EndOfChannel:
                return
            finally:
                self._listeners.discard(send)
                send.close()
                receive.close()

        return stream

    def _render_state(self) -> dict[str, Any]:
        job = self.render_job
        if job is None:
            return {"render": None}
        return {"render": {"state": job.state, "progress": job.progress, "stage": job.stage,
                           "message": job.message}}

    # ---- the control origin ----------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        given = request.headers.get("x-helios-token") or request.query.get("token") or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return False
        origin = request.headers.get("origin")
        return origin is None or origin == self.control_origin

    async def handle_control(self, request: Request) -> Response:
        path = request.path
        if request.method in ("GET", "HEAD") and path in _STATIC:
            text = resources.files(__package__).joinpath("static" + path).read_bytes()
            return Response(200, [("Content-Type", _STATIC[path])], text)
        if not self._authorized(request):
            return text_response(HTTPStatus.FORBIDDEN, "403 Forbidden: the token is missing "
                                 "or wrong (open the URL that helios-render preview printed)")
        if request.method in ("GET", "HEAD"):
            if path == "/":
                html = resources.files(__package__).joinpath("static/index.html").read_bytes()
                return Response(200, [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Security-Policy",
                     f"default-src 'self'; frame-src {self.composition_origin}; "
                     "img-src 'self' data:; frame-ancestors 'none'"),
                ], html)
            if path == "/api/state":
                return _json(HTTPStatus.OK, self.state())
            if path == "/api/events":
                return Response(200, [("Content-Type", "text/event-stream")],
                                stream=self._events())
            if path == "/api/still.png" and self.last_still is not None:
                data = await trio.Path(self.last_still).read_bytes()
                return Response(200, [("Content-Type", "image/png")], data)
            return text_response(HTTPStatus.NOT_FOUND)
        if request.method != "POST":
            return text_response(HTTPStatus.METHOD_NOT_ALLOWED)
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _json(HTTPStatus.BAD_REQUEST, {"error": "the request body is not JSON"})
        if not isinstance(body, dict):
            return _json(HTTPStatus.BAD_REQUEST, {"error": "the request body is not an object"})
        if path == "/api/props":
            return self._set_props(body)
        if path == "/api/still":
            return await self._still(body)
        if path == "/api/render":
            return self._start_render()
        if path == "/api/cancel":
            return self._cancel_render()
        return text_response(HTTPStatus.NOT_FOUND)

    def state(self) -> dict[str, Any]:
        fps = self.options.exact_fps
        return {
            "composition": self.composition_url,
            "compositionOrigin": self.composition_origin,
            "width": self.page.width,
            "height": self.page.height,
            "fps": [fps.numerator, fps.denominator],
            "frames": self.frames,
            "props": self.props,
            "schema": self.schema,
            "version": self.version,
            "output": str(self.output()),
            "transparent": self.page.transparent,
            **self._render_state(),
        }

    def _set_props(self, body: dict[str, Any]) -> Response:
        if "props" not in body:
            return _json(HTTPStatus.BAD_REQUEST, {"error": "give the props as {\"props\": ...}"})
        try:
            self.props = check_props(self.schema, body["props"],
                                     strict=self.options.strict_props)
        except PropsError as exc:
            return _json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(exc)})
        return _json(HTTPStatus.OK, {"props": self.props})

    async def _still(self, body: dict[str, Any]) -> Response:
        frame = body.get("frame")
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < self.frames:
            return _json(HTTPStatus.BAD_REQUEST,
                         {"error": f"frame must be a whole number from 0 to {self.frames - 1}"})
        path = self.still_path(frame)
        options = replace(self.options, output=str(path), frames=1, duration=None,
                          image_format="png", props=self.props)
        try:
            written = await render_still(options, frame)
        except HeliosError as exc:
            return _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
        self.last_still = written
        return _json(HTTPStatus.OK, {"path": str(written)})

    def _start_render(self) -> Response:
        assert self._nursery is not None
        if self.render_job is not None and self.render_job.state == "running":
            return _json(HTTPStatus.CONFLICT, {"error": "a render is running: cancel it first"})
        job = RenderJob(trio.CancelScope())
        self.render_job = job
        self._nursery.start_soon(self._render, job, replace(self.options, props=self.props))
        return _json(HTTPStatus.ACCEPTED, {"output": str(self.output())})

    def _cancel_render(self) -> Response:
        job = self.render_job
        if job is None or job.state != "running":
            return _json(HTTPStatus.CONFLICT, {"error": "no render is running"})
        job.scope.cancel()
        return _json(HTTPStatus.ACCEPTED, {})

    async def _render(self, job: RenderJob, options: RenderOptions) -> None:
        def on_progress(progress: RenderProgress) -> None:
            job.progress, job.stage = progress.progress, progress.stage
            job.reused = progress.frames_reused
            self.broadcast({"type": "progress", "progress": progress.progress,
                            "stage": progress.stage, "framesDone": progress.frames_done,
                            "framesTotal": progress.frames_total})

        error: BaseException | None = None
        with job.scope:
            try:
                result = await render(options, on_progress=on_progress)
            except HeliosError as exc:
                error = exc
                job.state, job.message = "failed", str(exc)
            else:
                job.state, job.progress = "done", 1.0
                job.reused = result.frames_reused
                job.message = f"wrote {result.output}"
                if result.frames_reused:
                    job.message += (f" ({result.frames_reused} frames reused from the job "
                                    "folder of an earlier render)")
        if job.scope.cancelled_caught:
            job.state = "cancelled"
            kept = describe_kept(None, options.target_path)
            job.message = f"Render resumes: {kept}" if kept else "cancelled"
        elif error is not None:
            kept = describe_kept(error, options.target_path)
            if kept:
                job.message += f"; {kept}"
        self.broadcast({"type": "render", **(self._render_state()["render"] or {})})

    # ---- the watcher ------------------------------------------------------------------------

    def _ignored(self, path: str) -> bool:
        """Changes the preview makes itself: the output, its job folder, stills."""
        output = self.output()
        name = Path(path).name
        if Path(path) == output or name.startswith(f".{output.name}"):
            return True
        if name.startswith(f"{output.stem}.f") and name.endswith(".png"):
            return True
        return any(part.startswith(f".{output.name}.") for part in Path(path).parts)

    async def _watch(self) -> None:
        from watchfiles import awatch

        if self.root is None:  # a URL SOURCE: no folder of ours to watch
            return
        stop = trio.Event()  # read by the watcher's thread: its wait ends once set
        try:
            async for changes in awatch(self.root, stop_event=stop, debounce=WATCH_DEBOUNCE_MS,
                                        rust_timeout=WATCH_STEP_MS, step=50):
                changed = [path for _, path in changes if not self._ignored(path)]
                if not changed:
                    continue
                self.version += 1
                logger.info("preview: %s changed; reloading", changed[0])
                self.broadcast({"type": "reload", "version": self.version})
        finally:
            stop.set()


@dataclass(frozen=True, slots=True)
class _Prepared:
    options: RenderOptions
    page: PageConfig
    source: FolderSource | UrlSource
    schema: dict[str, Any] | None


async def _prepare(options: RenderOptions) -> _Prepared:
    """What ``helios-render still`` decides before it loads the page: the machine's facts,
    the props checked against the composition's schema (defaults filled in), the timing; and
    so the render settings, the page settings, the folder and the schema."""
    check_preview_source(str(options.source))
    probe_output = options.output_path.with_name(f".{options.output_path.stem}.preview.png")
    still_like = replace(options, output=str(probe_output), image_format="png")
    env = await probe_environment(still_like, video=False)
    if not isinstance(env.source, FolderSource | UrlSource):
        raise OptionsError(_NOT_PROXIED)
    ask = options.props is not None or options.strict_props
    schema = await props_schema(still_like, env, ask_page=ask)
    checked = await check_render_props(still_like, env)
    timed = await resolve_page_timing(checked, env)
    resolved = replace(options, fps=timed.exact_fps, frames=timed.frame_count, duration=None,
                       width=timed.width, height=timed.height, props=checked.props)
    page = plan_render(timed, env).jobs[0].page
    return _Prepared(resolved, page, env.source, schema)


@asynccontextmanager
async def open_preview(
    options: RenderOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = False,
    watch: bool = True,
) -> AsyncIterator[Preview]:
    """Serve a preview of ``options.source`` while the block runs.

    Args:
        options: The composition and its page settings (size, fps, length, props, seed):
            what Still and Render use; ``options.output`` is where Render writes.
        host: The address to listen on: loopback unless told otherwise (then a warning).
        port: The control page's port (0: any free one); the composition gets another.
        open_browser: Open the control page in the user's browser.
        watch: Reload the composition when a file in its folder changes.

    Yields:
        The running :class:`Preview`; ``preview.url`` is the address to open.

    Raises:
        UsageError: Bad options, a missing tool, an ``https://`` URL source.

    Cancellation:
        Both servers stop, the watcher stops, and a render started from the page is cancelled
        with every browser and encoder reaped (its job folder is kept for a resume).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError as exc:
        raise OptionsError(f"--host must be an IP address, got {host!r}") from exc
    if address.is_unspecified:
        raise OptionsError(
            f"--host {host}: give the address to listen on (such as this machine's LAN "
            "address), not a wildcard: requests are checked against it (DNS rebinding)"
        )
    if not address.is_loopback:
        logger.warning(
            "preview: listening on %s: anyone who can reach this address and has the URL "
            "(with its token) can use the preview", host)
    prepared = await _prepare(options)
    source = prepared.source
    site: CompositionSite | ProxySite
    if isinstance(source, UrlSource):
        # A site's pages are fetched through the composition origin (the runtime put in);
        # there is no folder to watch: the site's own live reload cannot pass the proxy.
        parts = urllib.parse.urlsplit(source.url)
        entry = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
        preview = Preview(prepared.options, prepared.page, None, entry, str(address))
        site = ProxySite(f"{parts.scheme}://{parts.netloc}", lambda: preview.control_origin,
                         preview.page_config)
        watch = False
    else:
        preview = Preview(prepared.options, prepared.page, Path(source.root), source.entry,
                          str(address))
        site = CompositionSite(Path(source.root), lambda: preview.control_origin,
                               preview.page_config)
    preview.schema = prepared.schema
    async with background_nursery() as nursery:
        preview._nursery = nursery
        preview.control_port = await nursery.start(
            serve_http, preview.handle_control, str(address), port, partial(_hosts, str(address))
        )
        preview.composition_port = await nursery.start(
            serve_http, site, str(address), 0, partial(_hosts, str(address))
        )
        if watch:
            nursery.start_soon(preview._watch)
        if open_browser:
            nursery.start_soon(partial(trio.to_thread.run_sync, webbrowser.open, preview.url,
                                       abandon_on_cancel=True))
        logger.info("preview of %s at %s", options.source, preview.url)
        yield preview


def preview_sync(
    options: RenderOptions,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    open_browser: bool = True,
    on_listening: Callable[[Preview], object] = lambda preview: print(f"preview: {preview.url}"),
) -> None:
    """Blocking :func:`open_preview` for scripts: serve until Ctrl+C (which raises
    ``KeyboardInterrupt`` once everything is stopped)."""

    async def serve() -> None:
        async with open_preview(options, host=host, port=port, open_browser=open_browser) as p:
            on_listening(p)
            await trio.sleep(math.inf)

    trio.run(serve)
