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

from .._exceptions import BrowserError, HeliosError, RenderError, UsageError, WorkerError
from .._model.job import BundleSource, ChunkJob, ChunkResult, FolderSource, assign_runs
from .._model.options import parse_cluster
from ._base import RunHooks, Supervision
from ._dask_cluster import (
    CLOSE_TIMEOUT,
    check_versions,
    connect,
    gather_facts,
    require_distributed,
)

if TYPE_CHECKING:  # distributed is an optional extra, imported where it is used
    import distributed

__all__ = ["STOP_GRACE", "DaskExecutor", "DaskStatistics"]

logger = logging.getLogger(__name__)

#: Seconds the remote tasks get to stop after the cancel signal, before they are abandoned.
STOP_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class DaskStatistics:
    """What the last :meth:`DaskExecutor.run` did.

    Attributes:
        workers: Worker addresses it used.
        placements: Chunk index to the worker address that rendered (or last ran) it.
        stop_seconds: Seconds from the cancel signal until every task had ended, if stopped.
        retries: Chunks submitted again after a crash or a lost worker.
    """

    workers: tuple[str, ...] = ()
    placements: dict[int, str] = field(default_factory=dict)
    stop_seconds: float | None = None
    retries: int = 0


class DaskExecutor:
    """Run chunk jobs as Dask tasks.

    Args:
        cluster: ``local:N`` (N worker processes on this machine, started and stopped by
            :meth:`run`) or a scheduler address ``tcp://HOST:PORT``.
        client: A ``distributed.Client`` to use instead (left open).
        allow_mixed_versions: Render even when workers have different Chromium or FFmpeg.
        chunk_task: For benchmarks: a module-level function to run instead of the chunk
            function, ``(job, bundle, render_id) -> ChunkResult``.

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
    ) -> None:
        require_distributed()
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

    @property
    def is_local(self) -> bool:
        """Whether the workers run on this machine (``local:N``)."""
        return self._local_workers is not None

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
            connect, self._spec, self._client, self._local_workers
        )
        try:
            return await _ClusterRun(self, connection.client, hooks).run(jobs)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.close)


class _ClusterRun:
    """One render on one client: submission, results, retries, stopping."""

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
        self._closed = False
        self._bundle: Any = None
        self._resources: dict[str, float] | None = None
        self._preferred: dict[int, str] = {}
        self._retries = 0
        self._stop_seconds: float | None = None
        self._fetched: dict[str, Any] = {}
        #: Hands a finished future to the run loop (set by run()).
        self._deliver: Callable[[Any], None] = lambda future: None

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
            raise UsageError(
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
            [self._bundle] = await trio.to_thread.run_sync(
                lambda: client.scatter([bundle], hash=False)
            )
            light = BundleSource(bundle.digest, bundle.entry)
            jobs = [replace(job, source=light) for job in jobs]
        for worker, run in zip(workers, assign_runs(jobs, len(workers)), strict=False):
            for job in run:
                self._preferred[job.index] = worker

        token = trio.lowlevel.current_trio_token()
        send, receive = trio.open_memory_channel[Any](math.inf)

        def arrived(future: Any) -> None:  # in trio, via run_sync_soon
            if not self._closed:
                send.send_nowait(future)

        def deliver(future: Any) -> None:  # in a Dask callback thread
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(arrived, future)

        def event(item: tuple[float, dict[str, Any]]) -> None:  # in the client's loop
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(self._on_event, item[1])

        self._deliver = deliver
        topic = progress_topic(self._render_id)
        cancel = distributed.Event(cancel_event_name(self._render_id), client=client)
        await trio.to_thread.run_sync(client.subscribe_topic, topic, event)
        supervision: Supervision | None = None
        try:
            with trio.CancelScope() as scope:
                supervision = Supervision(scope, self._hooks.retries, self._hooks.on_retry)
                for job in jobs:
                    self._submit(job)
                while self._pending:
                    batch = [await receive.receive()]
                    while True:
                        try:
                            batch.append(receive.receive_nowait())
                        except trio.WouldBlock:
                            break
                    await self._prefetch(batch)
                    for future in batch:
                        entry = self._pending.pop(str(future.key), None)
                        if entry is not None:
                            await self._settle(entry[0], future, supervision)
        finally:
            with trio.CancelScope(shield=True):
                await self._stop(cancel, receive)
                self._closed = True
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await trio.to_thread.run_sync(
                        self._cleanup, topic, cancel, abandon_on_cancel=True
                    )
                self._executor._stats = DaskStatistics(
                    workers=tuple(workers), placements=dict(self._placements),
                    stop_seconds=self._stop_seconds, retries=self._retries,
                )
        assert supervision is not None
        if supervision.first_failure is not None:
            failure = supervision.first_failure
            raise failure from failure.__cause__
        return len(workers)

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
        try:
            result = await self._outcome(job, future)
            self._done.add(job.index)
            await self._hooks.on_result(result)
            # 1.0 once the chunk is in the job folder, as a local worker reports it.
            self._hooks.report(job.index, 1.0)
        except WorkerError as error:
            if supervision.failed(job, error):
                self._retries += 1
                self._submit(job)
        except Exception as exc:
            machine = self._placements.get(job.index)
            supervision.failed(job, WorkerError.for_job(job, exc, worker=machine))

    def _submit(self, job: ChunkJob) -> None:
        from ._dask_worker import run_chunk_task

        attempt = self._attempt.get(job.index, -1) + 1
        self._attempt[job.index] = attempt
        preferred = self._preferred.get(job.index)
        future = self._client.submit(
            self._executor.chunk_task or run_chunk_task, job, self._bundle, self._render_id,
            key=f"helios-chunk-{self._render_id[:12]}-{job.index:05d}-{attempt}",
            resources=self._resources, pure=False, retries=0,
            # Consecutive chunks to one worker (it keeps its page); a retry goes anywhere.
            **({"workers": [preferred], "allow_other_workers": True}
               if preferred and attempt == 0 else {}),
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
            machine = self._placements.get(job.index)
            logger.debug("chunk %d: %s", job.index, exc)
            where = f" ({machine})" if machine else ""
            lost = BrowserError(f"the Dask worker process that held it{where} died")
            raise WorkerError.for_job(job, lost, worker=machine) from lost
        except (OSError, TimeoutError) as exc:
            lost = BrowserError(f"lost the connection to the Dask worker rendering it: {exc}")
            raise WorkerError.for_job(job, lost, worker=self._placements.get(job.index)) from lost
        except HeliosError as exc:
            raise WorkerError.for_job(job, exc, worker=self._placements.get(job.index)) from exc
        except Exception as exc:
            error = RenderError(f"{type(exc).__name__}: {exc}")
            raise WorkerError.for_job(job, error, worker=self._placements.get(job.index)) from error
        finally:
            future.release()
        if not isinstance(result, ChunkResult) or result.data is None:
            error = RenderError("the Dask task returned no chunk")
            raise WorkerError.for_job(job, error, worker=self._placements.get(job.index)) from error
        return result

    def _on_event(self, message: dict[str, Any]) -> None:
        """A progress event (in Trio's thread)."""
        if self._closed:
            return
        try:
            index, p, machine = int(message["chunk"]), float(message["p"]), str(message["machine"])
        except (KeyError, TypeError, ValueError):
            return
        if index in self._done:
            return
        try:  # called by Trio's run_sync_soon: must never raise
            if self._placements.get(index) != machine:
                self._placements[index] = machine
                self._hooks.on_placement(index, machine)
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
                self._pending.pop(str(future.key), None)
        self._stop_seconds = time.monotonic() - started
        if self._pending:
            logger.warning("%d chunk tasks did not stop within %.0f s; abandoning them",
                           len(self._pending), STOP_GRACE)

    def _cleanup(self, topic: str, cancel: Any) -> None:
        """Blocking: drop what this render left on the scheduler and the workers."""
        from ._dask_worker import release_worker

        client = self._client
        try:
            futures = [future for _, future in self._pending.values()]
            if futures:
                client.cancel(futures)
            self._pending.clear()
            client.unsubscribe_topic(topic)
            if self._bundle is not None:
                self._bundle.release()
            client.run(release_worker)
            cancel.clear()
        except Exception as exc:
            logger.debug("cleaning up after the cluster render: %r", exc)


def _make_bundle(source: FolderSource) -> BundleSource:
    from .._source.bundle import make_bundle

    return make_bundle(source)
