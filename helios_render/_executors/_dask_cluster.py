"""Reaching a Dask cluster: connecting to a scheduler or starting a ``local:N`` one, checking
that its workers would render the same pixels, and the facts each worker reports.

``local:N`` starts a ``LocalCluster`` of N worker processes (one thread and ``chromium=1``
each) as children of this process, with Dask's scratch space in a private folder that is
removed and Dask's log lines silenced unless logging is at INFO (``-v``); ``tcp://HOST:PORT``
connects to a running scheduler. Everything here blocks (Dask's client API): the executor calls
it in a thread. The core package does not import Dask: ``distributed`` is imported where it is
used.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import UsageError
from .._model.options import parse_cluster
from .._tempdirs import make_private_dir

if TYPE_CHECKING:  # distributed is an optional extra, imported where it is used
    import distributed

__all__ = [
    "CLOSE_TIMEOUT",
    "CONNECT_TIMEOUT",
    "INSTALL_HINT",
    "ClusterConnection",
    "check_versions",
    "cluster_facts",
    "connect",
    "gather_facts",
    "local_cluster",
    "require_distributed",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "helios-render[dask]"'
#: Seconds to reach a scheduler and find a worker there.
CONNECT_TIMEOUT = 30.0
#: Seconds a ``local:N`` cluster gets for its worker processes to start.
LOCAL_START_TIMEOUT = 120.0
#: Seconds a cluster gets to close.
CLOSE_TIMEOUT = 20.0


def require_distributed() -> None:
    """Raise a clear :class:`UsageError` when Dask's ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise UsageError(f"rendering on a cluster needs Dask: {INSTALL_HINT}") from exc


class ClusterConnection:
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


def connect(spec: str | None, client: Any, local_workers: int | None) -> ClusterConnection:
    """Blocking: reach the cluster (start it for ``local:N``) and wait for a worker."""
    import distributed

    level = _dask_log_level()
    quiet = _quiet_dask(level)
    if client is not None:
        return ClusterConnection(client, own_client=False, quiet_levels=quiet)
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
    connection = ClusterConnection(own, quiet_levels=quiet)
    try:
        own.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        connection.close()
        raise UsageError(
            f"the Dask scheduler at {spec} has no workers: start some with 'dask worker "
            f"{spec} --nthreads 1 --resources chromium=1'"
        ) from exc
    return connection


def _start_local(workers: int, level: int, quiet: dict[str, int]) -> ClusterConnection:
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
    return ClusterConnection(own, cluster, folder, quiet_levels=quiet)


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
    if not allow_mixed:
        check_fonts(facts, addresses)
    return addresses


def check_fonts(facts: dict[str, dict[str, Any]], addresses: list[str]) -> None:
    """Refuse workers that draw one of the composition's font families from other files.

    Raises:
        UsageError: Names the first such family and each worker's file.
    """
    first = facts[addresses[0]].get("fonts") or {}
    for family in sorted(first):
        files = {a: (facts[a].get("fonts") or {}).get(family) for a in addresses}
        if len(set(files.values())) > 1:
            listing = "; ".join(f"{a}: {files[a] or 'none'}" for a in addresses)
            raise UsageError(
                f"the cluster's workers draw the font family '{family}' from different files "
                f"({listing}), which would render different pixels: install the same fonts on "
                "every worker, or pass --allow-mixed-versions"
            )


def gather_facts(client: distributed.Client, browser: str | None, ffmpeg: str | None,
                  begin_frame: bool = False,
                  fonts: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """Every worker's facts, each from a task pinned to it (with ``fonts``, the file each of
    those font families is drawn from)."""
    from ._dask_worker import worker_facts

    addresses = sorted(client.scheduler_info(n_workers=-1)["workers"])
    futures = [
        client.submit(worker_facts, browser, ffmpeg, begin_frame, fonts, workers=[address],
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
    connection = connect(
        None if kind == "local" else str(value), None, int(value) if kind == "local" else None
    )
    try:
        return gather_facts(connection.client, None, None, begin_frame=True)
    finally:
        connection.close()
