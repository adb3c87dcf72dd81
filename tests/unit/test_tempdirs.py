"""Stale temporary folders of killed renders are swept; a live render's never are, whatever
its pid looks like from here (another PID namespace sharing the folder)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helios_render._tempdirs import (
    LOCK_FILE,
    OWNER_FILE,
    describe_owner,
    dir_in_use,
    make_private_dir,
    owner_mark,
    release_dir,
    sweep_stale_dirs,
)

MAKE = (
    "import sys; from pathlib import Path; from helios_render._tempdirs import make_private_dir; "
    "print(make_private_dir('chunk', parent=Path(sys.argv[1])), flush=True); sys.stdin.read()"
)


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@contextmanager
def folder_of_a_child(parent: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A private folder made by a child process, which holds it until its stdin closes."""
    with subprocess.Popen([sys.executable, "-c", MAKE, str(parent)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            yield Path(child.stdout.readline().strip()), child
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()


def test_only_folders_whose_lock_is_free_are_swept(tmp_path: Path) -> None:
    live = make_private_dir("chromium", parent=tmp_path)
    with folder_of_a_child(tmp_path) as (killed, child):
        child.kill()
    (killed / "tmp").mkdir()
    unmarked = tmp_path / "helios-someone-else"
    unmarked.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    (other / LOCK_FILE).touch()
    # An older helios-render's folder (an owner file, no lock file) is left alone.
    older = tmp_path / "helios-chunk-older"
    older.mkdir()
    (older / OWNER_FILE).write_text(owner_mark(_dead_pid()))
    assert sweep_stale_dirs(tmp_path) == [killed]
    assert live.is_dir() and unmarked.is_dir() and other.is_dir() and older.is_dir()
    assert not killed.exists()


def test_a_live_owner_whose_pid_looks_dead_from_here_keeps_its_folder(tmp_path: Path) -> None:
    # What a render in another PID namespace looks like: its owner file names a pid that is
    # dead here (or another process), but it holds the lock.
    with folder_of_a_child(tmp_path) as (folder, child):
        (folder / OWNER_FILE).write_text(f"{_dead_pid()} 1 elsewhere\n")
        assert dir_in_use(folder) is True
        assert sweep_stale_dirs(tmp_path) == []
        assert folder.is_dir()
        assert describe_owner(folder).endswith("on elsewhere")
        assert child.stdin is not None
        child.stdin.close()  # the owner exits: the kernel releases its lock
        child.wait()
    assert dir_in_use(folder) is False
    assert sweep_stale_dirs(tmp_path) == [folder]


def test_this_process_sees_its_own_folder_in_use_until_it_lets_go(tmp_path: Path) -> None:
    folder = make_private_dir("work", parent=tmp_path)
    assert dir_in_use(folder) is True
    assert sweep_stale_dirs(tmp_path) == []
    release_dir(folder)
    assert dir_in_use(folder) is False
    assert dir_in_use(tmp_path) is None  # no lock file: not ours


def test_a_sweep_in_the_middle_of_a_claim_never_removes_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Dask worker's chunk once failed with FileNotFoundError writing its owner file: the
    lock file was made under its name and locked a moment later, and another worker's sweep
    took the free lock in between and removed the folder. The sweep now runs inside that
    moment (at the claim's first flock): the folder and its claim survive."""
    import fcntl

    real_flock = fcntl.flock
    swept: list[list[Path]] = []
    sweeping = False

    def flock_after_a_sweep(fd: int, operation: int) -> None:
        nonlocal sweeping
        if not swept and not sweeping:
            sweeping = True
            swept.append(sweep_stale_dirs(tmp_path))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)
    folder = make_private_dir("chunk", parent=tmp_path)
    assert swept == [[]]  # the sweep ran, and left the folder being claimed
    assert folder.is_dir() and (folder / OWNER_FILE).is_file()
    assert sorted(p.name for p in folder.iterdir()) == sorted([LOCK_FILE, OWNER_FILE])
    monkeypatch.setattr(fcntl, "flock", real_flock)
    assert dir_in_use(folder) is True  # held, so a later sweep leaves it too
    assert sweep_stale_dirs(tmp_path) == [] and folder.is_dir()
    release_dir(folder)
    assert sweep_stale_dirs(tmp_path) == [folder]
