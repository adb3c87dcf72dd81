"""Private temporary folders that say who owns them, and the sweep of those a killed process left.

Every temporary folder helios_render makes (a Chromium profile, a worker's scratch space) is
created by :func:`make_private_dir` under the temp folder with a ``helios-`` prefix and holds an
owner file: the pid of the process that made it and that process's start time (so a recycled
pid is not mistaken for the owner). A process killed with SIGKILL cannot remove its folders;
:func:`sweep_stale_dirs`, run when a render starts, removes every such folder whose owner is
gone, and never one of a live process.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["OWNER_FILE", "PREFIX", "make_private_dir", "owner_alive", "sweep_stale_dirs"]

logger = logging.getLogger(__name__)

#: Every temporary folder of ours starts with this.
PREFIX = "helios-"
#: The file inside it naming its owner: ``PID START_TIME``.
OWNER_FILE = ".helios-owner"


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
    return f"{pid} {_start_time(pid) or 0}\n"


def make_private_dir(kind: str, *, parent: Path | None = None) -> Path:
    """A new folder ``helios-KIND-XXXXXXXX`` (in ``parent``, else the temp folder), marked as
    this process's."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=parent))
    (path / OWNER_FILE).write_text(owner_mark())
    return path


def owner_alive(folder: Path) -> bool | None:
    """Whether the process that made ``folder`` still runs; ``None`` when it has no owner file
    (not ours, or still being created)."""
    try:
        pid_text, start = (folder / OWNER_FILE).read_text().split()
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
    :data:`SHORT_TMP`) whose owner process is gone; return what was removed."""
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
        if owner_alive(entry) is False:
            shutil.rmtree(entry, ignore_errors=True)
            logger.info("removed %s, left by a helios-render that was killed", entry)
            removed.append(entry)
    return removed
