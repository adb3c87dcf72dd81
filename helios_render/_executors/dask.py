"""DaskExecutor: the chunk jobs of a render as Dask tasks, on a cluster of machines.

The same promises as every executor (see :mod:`helios_render._executors._base`), on a Dask
``distributed`` cluster: one task per chunk job (:func:`~._dask_worker.run_chunk_task`, the only
function a render sends), placed so that each worker takes a run of consecutive chunks and
keeps its browser between them, with ``resources={"chromium": 1}`` when the workers declare
it. Reaching the cluster (``local:N`` or ``tcp://HOST:PORT``), and checking its workers' tool
versions, is :mod:`helios_render._executors._dask_cluster`'s part.

* A local composition's folder travels as one tar (:mod:`helios_render._source.bundle`), scattered
  once and cached on each worker by digest; chunk files come back as bytes and land in the job
  folder through ``hooks.on_result``, so a cluster render resumes like a local one.
* Progress arrives as Dask events and is reported as ``(chunk, p)``, with the worker that
  renders each chunk (``hooks.on_placement``).
* The first failure, or the caller's cancellation, sets the render's cancel ``Event``: every
  task cancels its Trio scope (Chromium and FFmpeg reaped on the worker) and ``run`` returns or
  raises only once every task has ended. A worker process that dies (``KilledWorker``) is a
  crash-class failure: its chunks are retried elsewhere up to ``hooks.retries`` times.
* Workers whose Chromium or FFmpeg differs from the first worker's are refused (they would
  render other pixels) unless ``allow_mixed_versions``.

The core package does not import Dask: ``distributed`` is imported when an executor is made.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import (
    BrowserError,
    ClusterError,
    HeliosError,
    RenderError,
    UsageError,
    WorkerError,
)
from .._model.job import BundleSource, ChunkJob, ChunkResult, FolderSource
from .._model.options import parse_cluster
from ._base import RunHooks, Supervision
from ._dask_cluster import (
    CLOSE_TIMEOUT,
    ClusterTLS,
    check_versions,
    connect,
    gather_facts,
    require_distributed,
    require_tls_settings,
)
from ._dask_runs import RunBook

if TYPE_CHECKING:  # distributed is an optional extra, imported where it is used
    import distributed

    from .._model.options import RenderOptions

__all__ = ["STOP_GRACE", "DaskExecutor", "DaskStatistics"]

logger = logging.getLogger(__name__)

#: Seconds the remote tasks get to stop after the cancel signal, before they are abandoned.
STOP_GRACE = 10.0
#: Seconds between two looks at stalled and removed workers.
WATCH_INTERVAL = 1.0
#: The default stall timeout, in page timeouts (``--timeout``).
STALL_TIMEOUTS = 4


@dataclass(frozen=True, slots=True)
class DaskStatistics:
    """What the last :meth:`DaskExecutor.run` did.

    Attributes:
        workers: Worker addresses it used.
        placements: Chunk index to the worker address that rendered (or last ran) it.
        stop_seconds: Seconds from the cancel signal until every task had ended, if stopped.
        retries: Chunks submitted again after a crash or a lost worker.
        starts: ``(chunk, worker)`` in the order the chunk tasks started.
        replayed_frames: Frames the workers ran without capture to reach a chunk's first
            (an rAF page whose worker had to go back); 0 when every worker went in order.
        stalls: Workers taken out because they reported no progress for the stall timeout.
        dropped: Each worker taken out of the render, and why.
    """

    workers: tuple[str, ...] = ()
    placements: dict[int, str] = field(default_factory=dict)
    stop_seconds: float | None = None
    retries: int = 0
    starts: tuple[tuple[int, str], ...] = ()
    replayed_frames: int = 0
    stalls: int = 0
    dropped: dict[str, str] = field(default_factory=dict)


class DaskExecutor:
    """Run chunk jobs as Dask tasks.

    Args:
        cluster: ``local:N`` (N worker processes on this machine, started and stopped by
            :meth:`run`) or a scheduler address ``tcp://HOST:PORT``.
        client: A ``distributed.Client`` to use instead (left open).
        allow_mixed_versions: Render even when workers have different Chromium or FFmpeg.
        chunk_task: For benchmarks: a module-level function to run instead of the chunk
            function, ``(job, bundle, render_id) -> ChunkResult``.
        stall_timeout: Seconds a worker holding a chunk may go without reporting progress
            before it is taken out and its chunks go elsewhere (the chunk it was rendering
            counts as a crash); default :data:`STALL_TIMEOUTS` times the page ``--timeout``.
        tls: Certificates for a ``tls://`` scheduler; without them, Dask's own configuration
            (``distributed.comm.tls``) must have them.

    Raises:
        UsageError: ``distributed`` is not installed, or ``cluster`` is neither form.
    """

    def __init__(
        self,
        cluster: str | None = None,
        *,
        client: Any = None,
        allow_mixed_versions: bool = False,
        chunk_task: Callable[..., ChunkResult] | None = None,
        stall_timeout: float | None = None,
        tls: ClusterTLS | None = None,
    ) -> None:
        if cluster is not None:  # tls:// without certificates: say so at once
            require_tls_settings(cluster, tls)
        require_distributed()
        self._tls = tls
        if stall_timeout is not None and not stall_timeout > 0:
            raise UsageError(f"the stall timeout must be more than 0 seconds, got {stall_timeout}")
        self.stall_timeout = stall_timeout
        #: What each task runs: :func:`~._dask_worker.run_chunk_task` (a benchmark passes a
        #: fake with the same signature to measure scheduling alone).
        self.chunk_task = chunk_task
        if (cluster is None) == (client is None):
            raise ValueError("give either cluster or client")
        self._spec: str | None = None
        self._local_workers: int | None = None
        if cluster is not None:
            try:
                kind, value = parse_cluster(cluster)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
            if kind == "local":
                self._local_workers = int(value)
            else:
                self._spec = str(value)
        self._client = client
        self._allow_mixed = allow_mixed_versions
        self._stats = DaskStatistics()

    @classmethod
    def from_options(cls, cluster: str, options: RenderOptions) -> DaskExecutor:
        """The executor ``render`` makes for ``--cluster``, with the options' cluster settings
        (mixed versions, TLS certificates, stall timeout)."""
        tls = None
        if options.tls_ca_file is not None and options.tls_cert is not None:
            tls = ClusterTLS(
                str(options.tls_ca_file), str(options.tls_cert),
                None if options.tls_key is None else str(options.tls_key),
            )
        return cls(
            cluster, allow_mixed_versions=options.allow_mixed_versions,
            stall_timeout=options.stall_timeout, tls=tls,
        )

    @property
    def is_local(self) -> bool:
        """Whether the workers run on this machine (``local:N``)."""
        return self._local_workers is not None

    def stall_timeout_for(self, job: ChunkJob) -> float:
        """The stall timeout of a render of ``job`` s."""
        return self.stall_timeout or STALL_TIMEOUTS * job.page.timeout

    def statistics(self) -> DaskStatistics:
        """What the last :meth:`run` did."""
        return self._stats

    async def run(self, jobs: Sequence[ChunkJob], hooks: RunHooks) -> int:
        """Render ``jobs`` on the cluster; return how many workers it had. (Chunk files come
        back as bytes, so ``hooks.scratch`` is not used; replay progress is not sent back from
        the workers: ``hooks.on_replay`` is not called.)

        Raises:
            UsageError: The cluster cannot be reached, has no usable worker, or its workers
                have different tool versions.
            WorkerError: The first chunk to fail, once every other task has ended.

        Cancellation:
            The cancel signal stops every remote task (their Chromium and FFmpeg are reaped);
            a ``local:N`` cluster is shut down before this returns.
        """
        if not jobs:
            return 0
        # Not abandoned on cancel: a cluster half started must still be closed.
        connection = await trio.to_thread.run_sync(
            connect, self._spec, self._client, self._local_workers, self._tls
        )
        try:
            return await _ClusterRun(self, connection.client, hooks).run(jobs)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.close)


class _ClusterRun:
    """One render on one client: submission in runs, results, retries, the stall watchdog,
    stopping."""

    def __init__(
        self, executor: DaskExecutor, client: distributed.Client, hooks: RunHooks
    ) -> None:
        self._executor = executor
        self._client = client
        self._hooks = hooks
        self._render_id = uuid.uuid4().hex
        self._pending: dict[str, tuple[ChunkJob, Any]] = {}
        self._attempt: dict[int, int] = {}
        self._done: set[int] = set()
        self._placements: dict[int, str] = {}
        self._pinned: dict[int, str] = {}
        self._closed = False
        #: The composition's bundle, scattered to each worker on its own (so that no worker
        #: ever fetches it from another: workers need not reach each other).
        self._bundles: dict[str, Any] = {}
        self._resources: dict[str, float] | None = None
        self._retries = 0
        self._stop_seconds: float | None = None
        self._fetched: dict[str, Any] = {}
        self._book: RunBook | None = None
        #: Chunks whose task has started (since their last submission), and the order in
        #: which chunk tasks started on each worker.
        self._started: set[int] = set()
        self._starts: list[tuple[int, str]] = []
        #: Workers the scheduler removed, not yet taken out of the run book.
        self._removed: list[str] = []
        self._replayed = 0
        self._stalls = 0
        #: Hands a finished future to the run loop (set by run()).
        self._deliver: Callable[[Any], None] = lambda future: None
        self._wake: Callable[[], None] = lambda: None

    async def run(self, jobs: Sequence[ChunkJob]) -> int:
        import distributed

        from ._dask_worker import cancel_event_name, progress_topic

        client = self._client
        local = self._executor.is_local
        first = jobs[0]
        facts = await trio.to_thread.run_sync(
            gather_facts, client, first.browser if local else None,
            first.ffmpeg if local else None, first.begin_frame, first.page.font_families,
            abandon_on_cancel=True,
        )
        workers = check_versions(facts, self._executor._allow_mixed)
        lacking = [a for a in workers if first.begin_frame and not facts[a].get("begin_frame")]
        if lacking:
            raise ClusterError(
                "this render captures with HeadlessExperimental.beginFrame (this machine's "
                f"browser has it) but the Chromium of worker {', '.join(lacking)} has not: "
                "install the same chrome-headless-shell on every worker, or pass "
                "--capture screenshot"
            )
        if any("chromium" in facts[a].get("resources", {}) for a in workers):
            self._resources = {"chromium": 1}
        if not local:  # each machine finds its own Chromium and FFmpeg
            jobs = [replace(job, browser=None, ffmpeg=None) for job in jobs]
        if isinstance(first.source, FolderSource):
            bundle = await trio.to_thread.run_sync(_make_bundle, first.source)
            self._bundles = await trio.to_thread.run_sync(
                _scatter_to_each, client, bundle, workers, abandon_on_cancel=True
            )
            light = BundleSource(bundle.digest, bundle.entry)
            jobs = [replace(job, source=light) for job in jobs]
        self._book = RunBook(jobs, workers, time.monotonic())
        stall = self._executor.stall_timeout_for(first)

        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[Any](math.inf)

        def arrived(item: Any) -> None:  # in trio, via run_sync_soon
            if not self._closed:
                send.send_nowait(item)

        def deliver(future: Any) -> None:  # in a Dask callback thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(arrived, future)

        def event(item: tuple[float, dict[str, Any]]) -> None:  # in the client's loop
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._on_event, item[1])

        def cluster_event(item: tuple[float, dict[str, Any]]) -> None:  # in the client's loop
            message = item[1]
            if isinstance(message, dict) and message.get("action") == "remove-worker":
                with contextlib.suppress(trio.RunFinishedError):
                    token.run_sync_soon(self._on_removed, str(message.get("worker")))

        self._deliver = deliver
        self._wake = lambda: arrived(None)
        topic = progress_topic(self._render_id)
        cancel = distributed.Event(cancel_event_name(self._render_id), client=client)
        await trio.to_thread.run_sync(client.subscribe_topic, topic, event)
        theirs = getattr(client, "_event_handlers", {}).get("all")
        await trio.to_thread.run_sync(client.subscribe_topic, "all", cluster_event)
        supervision: Supervision | None = None
        try:
            with trio.CancelScope() as scope:
                supervision = Supervision(scope, self._hooks.retries, self._hooks.on_retry)
                self._fill()
                while self._pending or self._book.waiting:
                    batch: list[Any] = []
                    with trio.move_on_after(WATCH_INTERVAL):
                        batch.append(await receive.receive())
                    while True:
                        try:
                            batch.append(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                    futures = [item for item in batch if item is not None]
                    await self._prefetch(futures)
                    for future in futures:
                        entry = self._pending.pop(str(future.key), None)
                        if entry is not None:
                            await self._settle(entry[0], future, supervision)
                    await self._watch(supervision, stall)
                    self._fill()
        finally:
            with trio.CancelScope(shield=True):
                await self._stop(cancel, receive)
                self._closed = True
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await trio.to_thread.run_sync(
                        self._cleanup, topic, theirs, cancel, abandon_on_cancel=True
                    )
                self._executor._stats = DaskStatistics(
                    workers=tuple(workers), placements=dict(self._placements),
                    stop_seconds=self._stop_seconds, retries=self._retries,
                    starts=tuple(self._starts), replayed_frames=self._replayed,
                    stalls=self._stalls, dropped=dict(self._book.gone),
                )
        assert supervision is not None
        if supervision.first_failure is not None:
            failure = supervision.first_failure
            raise failure from failure.__cause__
        return len(workers)

    def _fill(self) -> None:
        """Submit what the run book gives each worker now."""
        assert self._book is not None
        for worker, job in self._book.take(time.monotonic()):
            self._submit(job, worker)

    async def _watch(self, supervision: Supervision, stall: float) -> None:
        """Take out the workers the scheduler removed and those that stalled; fail when no
        worker is left for the chunks still to render."""
        book = self._book
        assert book is not None
        removed, self._removed = self._removed, []
        for worker in removed:
            await self._drop(worker, "left the cluster", supervision)
        for worker in book.stalled(time.monotonic(), stall):
            self._stalls += 1
            reason = (
                f"did not report progress for {stall:g} s (--stall-timeout): the machine "
                "stopped answering, or the worker cannot reach what its chunk needs (see "
                "'Deployment' in docs/cluster.md)"
            )
            await self._drop(worker, reason, supervision)
        if not book.live and book.waiting and not supervision.stopping:
            job = book.first_waiting()
            why = "; ".join(f"{w} {reason}" for w, reason in book.gone.items())
            error = RenderError(f"no Dask worker is left to render it: {why}")
            supervision.failed(job, WorkerError.for_job(job, error))

    async def _drop(self, worker: str, reason: str, supervision: Supervision) -> None:
        """Take ``worker`` out of the render: cancel its chunk tasks, give its chunks to the
        others; the chunk it was rendering counts as a crash (retried, up to --retries)."""
        assert self._book is not None
        dropped = self._book.drop(worker, reason)
        if dropped is None:
            return
        logger.warning("Dask worker %s %s; its chunks go to the other workers", worker, reason)
        futures = []
        for index in dropped.held:
            key = next((k for k, (job, _) in self._pending.items() if job.index == index), None)
            if key is None:
                continue
            job, future = self._pending.pop(key)
            futures.append(future)
            if index in self._started or index == dropped.held[0]:
                lost = BrowserError(f"the Dask worker rendering it ({worker}) {reason}")
                error = WorkerError.for_job(job, lost, worker=worker)
                if supervision.failed(job, error):
                    self._retries += 1
        if futures:
            with trio.move_on_after(CLOSE_TIMEOUT):
                await trio.to_thread.run_sync(
                    lambda: self._client.cancel(futures, reason=f"worker {reason}"),
                    abandon_on_cancel=True,
                )

    def _on_removed(self, worker: str) -> None:
        """The scheduler removed a worker (in Trio's thread)."""
        if not self._closed and self._book is not None and worker in self._book.live:
            self._removed.append(worker)
            self._wake()

    async def _prefetch(self, batch: list[Any]) -> None:
        """Fetch the results of the finished futures of ``batch`` in one round trip."""
        finished = [f for f in batch if f.status == "finished" and str(f.key) in self._pending]
        if len(finished) < 2:
            return
        try:
            results = await trio.to_thread.run_sync(
                self._client.gather, finished, abandon_on_cancel=True
            )
        except Exception as exc:  # each is fetched (and its failure judged) on its own
            logger.debug("fetching %d results at once: %r", len(finished), exc)
            return
        for future, result in zip(finished, results, strict=True):
            self._fetched[str(future.key)] = result

    async def _settle(self, job: ChunkJob, future: Any, supervision: Supervision) -> None:
        """Record a finished chunk, or decide about its failure (retry or stop)."""
        assert self._book is not None
        self._book.settled(job.index, time.monotonic())
        self._started.discard(job.index)
        try:
            result = await self._outcome(job, future)
            self._done.add(job.index)
            await self._hooks.on_result(result)
            # 1.0 once the chunk is in the job folder, as a local worker reports it.
            self._hooks.report(job.index, 1.0)
        except WorkerError as error:
            if supervision.failed(job, error):
                self._retries += 1
                self._book.retry(job.index)
        except Exception as exc:
            machine = self._machine(job.index)
            supervision.failed(job, WorkerError.for_job(job, exc, worker=machine))

    def _machine(self, index: int) -> str | None:
        """The worker that rendered (or was given) chunk ``index``."""
        return self._placements.get(index) or self._pinned.get(index)

    def _submit(self, job: ChunkJob, worker: str) -> None:
        from ._dask_worker import run_chunk_task

        self._pinned[job.index] = worker
        attempt = self._attempt.get(job.index, -1) + 1
        self._attempt[job.index] = attempt
        future = self._client.submit(
            self._executor.chunk_task or run_chunk_task, job, self._bundles.get(worker),
            self._render_id,
            key=f"helios-chunk-{self._render_id[:12]}-{job.index:05d}-{attempt}",
            resources=self._resources, pure=False, retries=0,
            # Pinned: the run book decides the order, never Dask (see _dask_runs).
            workers=[worker], allow_other_workers=False, priority=-job.index,
        )
        self._pending[str(future.key)] = (job, future)
        future.add_done_callback(self._deliver)

    async def _outcome(self, job: ChunkJob, future: Any) -> ChunkResult:
        """The chunk's result, or its failure as a :class:`WorkerError`."""
        from distributed.scheduler import KilledWorker

        try:
            if str(future.key) in self._fetched:
                result = self._fetched.pop(str(future.key))
            else:
                result = await trio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except WorkerError:
            raise
        except KilledWorker as exc:
            machine = self._machine(job.index)
            logger.debug("chunk %d: %s", job.index, exc)
            where = f" ({machine})" if machine else ""
            lost = BrowserError(f"the Dask worker process that held it{where} died")
            raise WorkerError.for_job(job, lost, worker=machine) from lost
        except (OSError, TimeoutError) as exc:
            lost = BrowserError(f"lost the connection to the Dask worker rendering it: {exc}")
            raise WorkerError.for_job(job, lost, worker=self._machine(job.index)) from lost
        except HeliosError as exc:
            raise WorkerError.for_job(job, exc, worker=self._machine(job.index)) from exc
        except Exception as exc:
            error = RenderError(f"{type(exc).__name__}: {exc}")
            raise WorkerError.for_job(job, error, worker=self._machine(job.index)) from error
        finally:
            future.release()
        from ._dask_worker import ChunkStopped, StoppedChunk

        if isinstance(result, StoppedChunk):
            stopped = ChunkStopped(result.reason)
            raise WorkerError.for_job(job, stopped, worker=result.machine) from stopped
        if not isinstance(result, ChunkResult) or result.data is None:
            error = RenderError("the Dask task returned no chunk")
            raise WorkerError.for_job(job, error, worker=self._machine(job.index)) from error
        return result

    def _on_event(self, message: dict[str, Any]) -> None:
        """A progress event (in Trio's thread)."""
        if self._closed:
            return
        try:
            index, p, machine = int(message["chunk"]), float(message["p"]), str(message["machine"])
        except (KeyError, TypeError, ValueError):
            return
        if self._book is not None:
            self._book.heard(machine, time.monotonic())
            if self._book.worker_of(index) not in (None, machine):
                return  # a worker taken out still talks of a chunk that went elsewhere
        if index in self._done or message.get("beat"):
            return
        try:  # called by Trio's run_sync_soon: must never raise
            if message.get("start"):
                self._started.add(index)
                self._starts.append((index, machine))
            if self._placements.get(index) != machine:
                self._placements[index] = machine
                self._hooks.on_placement(index, machine)
            if message.get("replay"):
                self._hooks.on_replay(index, p)
            else:
                self._hooks.report(index, p)
        except Exception as exc:  # the progress consumer is gone (the render is stopping)
            logger.debug("progress of chunk %d dropped: %r", index, exc)

    async def _stop(self, cancel: Any, receive: trio.MemoryReceiveChannel[Any]) -> None:
        """Set the cancel signal and wait for every task still out to end."""
        if not self._pending:
            return
        started = time.monotonic()
        with trio.move_on_after(STOP_GRACE):
            await trio.to_thread.run_sync(cancel.set, abandon_on_cancel=True)
            while self._pending:
                future = await receive.receive()
                if future is not None:
                    self._pending.pop(str(future.key), None)
        self._stop_seconds = time.monotonic() - started
        if self._pending:
            logger.warning("%d chunk tasks did not stop within %.0f s; abandoning them",
                           len(self._pending), STOP_GRACE)

    def _cleanup(self, topic: str, theirs: Any, cancel: Any) -> None:
        """Blocking: drop what this render left on the scheduler and the workers."""
        from ._dask_worker import release_worker

        client = self._client
        try:
            futures = [future for _, future in self._pending.values()]
            if futures:
                client.cancel(futures)
            self._pending.clear()
            client.unsubscribe_topic(topic)
            _unsubscribe(client, "all", theirs)
            for bundle in self._bundles.values():
                bundle.release()
            # Not the workers taken out: one that stopped answering would hold this up.
            live = self._book.live if self._book is not None else None
            released = client.run(release_worker, self._render_id, workers=live) if live else {}
            self._replayed = sum(
                int(item.get("replayed", 0)) if isinstance(item, dict) else 0
                for item in released.values()
            )
            cancel.clear()
        except Exception as exc:
            logger.debug("cleaning up after the cluster render: %r", exc)


def _unsubscribe(client: Any, topic: str, theirs: Any) -> None:
    """Stop hearing ``topic``; a handler the caller's own client had for it is put back."""
    with contextlib.suppress(Exception):
        if theirs is not None:
            client.subscribe_topic(topic, theirs)
        else:
            client.unsubscribe_topic(topic)


def _scatter_to_each(client: Any, bundle: BundleSource, workers: Sequence[str]) -> dict[str, Any]:
    """Blocking: the bundle sent to each worker on its own (from the client, through the
    scheduler), one future per worker: a worker never needs to reach another for it."""
    scattered: dict[str, Any] = {}
    for worker in workers:
        [scattered[worker]] = client.scatter([bundle], workers=[worker], hash=False)
    return scattered


def _make_bundle(source: FolderSource) -> BundleSource:
    from .._source.bundle import make_bundle

    return make_bundle(source)
