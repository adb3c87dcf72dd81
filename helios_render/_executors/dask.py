"""DaskExecutor: the chunk jobs of a render as Dask tasks, on a cluster of machines.

The same promises as every executor (see :mod:`helios_render._executors._base`), on a Dask
``distributed`` cluster: one task per chunk job (:func:`~._dask_worker.run_chunk_task`, the only
function a render sends), placed so that each worker takes a run of consecutive chunks and
keeps its browser between them, with ``resources={"chromium": 1}`` when the workers declare
it. ``local:N`` starts a ``LocalCluster`` of N worker processes (one thread each) as children
of this process, with Dask's scratch space in a private folder that is removed and Dask's log
lines silenced unless logging is at INFO (``-v``); ``tcp://HOST:PORT`` connects to a running
scheduler.

* A local composition's folder travels as one tar (:mod:`helios_render._source.bundle`), scattered
  once and cached on each worker by digest; chunk files come back as bytes and land in the job
  folder through ``on_result``, so a cluster render resumes like a local one.
* Progress arrives as Dask events and is reported as ``(chunk, p)``, with the worker that
  renders each chunk (``on_placement``).
* The first failure, or the caller's cancellation, sets the render's cancel ``Event``: every
  task cancels its Trio scope (Chromium and FFmpeg reaped on the worker) and ``run`` returns or
  raises only once every task has ended. A worker process that dies (``KilledWorker``) is a
  crash-class failure: its chunks are retried elsewhere up to ``retries`` times.
* Workers whose Chromium or FFmpeg differs from the first worker's are refused (they would
  render other pixels) unless ``allow_mixed_versions``.

The core package does not import Dask: ``distributed`` is imported when an executor is made.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from .._exceptions import BrowserError, HeliosError, RenderError, UsageError, WorkerError
from .._model.job import BundleSource, ChunkJob, ChunkResult, FolderSource, Report, assign_runs
from .._model.options import parse_cluster
from .._tempdirs import make_private_dir
from ._base import Placement, ResultSink, Supervision

if TYPE_CHECKING:  # distributed is an optional extra, imported where it is used
    import distributed

__all__ = [
    "DaskExecutor",
    "DaskStatistics",
    "check_versions",
    "cluster_facts",
    "local_cluster",
    "require_distributed",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "helios-render[dask]"'
#: Seconds to reach a scheduler and find a worker there.
CONNECT_TIMEOUT = 30.0
#: Seconds a ``local:N`` cluster gets for its worker processes to start.
LOCAL_START_TIMEOUT = 120.0
#: Seconds the remote tasks get to stop after the cancel signal, before they are abandoned.
STOP_GRACE = 10.0
#: Seconds a cluster gets to close.
CLOSE_TIMEOUT = 20.0


def require_distributed() -> None:
    """Raise a clear :class:`UsageError` when Dask's ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"rendering on a cluster needs Dask: {INSTALL_HINT}") from exc


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


class _Connection:
    """A client, and the local cluster (with its scratch folder) when we started one."""

    def __init__(self, client: distributed.Client, cluster: Any = None,
                 folder: Path | None = None, own_client: bool = True,
                 quiet_levels: dict[str, int] | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self.folder = folder
        self.own_client = own_client
        self.quiet_levels = quiet_levels or {}

    def close(self) -> None:
        try:
            if self.own_client:
                self.client.close(timeout=CLOSE_TIMEOUT)
            if self.cluster is not None:
                self.cluster.close(timeout=CLOSE_TIMEOUT)
        except Exception as exc:  # closing must not hide the render's own outcome
            logger.debug("closing the Dask cluster: %r", exc)
        finally:
            if self.folder is not None:
                shutil.rmtree(self.folder, ignore_errors=True)
            for name, level in self.quiet_levels.items():
                logging.getLogger(name).setLevel(level)


def _dask_log_level() -> int:
    """Dask's own log lines reach the terminal only when helios_render logs at INFO (-v)."""
    ours = logging.getLogger("helios_render")
    if ours.isEnabledFor(logging.DEBUG):
        return logging.INFO
    return logging.WARNING if ours.isEnabledFor(logging.INFO) else logging.CRITICAL


#: Loggers of Dask (and its event loop) silenced in this process unless -v.
_DASK_LOGGERS = ("distributed", "tornado", "asyncio", "bokeh")


def _quiet_dask(level: int) -> dict[str, int]:
    """Raise Dask's loggers in this process to ``level``; return their levels before."""
    before = {name: logging.getLogger(name).level for name in _DASK_LOGGERS}
    for name in _DASK_LOGGERS:
        logging.getLogger(name).setLevel(max(level, before[name]))
    return before


def _connect(spec: str | None, client: Any, local_workers: int | None) -> _Connection:
    """Blocking: reach the cluster (start it for ``local:N``) and wait for a worker."""
    import distributed

    level = _dask_log_level()
    quiet = _quiet_dask(level)
    if client is not None:
        return _Connection(client, own_client=False, quiet_levels=quiet)
    if local_workers is not None:
        return _start_local(local_workers, level, quiet)
    assert spec is not None
    try:
        own = distributed.Client(spec, set_as_default=False, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UsageError(
            f"cannot reach the Dask scheduler at {spec} ({exc}): start one with "
            "'dask scheduler' and give its address (see docs/cluster.md)"
        ) from exc
    connection = _Connection(own, quiet_levels=quiet)
    try:
        own.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        connection.close()
        raise UsageError(
            f"the Dask scheduler at {spec} has no workers: start some with 'dask worker "
            f"{spec} --nthreads 1 --resources chromium=1'"
        ) from exc
    return connection


def _start_local(workers: int, level: int, quiet: dict[str, int]) -> _Connection:
    """Blocking: a LocalCluster of ``workers`` processes (one thread, ``chromium=1`` each)."""
    import dask
    import distributed

    folder = make_private_dir("dask")
    try:
        settings = {
            # A dead worker's chunk fails at once with KilledWorker; the executor decides
            # about retries (and counts them), as for a crashed browser.
            "distributed.scheduler.allowed-failures": 0,
            "temporary-directory": str(folder),
            "distributed.admin.system-monitor.gil.enabled": False,
        }
        with dask.config.set(settings), warnings.catch_warnings():
            if level > logging.INFO:
                warnings.simplefilter("ignore")  # Dask's own chatter ("port in use")
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                resources={"chromium": 1},
                host="127.0.0.1",
                scheduler_port=0,
                # Without a dashboard, the scheduler's HTTP server still wants port 8787
                # (and warns when it is taken): any free loopback port.
                dashboard_address=":0",
                local_directory=str(folder),
                silence_logs=level,
            )
            try:
                own = distributed.Client(cluster, set_as_default=False)
                own.register_plugin(_local_setup())
            except BaseException:
                cluster.close()
                raise
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _Connection(own, cluster, folder, quiet_levels=quiet)


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[distributed.Client]:
    """A client of a ``local:N`` cluster, as :class:`DaskExecutor` starts one (for tests and
    benchmarks that share one cluster between renders); closed when the block exits."""
    require_distributed()
    level = _dask_log_level()
    connection = _start_local(workers, level, _quiet_dask(level))
    try:
        yield connection.client
    finally:
        connection.close()


def _local_setup() -> Any:
    from ._dask_worker import LocalWorkerSetup

    return LocalWorkerSetup()


def check_versions(facts: dict[str, dict[str, Any]], allow_mixed: bool) -> list[str]:
    """The workers to use, in a fixed order; refuse a cluster that would render other pixels.

    Raises:
        UsageError: A worker lacks Chromium or FFmpeg, or versions differ.
    """
    addresses = sorted(facts)
    for address in addresses:
        worker = facts[address]
        for tool in ("chromium", "ffmpeg"):
            if worker.get(tool) is None:
                raise UsageError(
                    f"Dask worker {address} on {worker.get('host')}: "
                    f"{worker.get(tool + '_error', tool + ' is missing')}"
                )
    first = facts[addresses[0]]
    keys = ("helios_render", "chromium", "ffmpeg")
    differ = [a for a in addresses if any(facts[a].get(k) != first.get(k) for k in keys)]
    if differ and not allow_mixed:
        listing = "; ".join(
            f"{a}: helios-render {facts[a].get('helios_render')}, {facts[a].get('chromium')}, "
            f"FFmpeg {facts[a].get('ffmpeg')}"
            for a in addresses
        )
        raise UsageError(
            "the cluster's workers have different helios-render, Chromium or FFmpeg versions, "
            f"which would render different pixels ({listing}): install the same versions on "
            "every worker, or pass --allow-mixed-versions"
        )
    return addresses


def _gather_facts(client: distributed.Client, browser: str | None, ffmpeg: str | None,
                  begin_frame: bool = False) -> dict[str, dict[str, Any]]:
    """Every worker's facts, each from a task pinned to it."""
    from ._dask_worker import worker_facts

    addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
    futures = [
        client.submit(worker_facts, browser, ffmpeg, begin_frame, workers=[address],
                      allow_other_workers=False, pure=False, key=f"helios-facts-{uuid.uuid4().hex}")
        for address in addresses
    ]
    try:
        results = client.gather(futures)
    except ImportError as exc:
        raise UsageError(
            f"a Dask worker cannot import helios_render ({exc}): install {INSTALL_HINT} "
            "(the same version) on every worker"
        ) from exc
    return dict(zip(addresses, results, strict=True))


def cluster_facts(address: str) -> dict[str, dict[str, Any]]:
    """Blocking: each worker's helios-render, Chromium, FFmpeg, beginFrame and resources
    (``helios-render doctor --cluster``).

    Raises:
        UsageError: Dask is missing or the scheduler cannot be reached.
    """
    require_distributed()
    kind, value = parse_cluster(address)
    connection = _connect(
        None if kind == "local" else str(value), None, int(value) if kind == "local" else None
    )
    try:
        return _gather_facts(connection.client, None, None, begin_frame=True)
    finally:
        connection.close()


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

    async def run(
        self,
        jobs: Sequence[ChunkJob],
        *,
        report: Report,
        on_result: ResultSink,
        on_retry: Callable[[], object],
        retries: int,
        scratch: Path | None = None,
        on_placement: Placement | None = None,
        on_replay: Report | None = None,
    ) -> int:
        """Render ``jobs`` on the cluster; return how many workers it had. (Replay progress
        is not sent back from the workers: ``on_replay`` is not called.)

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
            _connect, self._spec, self._client, self._local_workers
        )
        try:
            return await _ClusterRun(self, connection.client).run(
                jobs, report, on_result, on_retry, retries, on_placement
            )
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(connection.close)


class _ClusterRun:
    """One render on one client: submission, results, retries, stopping."""

    def __init__(self, executor: DaskExecutor, client: distributed.Client) -> None:
        self._executor = executor
        self._client = client
        self._render_id = uuid.uuid4().hex
        self._pending: dict[str, tuple[ChunkJob, Any]] = {}
        self._attempt: dict[int, int] = {}
        self._done: set[int] = set()
        self._placements: dict[int, str] = {}
        self._closed = False
        self._report: Report = lambda i, p: None
        self._on_placement: Placement | None = None
        self._bundle: Any = None
        self._resources: dict[str, float] | None = None
        self._preferred: dict[int, str] = {}
        self._retries = 0
        self._stop_seconds: float | None = None
        self._fetched: dict[str, Any] = {}
        #: Hands a finished future to the run loop (set by run()).
        self._deliver: Callable[[Any], None] = lambda future: None

    async def run(
        self,
        jobs: Sequence[ChunkJob],
        report: Report,
        on_result: ResultSink,
        on_retry: Callable[[], object],
        retries: int,
        on_placement: Placement | None,
    ) -> int:
        import distributed

        from ._dask_worker import cancel_event_name, progress_topic

        client = self._client
        self._report = report
        self._on_placement = on_placement
        local = self._executor.is_local
        first = jobs[0]
        facts = await trio.to_thread.run_sync(
            _gather_facts, client, first.browser if local else None,
            first.ffmpeg if local else None, first.begin_frame, abandon_on_cancel=True,
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
                supervision = Supervision(scope, retries, on_retry)
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
                            await self._settle(entry[0], future, supervision, on_result)
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

    async def _settle(
        self, job: ChunkJob, future: Any, supervision: Supervision, on_result: ResultSink
    ) -> None:
        """Record a finished chunk, or decide about its failure (retry or stop)."""
        try:
            result = await self._outcome(job, future)
            self._done.add(job.index)
            await on_result(result)
            # 1.0 once the chunk is in the job folder, as a local worker reports it.
            self._report(job.index, 1.0)
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
                if self._on_placement is not None:
                    self._on_placement(index, machine)
            self._report(index, p)
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
