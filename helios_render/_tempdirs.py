"""Private temporary folders that say who owns them, and the sweep of those a killed process left.

Every temporary folder helios_render makes (a Chromium profile, a worker's scratch space) is
created by :func:`make_private_dir` under the temp folder with a ``helios-`` prefix. Its owner
holds an ``flock`` on the lock file inside (:data:`LOCK_FILE`) for as long as it owns the
folder; the kernel releases it when the owner dies, however it dies. A process killed with
SIGKILL cannot remove its folders: :func:`sweep_stale_dirs`, run when a render starts, removes
every such folder whose lock it can take, and never one whose owner is alive, wherever that
owner runs (pids are no proof: two containers sharing ``/tmp`` see each other's pids as dead,
or as other processes). The owner file (pid, start time, host) is kept for messages.

The lock is an open file of this process (close-on-exec: Chromium and FFmpeg never hold it).
It is dropped with :func:`release_dir`, or when the folder is found removed at the next
:func:`make_private_dir`. A folder without a lock file (being created, or made by an older
helios-render) is never swept.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

__all__ = [
    "LOCK_FILE",
    "OWNER_FILE",
    "PREFIX",
    "claim_dir",
    "describe_owner",
    "dir_in_use",
    "make_private_dir",
    "owner_alive",
    "release_dir",
    "sweep_stale_dirs",
]

logger = logging.getLogger(__name__)

#: Every temporary folder of ours starts with this.
PREFIX = "helios-"
#: The file inside it naming its owner: ``PID START_TIME HOST``.
OWNER_FILE = ".helios-owner"
#: The file inside it whose ``flock`` its owner holds.
LOCK_FILE = ".helios-lock"

#: The lock file descriptors this process holds, by folder.
_held: dict[str, int] = {}
_held_lock = threading.Lock()


def _start_time(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def owner_mark(pid: int | None = None) -> str:
    """The owner file's text for ``pid`` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid} {_start_time(pid) or 0} {socket.gethostname()}\n"


def _forget_removed() -> None:
    """Close the locks of folders that were removed (by ``shutil.rmtree``) while held."""
    with _held_lock:
        for path, fd in list(_held.items()):
            if not os.path.isdir(path):
                del _held[path]
                os.close(fd)


def claim_dir(folder: Path) -> None:
    """Hold ``folder``'s lock (made if missing) for this process, and write its owner file.

    Raises:
        BlockingIOError: Another live process holds it.
    """
    _forget_removed()
    key = os.fspath(folder)
    with _held_lock:
        if key in _held:
            return
        fd = _held_new_lock(folder)
        if fd is None:  # an earlier owner's lock file: take it, unless a live owner holds it
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException:
                os.close(fd)
                raise
        _held[key] = fd
    (folder / OWNER_FILE).write_text(owner_mark())


def _held_new_lock(folder: Path) -> int | None:
    """A new lock file for ``folder``, locked before it appears under its name: made under a
    name of its own, locked, then linked as :data:`LOCK_FILE`. (Made under its name and then
    locked, a sweep in between found it free and removed a folder being claimed.) ``None``
    when the folder has a lock file already."""
    if (folder / LOCK_FILE).exists():
        return None
    draft = folder / f"{LOCK_FILE}.{os.getpid()}.{threading.get_ident()}"
    fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else knows this file yet
        os.link(draft, folder / LOCK_FILE)
    except FileExistsError:
        os.close(fd)
        return None  # another claimer was first: its lock decides
    except BaseException:
        os.close(fd)
        raise
    finally:
        draft.unlink(missing_ok=True)
    return fd


def release_dir(folder: Path) -> None:
    """Let go of ``folder``'s lock (it stays, for a later owner or the sweep)."""
    with _held_lock:
        fd = _held.pop(os.fspath(folder), None)
    if fd is not None:
        os.close(fd)


def make_private_dir(kind: str, *, parent: Path | None = None) -> Path:
    """A new folder ``helios-KIND-XXXXXXXX`` (in ``parent``, else the temp folder), locked as
    this process's."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=parent))
    claim_dir(path)
    return path


def dir_in_use(folder: Path) -> bool | None:
    """Whether a live process (of any PID namespace or container sharing the folder) holds
    ``folder``'s lock; ``None`` when it has no lock file (not ours, being created, or made by
    an older helios-render)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # closing drops a lock taken just now
    return False


def describe_owner(folder: Path) -> str:
    """Who owns ``folder``, for a message: ``process PID on HOST``."""
    try:
        fields = (folder / OWNER_FILE).read_text().split()
    except OSError:
        return "another process"
    host = f" on {fields[2]}" if len(fields) > 2 else ""
    return f"process {fields[0]}{host}" if fields else "another process"


def owner_alive(folder: Path) -> bool | None:
    """Whether the process that made ``folder`` still runs, judged by its pid (on this
    machine and in this PID namespace only: prefer :func:`dir_in_use`); ``None`` when it has
    no owner file (not ours, or still being created)."""
    try:
        pid_text, start = (folder / OWNER_FILE).read_text().split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    current = _start_time(pid)
    return current is not None and (start == "0" or current == start)


#: Where a Chromium gets its private TMPDIR when the temp folder's path is too long for its
#: socket (see ``_browser._private_tmp``): swept too.
SHORT_TMP = Path("/tmp")


def sweep_stale_dirs(parent: Path | None = None) -> list[Path]:
    """Remove the ``helios-*`` folders in ``parent`` (default: the temp folder, and
    :data:`SHORT_TMP`) whose lock no live process holds; return what was removed."""
    if parent is None:
        removed = []
        for root in dict.fromkeys([Path(tempfile.gettempdir()), SHORT_TMP]):
            removed += sweep_stale_dirs(root)
        return removed
    root = Path(parent)
    removed = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(PREFIX) or not entry.is_dir() or entry.is_symlink():
            continue
        owner = _remove_if_free(entry)
        if owner is not None:
            logger.info("removed %s, left by a helios-render that was killed (%s)", entry, owner)
            removed.append(entry)
    return removed


def _remove_if_free(folder: Path) -> str | None:
    """Remove ``folder`` if its lock can be taken (held while it is removed); return who
    owned it, or ``None`` when it was left."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError:
        return None  # no lock file: not ours, being created, or an older helios-render's
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    try:
        owner = describe_owner(folder)
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(fd)
    return None if folder.exists() else owner
