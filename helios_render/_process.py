"""Child processes that cannot outlive us: their own process group, a parent-death signal,
always reaped.

``trio.run_process`` forks from a worker thread, and Linux sends the parent-death signal when
the *thread* that forked exits, so a cached worker thread retiring would kill Chromium mid-render.
We therefore fork from the Trio thread itself (``subprocess.Popen`` takes a few milliseconds) and
wait for exit on a pidfd, which Trio can watch without a thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import trio

__all__ = ["OWNER_ENV", "ManagedProcess", "spawn"]

logger = logging.getLogger(__name__)

#: Set in the environment of every process we start (and so of Chromium's helpers) to the pid
#: of the Python process that owns it, so that leaks can be found by scanning ``/proc``.
OWNER_ENV = "HELIOS_RENDER_OWNER"
_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ManagedProcess:
    """A child process in its own process group. Create it with :func:`spawn`."""

    def __init__(self, popen: subprocess.Popen[bytes], name: str) -> None:
        self.popen = popen
        self.name = name
        self.pid = popen.pid
        self._pidfd: int | None
        try:
            self._pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # pragma: no cover - old kernels
            self._pidfd = None

    @property
    def returncode(self) -> int | None:
        """The exit status once reaped, else ``None``."""
        return self.popen.returncode

    def poll(self) -> int | None:
        """Reap the process if it has exited, without blocking."""
        return self.popen.poll()

    async def wait(self) -> int:
        """Wait for the process to exit and reap it.

        Cancellation:
            Stops waiting; the process keeps running (see :meth:`terminate`).
        """
        while (status := self.popen.poll()) is None:
            if self._pidfd is not None:
                await trio.lowlevel.wait_readable(self._pidfd)
            else:  # pragma: no cover
                await trio.sleep(0.02)
        self._close_pidfd()
        return status

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the whole process group; a group already gone is fine."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def terminate(self, grace: float) -> int:
        """Stop the process group: SIGTERM, up to ``grace`` seconds, then SIGKILL; reap.

        Also kills what is left of the group after the leader has exited (Chromium's helpers).

        Cancellation:
            Shielded: the process is always reaped before this returns.
        """
        status: int | None = None
        started = trio.current_time()
        with trio.CancelScope(shield=True):
            if self.popen.poll() is None:
                self.signal_group(signal.SIGTERM)
                with trio.move_on_after(grace):
                    await self.wait()
            self.signal_group(signal.SIGKILL)
            status = await self.wait()
        elapsed = trio.current_time() - started
        logger.debug("stopped %s pid=%d in %.3f s", self.name, self.pid, elapsed)
        assert status is not None
        return status

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None

    def __repr__(self) -> str:
        return f"ManagedProcess(name={self.name!r}, pid={self.pid}, returncode={self.returncode})"


def spawn(
    command: Sequence[str | os.PathLike[str]],
    *,
    name: str,
    stdin: int | None = subprocess.DEVNULL,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """Start ``command`` in a new session; it gets SIGKILL if this thread dies.

    Its environment (``env``, else ours) gets :data:`OWNER_ENV` set to our pid.

    ``stdout`` and ``stderr`` go to ``log_path`` (or nowhere), which never blocks the child and
    lets errors quote the log's tail.

    Raises:
        OSError: The program could not be started.
    """
    log: IO[bytes] | int = subprocess.DEVNULL
    if log_path is not None:
        log = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed below
    try:
        popen = subprocess.Popen(
            [os.fspath(part) for part in command],
            stdin=stdin,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            env={**(os.environ if env is None else env), OWNER_ENV: str(os.getpid())},
            close_fds=True,
        )
    finally:
        if not isinstance(log, int):
            log.close()
    logger.debug("started %s pid=%d", name, popen.pid)
    return ManagedProcess(popen, name)


def log_tail(path: Path, lines: int = 15, limit: int = 4000) -> str:
    """The last lines of a log file, for error messages; empty if there is none."""
    try:
        data = path.read_bytes()[-limit * 4 :]
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").strip().splitlines()[-lines:]
    return "\n".join(text)[-limit:]
