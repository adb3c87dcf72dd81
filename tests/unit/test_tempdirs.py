"""Stale temporary folders of killed renders are swept; a live render's never are."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helios_render._tempdirs import OWNER_FILE, make_private_dir, owner_mark, sweep_stale_dirs


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_only_folders_whose_owner_is_gone_are_swept(tmp_path: Path) -> None:
    live = make_private_dir("chromium", parent=tmp_path)
    dead = make_private_dir("chromium", parent=tmp_path)
    (dead / OWNER_FILE).write_text(owner_mark(_dead_pid()))
    (dead / "tmp").mkdir()
    recycled = make_private_dir("chunk", parent=tmp_path)  # a pid that now names another process
    pid, _ = owner_mark().split()
    (recycled / OWNER_FILE).write_text(f"{pid} 1\n")
    unmarked = tmp_path / "helios-someone-else"
    unmarked.mkdir()
    other = tmp_path / "not-ours"
    other.mkdir()
    (other / OWNER_FILE).write_text(owner_mark(_dead_pid()))
    assert sorted(sweep_stale_dirs(tmp_path)) == sorted([dead, recycled])
    assert live.is_dir() and unmarked.is_dir() and other.is_dir()
    assert not dead.exists() and not recycled.exists()
