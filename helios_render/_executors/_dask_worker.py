"""What runs inside a Dask worker process (imported there, and by the client when it submits).

* :func:`run_chunk_task` is the only function a render submits: one task per chunk job. It
  hands the job to this process's :class:`WorkerHost`, polls the render's cancel signal (a Dask
  ``Event``) while the chunk renders, and returns the
  :class:`~helios_render._model.job.ChunkResult` with the chunk's bytes.
* :class:`WorkerHost` is one Trio loop in a thread of its own, for the life of the worker
  process. It keeps the :class:`~helios_render._executors.worker.ChunkWorker` of the last chunk (its
  browser and page) for the next task of the same session, so a worker that gets consecutive
  chunks never relaunches Chromium nor replays frames; Chromium and FFmpeg are forked from that
  thread, so their parent-death signal fires only when the process dies. Idle browsers are
  closed after :data:`IDLE_SECONDS` or when the client releases them at the end of a render.
* Progress goes to the client as Dask events on the render's topic, at most every
  :data:`REPORT_INTERVAL` seconds per chunk; the client reports completion itself.

Cancellation is cooperative (``Client.cancel`` cannot stop a running task): a task that sees
the signal cancels its Trio scope, so its FFmpeg and (closed) Chromium are reaped within about
a second, and raises :class:`ChunkStopped`; a task that starts after it does not render.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import os
import pickle
import platform
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import distributed
import trio

from .._chromium.browser import browser_version, find_browser, probe_begin_frame
from .._chromium.fonts import font_files
from .._exceptions import HeliosError, RenderError, WorkerError
from .._ffmpeg.ffmpeg import ffmpeg_version, find_ffmpeg
from .._model.job import BundleSource, ChunkJob, ChunkResult, Report
from .._source.bundle import release_bundles
from .._tempdirs import make_private_dir, sweep_stale_dirs
from .worker import ChunkWorker, WorkerInstrument, open_chunk_worker

__all__ = [
    "ChunkStopped",
    "LocalWorkerSetup",
    "StoppedChunk",
    "WorkerHost",
    "cancel_event_name",
    "progress_topic",
    "release_worker",
    "run_chunk_task",
    "worker_facts",
]

logger = logging.getLogger(__name__)

#: Seconds between two checks of the cancel signal by a running chunk task.
CANCEL_POLL = 0.1
#: Least seconds between two progress events of one chunk.
REPORT_INTERVAL = 0.2
#: Seconds between two heartbeats of a running chunk task (its worker still answers, even
#: while Chromium launches or a page loads: for the client's stall watchdog).
HEARTBEAT = 1.0
#: An idle browser is closed after this many seconds without a chunk.
IDLE_SECONDS = 30.0
#: Seconds a browser gets to close when its chunk failed or was cancelled.
CLOSE_GRACE = 10.0


class ChunkStopped(RenderError):
    """A chunk task stopped because its render was cancelled (never shown to a user)."""


@dataclass(frozen=True, slots=True)
class StoppedChunk:
    """What a chunk task returns when its render was cancelled: a cancelled chunk is not an
    error, so it is not raised (Dask would log "Compute Failed" with a traceback)."""

    index: int
    reason: str
    machine: str | None = None


def cancel_event_name(render_id: str) -> str:
    """The Dask ``Event`` that stops every chunk of a render."""
    return f"helios-cancel-{render_id}"


def progress_topic(render_id: str) -> str:
    """The Dask event topic a render's chunks report progress on."""
    return f"helios-progress-{render_id}"


@dataclass(eq=False, slots=True)
class _Request:
    job: ChunkJob
    report: Report
    future: concurrent.futures.Future[ChunkResult]
    slot: _Slot | None = None
    render_id: str = ""
    replay: Report | None = None


#: Frames each render's chunks ran without capture on this process (an rAF page going back),
#: by render id: told to the client by :func:`release_worker`.
_replayed: collections.Counter[str] = collections.Counter()


class _SlotInstrument(WorkerInstrument):
    """Counts the frames a slot's worker replays, for the render of its current chunk."""

    __slots__ = ("slot",)

    def __init__(self, slot: _Slot) -> None:
        self.slot = slot

    def frame_replayed(self, seconds: float) -> None:
        current = self.slot.current
        _replayed[current.render_id if current else ""] += 1


@dataclass(eq=False, slots=True)
class _Slot:
    """One ChunkWorker, owned by one task of the host: its browser's nurseries live in that
    task, under ``scope``, which a cancelled chunk cancels (closing the browser too)."""

    send: trio.MemorySendChannel[_Request | None]
    receive: trio.MemoryReceiveChannel[_Request | None]
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    worker: ChunkWorker | None = None
    current: _Request | None = None
    closed: trio.Event = field(default_factory=trio.Event)


class WorkerHost:
    """A Trio loop in a thread for the life of the process; renders chunk jobs on cached
    :class:`ChunkWorker` s, each owned by a task of its own. Use :func:`worker_host`."""

    def __init__(self) -> None:
        # Folders of a worker process killed on this machine (their owner is gone).
        sweep_stale_dirs()
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._idle: list[_Slot] = []
        self._thread = threading.Thread(
            target=trio.run, args=(self._main,), name="helios-render-trio", daemon=True
        )
        self._thread.start()
        self._ready.wait()

    async def _main(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            self._ready.set()
            await trio.sleep_forever()

    async def _close_idle(self) -> int:
        slots, self._idle = self._idle, []
        for slot in slots:
            slot.send.send_nowait(None)
        with trio.move_on_after(CLOSE_GRACE):
            for slot in slots:
                await slot.closed.wait()
        return len(slots)

    def release(self) -> int:
        """Close every idle browser (from any thread but this host's); return how many."""
        assert self._token is not None
        return trio.from_thread.run(self._close_idle, trio_token=self._token)

    def start(
        self, job: ChunkJob, report: Report, render_id: str = "", replay: Report | None = None
    ) -> _Request:
        """Start rendering ``job`` (from any thread but this host's); its ``future`` tells
        the outcome. ``replay(i, p)`` hears how far an rAF page's replay is."""
        assert self._token is not None
        request = _Request(job, report, concurrent.futures.Future(), render_id=render_id,
                           replay=replay)
        trio.from_thread.run_sync(self._dispatch, request, trio_token=self._token)
        return request

    def cancel(self, request: _Request) -> None:
        """Cancel a chunk started with :meth:`start`: its FFmpeg is stopped and its browser
        closed before its future is told."""
        assert self._token is not None
        trio.from_thread.run_sync(self._cancel, request, trio_token=self._token)

    def _cancel(self, request: _Request) -> None:
        if request.slot is not None and request.slot.current is request:
            request.slot.scope.cancel()

    def _dispatch(self, request: _Request) -> None:
        assert self._nursery is not None
        chosen = next(
            (s for s in self._idle if s.worker and s.worker.holds_session_for(request.job)),
            None,
        ) or (self._idle[-1] if self._idle else None)
        if chosen is None:
            send, receive = trio.open_memory_channel[_Request | None](1)
            chosen = _Slot(send, receive)
            self._nursery.start_soon(self._run_slot, chosen)
        else:
            self._idle.remove(chosen)
        request.slot = chosen
        chosen.current = request
        chosen.send.send_nowait(request)

    async def _run_slot(self, slot: _Slot) -> None:
        failure: Exception | None = None
        try:
            with slot.scope:
                async with open_chunk_worker(_SlotInstrument(slot)) as worker:
                    slot.worker = worker
                    while True:
                        with trio.move_on_after(IDLE_SECONDS) as idle:
                            request = await slot.receive.receive()
                        if idle.cancelled_caught or request is None:
                            return
                        outcome = await self._render(worker, request)
                        if isinstance(outcome, Exception):
                            failure = outcome
                            return  # the browser is closed before the task hears of it
                        slot.current = None
                        request.future.set_result(outcome)
                        self._idle.append(slot)
        finally:
            if slot in self._idle:
                self._idle.remove(slot)
            slot.closed.set()
            current, slot.current = slot.current, None
            if current is not None and not current.future.done():
                job = current.job
                current.future.set_exception(
                    failure or ChunkStopped(f"chunk {job.index} stopped: render cancelled")
                )

    async def _render(self, worker: ChunkWorker, request: _Request) -> ChunkResult | Exception:
        job = request.job
        scratch: Path | None = None
        worker.on_replay = request.replay
        try:
            # Inside the try: a failure here is this chunk's, never the worker thread's.
            scratch = make_private_dir("dask-chunk")
            rendered = await worker.render(job, request.report, scratch)
            assert rendered.path is not None
            data = await trio.Path(rendered.path).read_bytes()
            return replace(rendered, path=None, data=data)
        except Exception as exc:
            return exc
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)


_host: WorkerHost | None = None
_host_lock = threading.Lock()
#: Renders this process has seen cancelled: their queued tasks stop without asking again.
_stopped: set[str] = set()


def worker_host() -> WorkerHost:
    """This process's :class:`WorkerHost`, started on first use."""
    global _host
    with _host_lock:
        if _host is None:
            _host = WorkerHost()
        return _host


class _Reporter:
    """``report(i, p)`` as Dask events, at most every :data:`REPORT_INTERVAL` seconds."""

    def __init__(self, worker: distributed.Worker, topic: str) -> None:
        self._worker = worker
        self._topic = topic
        self._last = 0.0

    def __call__(self, index: int, p: float) -> None:
        now = time.monotonic()
        if p >= 1.0 or now - self._last < REPORT_INTERVAL:
            return  # the client marks a chunk done when its result arrives
        self._last = now
        self.send(index, p)

    def replay(self, index: int, p: float) -> None:
        """How far the frames before chunk ``index`` have been run (an rAF page): progress
        too, for the client's stall watchdog."""
        now = time.monotonic()
        if p < 1.0 and now - self._last < REPORT_INTERVAL:
            return
        self._last = now
        self.send(index, p, replay=True)

    def send(self, index: int, p: float, **flags: bool) -> None:
        with contextlib.suppress(Exception):  # progress must never fail a chunk
            message = {"chunk": index, "p": p, "machine": self._worker.address, **flags}
            self._worker.log_event(self._topic, message)


def _task_cancelled(worker: distributed.Worker) -> bool:
    """Whether the scheduler cancelled the task running in this thread (the client took its
    worker out of the render, or released it)."""
    from dask.context import thread_state

    key = getattr(thread_state, "key", None)
    if key is None:
        return False
    with contextlib.suppress(Exception):
        task = worker.state.tasks.get(key)
        return task is None or task.state in ("cancelled", "released", "forgotten")
    return False


def run_chunk_task(
    job: ChunkJob, bundle: BundleSource | None, render_id: str
) -> ChunkResult | StoppedChunk:
    """The Dask task of one chunk: render ``job`` on this worker and return its bytes, or a
    :class:`StoppedChunk` when the render was cancelled (or the client cancelled this task).

    Raises:
        WorkerError: The chunk failed (as with a local worker).
    """
    worker = distributed.get_worker()
    if bundle is not None:
        job = replace(job, source=bundle)
    cancel = distributed.Event(cancel_event_name(render_id))
    if render_id in _stopped or cancel.is_set():
        _stopped.add(render_id)
        return _stopped_chunk(job, "not started: render cancelled", worker)
    reporter = _Reporter(worker, progress_topic(render_id))
    reporter.send(job.index, 0.0, start=True)
    host = worker_host()
    request = host.start(job, reporter, render_id, reporter.replay)
    portable: HeliosError | None = None
    reason = "stopped"
    beat = time.monotonic()
    try:
        while True:
            try:
                return request.future.result(timeout=CANCEL_POLL)
            except concurrent.futures.TimeoutError:
                pass
            if time.monotonic() - beat >= HEARTBEAT:
                beat = time.monotonic()
                reporter.send(job.index, 0.0, beat=True)
            if render_id in _stopped or cancel.is_set() or _task_cancelled(worker):
                if render_id not in _stopped and not cancel.is_set():
                    reason = "stopped: the client took it back"
                else:
                    _stopped.add(render_id)
                    reason = "stopped: render cancelled"
                host.cancel(request)
                return request.future.result()
    except ChunkStopped:
        return _stopped_chunk(job, reason, worker)
    except HeliosError as exc:
        # Dask pickles the exception with its __context__ chain, which may hold Trio's
        # (unpicklable) Cancelled; our own pickling keeps message, attributes and cause.
        named: HeliosError = exc
        if isinstance(exc, WorkerError):  # a chunk's error names the worker that ran it
            named = WorkerError.for_job(job, exc, worker=worker.address)
        portable = pickle.loads(pickle.dumps(named))
    raise portable


def _stopped_chunk(job: ChunkJob, reason: str, worker: distributed.Worker) -> StoppedChunk:
    logger.info("chunk %d %s", job.index, reason)
    return StoppedChunk(job.index, f"chunk {job.index} {reason}", worker.address)


def release_worker(render_id: str | None = None) -> dict[str, int]:
    """Close this process's idle browsers and remove its unpacked bundles (run by the client
    at the end of a render); return how many browsers it closed and how many frames the
    render's chunks replayed here."""
    closed = _host.release() if _host is not None else 0
    release_bundles()
    replayed = _replayed.pop(render_id, 0) if render_id is not None else 0
    return {"closed": closed, "replayed": replayed}


def worker_facts(
    browser: str | None,
    ffmpeg: str | None,
    begin_frame: bool = False,
    fonts: tuple[str, ...] = (),
) -> dict[str, Any]:
    """What a client checks before it renders on this worker: helios-render's, Chromium's and
    FFmpeg's versions (and with ``begin_frame``, whether the browser has beginFrame; with
    ``fonts``, the file each of those font families is drawn from)."""
    from .._version import __version__

    facts: dict[str, Any] = {
        "helios_render": __version__,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "chromium": None,
        "ffmpeg": None,
    }
    try:
        worker = distributed.get_worker()
        facts["resources"] = dict(worker.state.total_resources)
    except ValueError:
        facts["resources"] = {}
    try:
        executable = find_browser(browser)
        facts["chromium"] = browser_version(executable)
        facts["chromium_path"] = os.fspath(executable)
        if begin_frame:
            facts["begin_frame"] = trio.run(probe_begin_frame, executable, facts["chromium"])
    except HeliosError as exc:
        facts["chromium_error"] = str(exc)
    if fonts:
        facts["fonts"] = font_files(fonts)
    try:
        found = find_ffmpeg(ffmpeg)
        facts["ffmpeg"] = ffmpeg_version(found)
        facts["ffmpeg_path"] = os.fspath(found)
    except HeliosError as exc:
        facts["ffmpeg_error"] = str(exc)
    return facts


class LocalWorkerSetup(distributed.WorkerPlugin):
    """For ``--cluster local:N``: worker processes leave the terminal's process group, so that
    Ctrl+C reaches the command (which stops them cleanly), not each worker on its own. (Dask
    makes a worker process exit when its parent dies, even by SIGKILL: it watches a pipe.)"""

    name = "helios-render-local-worker"

    def setup(self, worker: distributed.Worker) -> None:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
