"""Fault injection with real processes: every fault ends in a clear error, in bounded time,
with no process, temporary file or partial output left, and an existing output untouched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import helios_render
from helios_render import RenderOptions, RenderProgress

from ..conftest import COMPOSITIONS, our_processes, probe, process_table, wait_no_orphans

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

OLD = b"an older render that must survive"


def helios_temporaries() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).iterdir() if p.name.startswith("helios-")}


def job_folders_of(folder: Path) -> list[Path]:
    """Job folders beside ``out.mp4``."""
    return [p for p in folder.iterdir() if p.name.startswith(".out.mp4.helios-job-")]


def kept_job_folders(folder: Path) -> list[Path]:
    """Job folders beside ``out.mp4``, each holding finished chunks only (nothing partial)."""
    kept = job_folders_of(folder)
    for job in kept:
        assert list((job / "partial").iterdir()) == [], "a half-written chunk was left"
    return kept


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[Path]:
    """An output path holding an older file; after the test: that file is intact, nothing
    else is in its folder but a job folder of finished chunks (kept after a crash, for a
    resume), and no temporary folder of ours is left in the test's own TMPDIR."""
    before = helios_temporaries()
    output = tmp_path / "out.mp4"
    output.write_bytes(OLD)
    yield output
    assert helios_temporaries() <= before
    assert output.read_bytes() == OLD
    kept = kept_job_folders(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.mp4", *(p.name for p in kept)]
    )


def options(output: Path, page: str = "slow.html", **kwargs: Any) -> RenderOptions:
    settings: dict[str, Any] = {
        "source": COMPOSITIONS / page,
        "output": output,
        "width": 480,
        "height": 270,
        "frames": 60,
        "concurrency": 1,
        "retries": 0,
        "timeout": 5,
    }
    settings.update(kwargs)
    return RenderOptions(**settings)


def our_children(kind: str) -> list[int]:
    """Processes of ours by kind: 'browser' (Chromium's main process), 'renderer', 'ffmpeg'."""
    table = process_table()
    found = []
    for pid in sorted(our_processes()):
        proc = table.get(pid)
        try:
            # Chromium's helpers rewrite their command line into one space-separated string.
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if proc is None:
            continue
        is_renderer = b"--type=renderer" in cmdline and b"--top-chrome" not in cmdline
        matches = {
            "ffmpeg": proc.argv0.endswith("ffmpeg"),
            "renderer": is_renderer,
            "browser": proc.session == pid and b"--user-data-dir=" in cmdline,
        }
        if matches[kind]:
            found.append(pid)
    return found


async def render_and_kill(
    opts: RenderOptions, kind: str, after_frames: int = 3
) -> tuple[helios_render.RenderResult | BaseException, float, list[RenderProgress]]:
    """Render, SIGKILL one process of ``kind`` once ``after_frames`` frames are done; return
    the result or error and the seconds from the kill to the end of render()."""
    states: list[RenderProgress] = []
    killed_at: list[float] = []

    def on_progress(state: RenderProgress) -> None:
        states.append(state)
        if not killed_at and state.frames_done >= after_frames:
            pids = our_children(kind)
            assert pids, f"no {kind} process found"
            os.kill(pids[0], signal.SIGKILL)
            killed_at.append(time.monotonic())

    try:
        outcome: helios_render.RenderResult | BaseException = await helios_render.render(
            opts, on_progress=on_progress
        )
    except helios_render.HeliosError as exc:
        outcome = exc
    assert killed_at, "the render ended before the fault was injected"
    return outcome, time.monotonic() - killed_at[0], states


async def test_chromium_killed_mid_render_fails_cleanly_without_retries(
    no_leftovers: Path,
) -> None:
    outcome, seconds, _ = await render_and_kill(options(no_leftovers), "browser")
    assert isinstance(outcome, helios_render.WorkerError), outcome
    assert isinstance(outcome.__cause__, helios_render.BrowserError)
    assert outcome.exit_code == 1
    assert seconds < 5
    # A crash may pass on a rerun: the job folder is kept for it.
    assert len(kept_job_folders(no_leftovers.parent)) == 1


async def test_chromium_killed_mid_render_is_retried(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    outcome, _, states = await render_and_kill(options(output, retries=1, frames=30), "browser")
    assert isinstance(outcome, helios_render.RenderResult), outcome
    assert probe(output)["nb_read_frames"] == "30"
    assert max(s.retries for s in states) == 1
    values = [s.progress for s in states]
    assert values == sorted(values) and values[-1] == 1.0


async def test_renderer_crash_is_reported(no_leftovers: Path) -> None:
    outcome, seconds, _ = await render_and_kill(options(no_leftovers), "renderer")
    assert isinstance(outcome, helios_render.WorkerError), outcome
    assert isinstance(outcome.__cause__, helios_render.BrowserError)
    assert seconds < 5


async def test_ffmpeg_killed_mid_render(no_leftovers: Path) -> None:
    outcome, seconds, _ = await render_and_kill(options(no_leftovers), "ffmpeg")
    assert isinstance(outcome, helios_render.WorkerError), outcome
    assert isinstance(outcome.__cause__, helios_render.EncoderError)
    assert "FFmpeg" in str(outcome)
    assert seconds < 5


async def test_uncaught_page_error_fails_with_its_message_unless_ignored(
    no_leftovers: Path, tmp_path: Path
) -> None:
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(options(no_leftovers, "throws_on_load.html", frames=3))
    assert isinstance(caught.value.__cause__, helios_render.PageError)
    assert "load boom" in str(caught.value)
    # A page error would only happen again: nothing is kept for a resume.
    assert kept_job_folders(tmp_path) == []
    ok = tmp_path / "ignored.mp4"
    await helios_render.render(
        options(ok, "throws_on_load.html", frames=3, ignore_page_errors=True)
    )
    assert probe(ok)["nb_read_frames"] == "3"
    ok.unlink()


async def test_page_that_navigates_away(no_leftovers: Path) -> None:
    with trio.fail_after(20), pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(options(no_leftovers, "navigates.html", frames=10))
    assert "navigated away" in str(caught.value)
    assert kept_job_folders(no_leftovers.parent) == []


async def test_page_that_never_finishes_loading(no_leftovers: Path, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        page = tmp_path / "site" / "hangs.html"
        page.parent.mkdir()
        page.write_text(f'<script src="http://127.0.0.1:{port}/never.js"></script>')
        started = time.monotonic()
        with pytest.raises(helios_render.WorkerError) as caught:
            await helios_render.render(options(no_leftovers, frames=3, source=page, timeout=2))
        assert time.monotonic() - started < 15
    assert isinstance(caught.value.__cause__, helios_render.FrameTimeoutError)
    assert "did not finish loading within 2 s" in str(caught.value)
    page.unlink()
    page.parent.rmdir()


async def test_output_folder_that_cannot_be_written() -> None:
    with pytest.raises(helios_render.UsageError, match="not writable"):
        await helios_render.render(options(Path("/proc/helios-out.mp4"), frames=3))


async def test_disk_full_while_encoding(no_leftovers: Path, tmp_path: Path) -> None:
    # An FFmpeg that may write only a few KiB per file (RLIMIT_FSIZE), like a full disk.
    wrapper = tmp_path / "bin" / "ffmpeg"
    wrapper.parent.mkdir()
    ffmpeg = shutil.which("ffmpeg")
    wrapper.write_text(f'#!/bin/sh\nulimit -f 8\nexec {ffmpeg} "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(
            options(no_leftovers, "css_linear.html", frames=60, ffmpeg=wrapper,
                    image_format="png", crf=0)
        )
    assert isinstance(caught.value.__cause__, helios_render.EncoderError)
    assert "file size limit" in str(caught.value)
    wrapper.unlink()
    wrapper.parent.rmdir()


def spawn_cli(output: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "slow.html"),
         str(output), "--frames", "300", "--width", "480", "--height", "270",
         "--concurrency", "2", "--progress", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_rendering(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if json.loads(line).get("frames_done", 0) >= 2:
            return
        assert time.monotonic() < deadline
    raise AssertionError("the CLI ended before rendering")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)]
)
def test_signals_to_the_cli_leave_nothing_behind(
    no_leftovers: Path, signum: int, code: int
) -> None:
    before = helios_temporaries()
    with spawn_cli(no_leftovers) as process:
        try:
            wait_rendering(process)
            sent = time.monotonic()
            process.send_signal(signum)
            assert process.wait(timeout=10) == code
            took = time.monotonic() - sent
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read()
    assert took < 5
    # SIGKILL gives us no chance to clean up: the parent-death signal must take Chromium and
    # FFmpeg down with the Python process. (Its temporary folders stay: nobody is left to
    # remove them; the other signals must leave none.)
    assert not wait_no_orphans(timeout=5)
    if signum == signal.SIGKILL:
        # Nobody was left to remove its temporary folders: the next render's start sweeps
        # them, since their owner is gone.
        assert helios_temporaries() - before
        from helios_render._tempdirs import sweep_stale_dirs

        sweep_stale_dirs()
        assert helios_temporaries() <= before
        # What it was writing stays in the job folder's partial/ until the rerun clears it
        # (tests/test_resume.py).
        for job in job_folders_of(no_leftovers.parent):
            shutil.rmtree(job / "partial")
            (job / "partial").mkdir()
    else:
        assert "Traceback" not in stderr
        assert "stopped" in stderr
        last = stderr.strip().splitlines()[-1]
        assert "run the same command again to resume" in last, stderr
