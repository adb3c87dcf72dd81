"""A Dask cluster as people deploy it, for the tests: a ``dask scheduler`` and ``dask worker``
processes started with Dask's own command line (not a ``LocalCluster``), each worker with its
own ``TMPDIR`` and ``HOME``, on free loopback ports; every process is in a session of its own
and is killed and reaped when the block exits."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds the scheduler and the workers get to start (a busy machine imports Dask slowly).
START_TIMEOUT = 90.0


@dataclass
class DaskCLICluster:
    """A running scheduler and its workers."""

    address: str
    folder: Path
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    #: Each worker's own temp folder (``TMPDIR``), in start order.
    worker_tmp: list[Path] = field(default_factory=list)

    @property
    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [self.scheduler, *self.workers]

    def worker_address(self, index: int) -> str:
        """The address worker ``index`` serves on (from its log)."""
        for line in (self.folder / f"worker-{index}.log").read_text(errors="replace").splitlines():
            if "Start worker at:" in line:
                return line.split("Start worker at:")[1].strip()
        raise AssertionError(f"worker {index} never said its address:\n{self.logs()}")

    def signal_worker(self, index: int, signum: int) -> None:
        """Send ``signum`` to every process of worker ``index`` (its nanny, the worker
        process, and what it started): SIGSTOP makes a machine that stops answering."""
        os.killpg(self.workers[index].pid, signum)

    def logs(self) -> str:
        """Every process's log, for a failing assertion's message."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.folder.glob("*.log"))
        )


def _dask(*args: str) -> list[str]:
    """Dask's own command line (``dask scheduler``, ``dask worker``), run by this Python."""
    return [sys.executable, "-m", "dask", *args]


#: libc, looked up here: the child between fork and exec must not import (the import lock may
#: be held by another thread of the test process).
_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before it runs: SIGKILL when the test process dies (a killed pytest must
    not leave a cluster running; a nanny's worker process follows its nanny)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _start(command: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # Whatever a worker started (a nanny's child, Chromium, FFmpeg) is in its session.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def dask_cli_cluster(
    folder: Path,
    workers: int,
    *,
    scheduler_args: Sequence[str] = (),
    worker_args: Sequence[str] = (),
    protocol: str = "tcp",
) -> Iterator[DaskCLICluster]:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes (``--nthreads 1
    --resources chromium=1``, as docs/cluster.md says), each worker with a TMPDIR and HOME of
    its own under ``folder``. Yields once every worker has joined."""
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    base = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env = {**base, "TMPDIR": str(folder / "scheduler-tmp")}
    Path(env["TMPDIR"]).mkdir(exist_ok=True)
    scheduler = _start(
        _dask("scheduler", "--host", "127.0.0.1", "--port", "0", "--protocol", protocol,
              "--no-dashboard", "--scheduler-file", str(scheduler_file), *scheduler_args),
        folder / "scheduler.log", env,
    )
    cluster: DaskCLICluster | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not scheduler_file.exists() or not scheduler_file.read_text().strip():
            if scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "dask scheduler did not start: " + (folder / "scheduler.log").read_text()
                )
            time.sleep(0.1)
        time.sleep(0.1)  # the file is written at once, but let it be complete
        address = json.loads(scheduler_file.read_text())["address"]
        cluster = DaskCLICluster(address, folder, scheduler)
        for index in range(workers):
            home = folder / f"worker-{index}"
            tmp = home / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            cluster.worker_tmp.append(tmp)
            worker_env = {**base, "TMPDIR": str(tmp), "HOME": str(home)}
            cluster.workers.append(_start(
                _dask("worker", address, "--nthreads", "1", "--resources", "chromium=1",
                      "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{index}",
                      "--local-directory", str(home / "dask"), *worker_args),
                folder / f"worker-{index}.log", worker_env,
            ))
        _wait_for_workers(cluster, workers, deadline, scheduler_args)
        yield cluster
    finally:
        _stop(cluster.processes if cluster else [scheduler])


def _wait_for_workers(
    cluster: DaskCLICluster, count: int, deadline: float, scheduler_args: Sequence[str]
) -> None:
    """Wait until the scheduler lists ``count`` workers (read from its scheduler file's
    identity through a client only when no TLS is involved; else from the workers' logs)."""
    while time.monotonic() < deadline:
        joined = sum(
            "Registered to:" in (cluster.folder / f"worker-{i}.log").read_text(errors="replace")
            for i in range(count)
        )
        if joined == count:
            return
        dead = [p for p in cluster.processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"a dask process ended while starting:\n{cluster.logs()}")
        time.sleep(0.2)
    raise RuntimeError(f"the dask workers did not join in time:\n{cluster.logs()}")


@dataclass(frozen=True)
class Certificates:
    """A CA made at test time, a certificate for the scheduler and workers (``node``), and
    one for the client, each with its key (PEM files)."""

    ca: Path
    node_cert: Path
    node_key: Path
    client_cert: Path
    client_key: Path

    @property
    def node_args(self) -> list[str]:
        """The TLS arguments of ``dask scheduler`` and ``dask worker``."""
        return ["--tls-ca-file", str(self.ca), "--tls-cert", str(self.node_cert),
                "--tls-key", str(self.node_key)]


def make_certificates(folder: Path, name: str = "helios-test-ca") -> Certificates:
    """A fresh CA and two certificates it signed (with the ``cryptography`` package, else
    the ``openssl`` command), valid for ``127.0.0.1`` and ``localhost``, for one day."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return _openssl_certificates(folder, name)
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def key_file(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ))
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(common: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            ]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([
                ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
            ]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        cert_path = folder / f"{common}.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_file(key, folder / f"{common}.key")

    node_cert, node_key = issue("node")
    client_cert, client_key = issue("client")
    return Certificates(folder / "ca.pem", node_cert, node_key, client_cert, client_key)


def _openssl_certificates(folder: Path, name: str) -> Certificates:
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", f"/CN={name}")
    extensions = folder / "ext.cnf"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                          "extendedKeyUsage=serverAuth,clientAuth\n")
    for common in ("node", "client"):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{common}.key", "-out", f"{common}.csr", "-subj", f"/CN={common}")
        run("x509", "-req", "-in", f"{common}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{common}.pem", "-days", "1", "-extfile", "ext.cnf")
    return Certificates(folder / "ca.pem", folder / "node.pem", folder / "node.key",
                        folder / "client.pem", folder / "client.key")
