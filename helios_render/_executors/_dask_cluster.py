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
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ClusterError, UsageError
from .._model.options import parse_cluster
from .._tempdirs import make_private_dir

if TYPE_CHECKING:  # distributed is an optional extra, imported where it is used
    import distributed

__all__ = [
    "CLOSE_TIMEOUT",
    "CONNECT_TIMEOUT",
    "INSTALL_HINT",
    "ClusterConnection",
    "ClusterTLS",
    "check_delivery",
    "check_versions",
    "cluster_facts",
    "cluster_report",
    "connect",
    "gather_facts",
    "local_cluster",
    "require_distributed",
    "require_tls_settings",
    "tls_settings",
]

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "helios-render[dask]"'
#: Seconds to reach a scheduler (a refused connection, a wrong certificate: Dask retries
#: until then).
CONNECT_TIMEOUT = 8.0
#: Seconds for a scheduler that answered to have a worker.
WORKERS_TIMEOUT = 30.0
#: Seconds a ``local:N`` cluster gets for its worker processes to start.
LOCAL_START_TIMEOUT = 120.0
#: Seconds a cluster gets to close.
CLOSE_TIMEOUT = 20.0
#: Seconds each worker gets to answer the client's checks (its facts, a bundle delivered).
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ClusterTLS:
    """Certificates for a ``tls://`` scheduler (``--tls-ca-file``, ``--tls-cert``,
    ``--tls-key``): the CA that signed the scheduler's and the workers' certificates, and this
    client's certificate and key (``key`` ``None`` when the certificate file holds it)."""

    ca_file: str
    cert: str
    key: str | None = None

    def security(self) -> Any:
        """Dask's ``Security`` for a client with these certificates."""
        import distributed

        return distributed.Security(
            tls_ca_file=self.ca_file, tls_client_cert=self.cert, tls_client_key=self.key,
            require_encryption=True,
        )


def require_tls_settings(spec: str, tls: ClusterTLS | None) -> None:
    """Refuse a ``tls://`` address without certificates at once (before Dask's
    ``distributed`` is even imported).

    Raises:
        ClusterError: Neither ``tls`` nor Dask's configuration has them.
    """
    if tls is not None or not spec.strip().startswith("tls://"):
        return
    import dask.config

    ca_file = dask.config.get("distributed.comm.tls.ca-file", None)
    cert = dask.config.get("distributed.comm.tls.client.cert", None)
    if not ca_file or not cert:
        raise ClusterError(
            f"--cluster {spec} needs TLS certificates: pass --tls-ca-file CA.pem --tls-cert "
            "CLIENT.pem --tls-key CLIENT.key (or set distributed.comm.tls in Dask's "
            "configuration; see 'TLS' in docs/cluster.md)"
        )


def tls_settings(spec: str, tls: ClusterTLS | None) -> Any:
    """The ``security`` to reach ``spec`` with: from ``tls``, else from Dask's own
    configuration (``distributed.comm.tls.*``: a YAML file in ``~/.config/dask`` or
    ``DASK_CONFIG``, or ``DASK_DISTRIBUTED__COMM__TLS__*`` variables); ``None`` for ``tcp://``.

    Raises:
        ClusterError: A ``tls://`` address without certificates, or a certificate file that
            cannot be read.
    """
    import distributed

    if tls is not None:
        for flag, path in (("--tls-ca-file", tls.ca_file), ("--tls-cert", tls.cert),
                           ("--tls-key", tls.key)):
            if path is not None and not os.access(path, os.R_OK):
                raise ClusterError(f"{flag} {path}: no such readable file")
        try:
            return tls.security()
        except (OSError, ValueError) as exc:
            raise ClusterError(f"the TLS certificates cannot be used: {exc}") from exc
    if not spec.startswith("tls://"):
        return None
    require_tls_settings(spec, None)
    return distributed.Security()


def require_distributed() -> None:
    """Raise a clear :class:`ClusterError` when Dask's ``distributed`` is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise ClusterError(f"rendering on a cluster needs Dask: {INSTALL_HINT}") from exc


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


def connect(
    spec: str | None, client: Any, local_workers: int | None, tls: ClusterTLS | None = None
) -> ClusterConnection:
    """Blocking: reach the cluster (start it for ``local:N``) and wait for a worker.

    Raises:
        ClusterError: The scheduler cannot be reached (in :data:`CONNECT_TIMEOUT`), refused
            the certificates, or has no worker; one line, whatever Dask raised.
    """
    import distributed

    level = _dask_log_level()
    quiet = _quiet_dask(level)
    if client is not None:
        return ClusterConnection(client, own_client=False, quiet_levels=quiet)
    if local_workers is not None:
        return _start_local(local_workers, level, quiet)
    assert spec is not None
    try:
        security = tls_settings(spec, tls)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            own = distributed.Client(
                spec, set_as_default=False, timeout=CONNECT_TIMEOUT, security=security
            )
    except UsageError:
        _restore(quiet)
        raise
    except Exception as exc:  # Dask raises OSError, TimeoutError, TypeError, ssl errors...
        _restore(quiet)
        hint = (
            "check --tls-ca-file, --tls-cert and --tls-key against the scheduler's"
            if spec.startswith("tls://") else
            "start one with 'dask scheduler' and give its address"
        )
        raise ClusterError(
            f"cannot reach the Dask scheduler at {spec} ({_one_line(exc)}): {hint} "
            "(see docs/cluster.md)"
        ) from exc
    connection = ClusterConnection(own, quiet_levels=quiet)
    try:
        own.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except Exception as exc:
        connection.close()
        raise ClusterError(
            f"the Dask scheduler at {spec} has no workers: start some with 'dask worker "
            f"{spec} --nthreads 1 --resources chromium=1'"
        ) from exc
    return connection


def _one_line(exc: BaseException) -> str:
    """Dask's error as one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _restore(levels: dict[str, int]) -> None:
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


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
        ClusterError: A worker lacks Chromium or FFmpeg, or versions differ.
    """
    silent = [a for a in sorted(facts) if "unreachable" in facts[a]]
    for address in silent:
        logger.warning("Dask worker %s is left out: %s", address, facts[address]["unreachable"])
    addresses = [a for a in sorted(facts) if a not in silent]
    if not addresses:
        raise ClusterError(
            "no Dask worker answered: "
            + "; ".join(f"{a} {facts[a]['unreachable']}" for a in silent)
        )
    for address in addresses:
        worker = facts[address]
        for tool in ("chromium", "ffmpeg"):
            if worker.get(tool) is None:
                raise ClusterError(
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
        raise ClusterError(
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
        ClusterError: Names the first such family and each worker's file.
    """
    first = facts[addresses[0]].get("fonts") or {}
    for family in sorted(first):
        files = {a: (facts[a].get("fonts") or {}).get(family) for a in addresses}
        if len(set(files.values())) > 1:
            listing = "; ".join(f"{a}: {files[a] or 'none'}" for a in addresses)
            raise ClusterError(
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

    info = client.scheduler_info(n_workers=-1)["workers"]
    addresses = sorted(info)
    futures = [
        client.submit(worker_facts, browser, ffmpeg, begin_frame, fonts, workers=[address],
                      allow_other_workers=False, pure=False, key=f"helios-facts-{uuid.uuid4().hex}")
        for address in addresses
    ]
    deadline = time.monotonic() + ANSWER_TIMEOUT
    facts: dict[str, dict[str, Any]] = {}
    for address, future in zip(addresses, futures, strict=True):
        try:
            facts[address] = future.result(timeout=max(0.1, deadline - time.monotonic()))
        except ImportError as exc:
            raise ClusterError(
                f"a Dask worker cannot import helios_render ({exc}): install {INSTALL_HINT} "
                "(the same version) on every worker"
            ) from exc
        except TimeoutError:
            facts[address] = {
                "unreachable": f"did not answer in {ANSWER_TIMEOUT:g} s (the scheduler must "
                "reach its --worker-port; see 'Ports' in docs/cluster.md)",
            }
            future.cancel()
        facts[address]["nanny"] = info[address].get("nanny")
    return facts


def check_delivery(client: distributed.Client, addresses: list[str]) -> dict[str, str | None]:
    """Blocking: send a small bundle to each worker on its own, as a render sends the
    composition, and have a task there read it; ``None`` for a worker that did, else what
    went wrong."""
    payload = b"helios-render delivery check" * 1024
    outcome: dict[str, str | None] = {}
    deadline = time.monotonic() + ANSWER_TIMEOUT
    for address in addresses:
        try:
            [data] = client.scatter([payload], workers=[address], hash=False,
                                   timeout=max(0.1, deadline - time.monotonic()))
            future = client.submit(len, data, workers=[address], allow_other_workers=False,
                                   pure=False, key=f"helios-delivery-{uuid.uuid4().hex}")
            size = future.result(timeout=max(0.1, deadline - time.monotonic()))
            outcome[address] = None if size == len(payload) else f"got {size} bytes"
            future.release()
            data.release()
        except Exception as exc:
            outcome[address] = f"no delivery in {ANSWER_TIMEOUT:g} s ({type(exc).__name__})"
    return outcome


def cluster_facts(address: str, tls: ClusterTLS | None = None) -> dict[str, dict[str, Any]]:
    """See :func:`cluster_report` (without the delivery check)."""
    return cluster_report(address, tls, delivery=False)[0]


def cluster_report(
    address: str, tls: ClusterTLS | None = None, *, delivery: bool = True
) -> tuple[dict[str, dict[str, Any]], str]:
    """Blocking: each worker's helios-render, Chromium, FFmpeg, beginFrame, resources, nanny
    and (with ``delivery``) whether a bundle sent to it arrives, as a render sends the
    composition; and the scheduler's address (``helios-render doctor --cluster``).

    Raises:
        ClusterError: Dask is missing or the scheduler cannot be reached.
    """
    require_distributed()
    kind, value = parse_cluster(address)
    connection = connect(
        None if kind == "local" else str(value), None, int(value) if kind == "local" else None,
        tls,
    )
    try:
        facts = gather_facts(connection.client, None, None, begin_frame=True)
        if delivery:
            answering = [a for a in sorted(facts) if "unreachable" not in facts[a]]
            for worker, problem in check_delivery(connection.client, answering).items():
                facts[worker]["delivery"] = problem
        return facts, str(connection.client.scheduler_info().get("address", address))
    finally:
        connection.close()
