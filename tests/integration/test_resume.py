"""Resume with real processes: an interrupted render's finished chunks are kept beside the
output and reused by the rerun, whose output decodes to exactly the uninterrupted render's."""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import trio

from helios_render._environment import probe_environment
from helios_render._executors.worker import render_chunk
from helios_render._model.job import ChunkJob
from helios_render._model.plan import plan_render

from ..conftest import COMPOSITIONS, our_processes, wait_no_orphans
from ..factories import make_lossless_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

SOURCE = COMPOSITIONS / "resume.html"
FRAMES = 600
#: Lossless: the same frames always decode to the same pixels.
LOSSLESS = ["--width", "320", "--height", "180", "--image-format", "png", "--crf", "0",
            "--preset", "ultrafast"]


def cli(source: Path, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "helios_render", "render", str(source), str(output),
            "--frames", str(FRAMES), *LOSSLESS, "--progress", "json", *extra]


def frame_hashes(path: Path) -> list[str]:
    """The MD5 of every decoded frame, in order."""
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "framemd5", "-"],
        capture_output=True, text=True, check=True,
    ).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def job_folders(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if ".helios-job-" in p.name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The frames of an uninterrupted render."""
    folder = tmp_path_factory.mktemp("reference")
    output = folder / "whole.mp4"
    done = subprocess.run(cli(SOURCE, output, "--concurrency", "2"), capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    hashes = frame_hashes(output)
    assert len(hashes) == FRAMES
    return hashes


def interrupt(command: list[str], signum: int, chunks_done: int) -> str:
    """Run ``command`` until ``chunks_done`` chunks are finished, then send ``signum``."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stderr is not None
            deadline = time.monotonic() + 300
            for line in process.stdout:
                event = json.loads(line)
                if sum(1 for p in event.get("workers", []) if p == 1.0) >= chunks_done:
                    break
                assert event.get("event") != "done", "the render ended before the signal"
                assert time.monotonic() < deadline
            process.send_signal(signum)
            process.wait(timeout=20)
            return process.stderr.read()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def rerun(command: list[str]) -> tuple[list[dict[str, Any]], str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return events(done.stdout), done.stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder holding a copy of the composition (so that it can be edited)."""
    (tmp_path / "comp").mkdir()
    shutil.copy(SOURCE, tmp_path / "comp" / "index.html")
    yield tmp_path
    assert not wait_no_orphans(timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "first", "second"),
    [(signal.SIGKILL, "1", "1"), (signal.SIGINT, "2", "2"), (signal.SIGTERM, "1", "2")],
    ids=["sigkill", "ctrl-c", "sigterm-other-concurrency"],
)
def test_an_interrupted_render_resumes_with_only_the_missing_chunks(
    workdir: Path, reference: list[str], private_tmpdir: Path, signum: int, first: str,
    second: str,
) -> None:
    source = workdir / "comp" / "index.html"
    output = workdir / "out.mp4"
    stderr = interrupt(cli(source, output, "--concurrency", first), signum, chunks_done=3)
    assert not output.exists()
    (job,) = job_folders(workdir)
    manifest = json.loads((job / "manifest.json").read_text())
    finished = len(manifest["chunks"])
    assert finished >= 2
    if signum != signal.SIGKILL:
        assert "Traceback" not in stderr
        assert "run the same command again to resume" in stderr.strip().splitlines()[-1]
    states, _ = rerun(cli(source, output, "--concurrency", second))
    progress = [e for e in states if e["event"] == "progress"]
    reused = progress[0]["frames_reused"]
    assert reused == finished * 60
    assert all(e["frames_reused"] == reused for e in progress)
    assert progress[0]["frames_done"] == reused  # counted as done from the start
    values = [e["progress"] for e in progress]
    assert values == sorted(values) and values[-1] == 1.0
    assert frame_hashes(output) == reference
    # After success: no job folder, nothing in the temp folder (a killed run's stale
    # folders were swept), no process of either run.
    assert job_folders(workdir) == []
    assert [p.name for p in private_tmpdir.iterdir() if p.name.startswith("helios-")] == []
    assert not our_processes() - {os.getpid()}


@pytest.mark.slow
def test_a_cluster_that_cannot_be_reached_keeps_the_finished_chunks(
    workdir: Path, reference: list[str]
) -> None:
    # A render interrupted here, then the same render sent to a scheduler that is down: the
    # cluster's error is the user's to fix, not the render's; its chunks wait for the rerun.
    source = workdir / "comp" / "index.html"
    output = workdir / "out.mp4"
    interrupt(cli(source, output, "--concurrency", "1"), signal.SIGINT, chunks_done=2)
    (job,) = job_folders(workdir)
    manifest = (job / "manifest.json").read_text()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = subprocess.run(cli(source, output, "--cluster", f"tcp://127.0.0.1:{port}"),
                          capture_output=True, text=True, timeout=300, check=False)
    assert down.returncode == 2, down.stderr
    lines = down.stderr.strip().splitlines()
    assert "cannot reach the Dask scheduler" in lines[-2], down.stderr
    assert "run the same command again to resume" in lines[-1]
    assert job_folders(workdir) == [job] and (job / "manifest.json").read_text() == manifest
    states, _ = rerun(cli(source, output, "--concurrency", "2"))
    finished = len(json.loads(manifest)["chunks"])
    assert next(e for e in states if e["event"] == "progress")["frames_reused"] == finished * 60
    assert frame_hashes(output) == reference


@pytest.mark.slow
def test_a_changed_composition_or_setting_starts_over_and_says_why(
    workdir: Path, reference: list[str]
) -> None:
    source = workdir / "comp" / "index.html"
    output = workdir / "out.mp4"
    interrupt(cli(source, output, "--concurrency", "1"), signal.SIGINT, chunks_done=2)
    assert len(job_folders(workdir)) == 1
    source.write_text(source.read_text() + "<!-- edited -->\n")
    states, stderr = rerun(cli(source, output, "--concurrency", "2"))
    assert "changed" in stderr and "starting over" in stderr
    assert states[0]["frames_reused"] == 0
    assert frame_hashes(output) == reference  # a comment changes no pixel
    assert job_folders(workdir) == []
    # A setting that changes pixels starts over too.
    interrupt(cli(source, output, "--concurrency", "1"), signal.SIGINT, chunks_done=2)
    states, stderr = rerun(cli(source, output, "--concurrency", "1", "--crf", "1"))
    assert "starting over" in stderr
    assert states[0]["frames_reused"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "corrupt", "delete"])
def test_a_damaged_chunk_is_rendered_again_never_stitched(
    workdir: Path, reference: list[str], damage: str
) -> None:
    source = workdir / "comp" / "index.html"
    output = workdir / "out.mp4"
    interrupt(cli(source, output, "--concurrency", "1"), signal.SIGTERM, chunks_done=3)
    (job,) = job_folders(workdir)
    finished = sorted(p for p in (job / "chunks").iterdir() if p.suffix == ".ts")
    assert len(finished) >= 2
    victim = finished[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        victim.write_bytes(data[:1000] + bytes(b ^ 0xFF for b in data[1000:1100]) + data[1100:])
    else:
        victim.unlink()
    states, stderr = rerun(cli(source, output, "--concurrency", "1"))
    assert "damaged or missing" in stderr
    assert states[0]["frames_reused"] == (len(finished) - 1) * 60
    assert frame_hashes(output) == reference


def _render_pickled(payload: bytes, out_dir: str) -> bytes:
    """In a fresh ``spawn`` child: unpickle a job and render it; the chunk's bytes."""
    job = pickle.loads(payload)
    assert isinstance(job, ChunkJob)
    result = trio.run(lambda: render_chunk(job, lambda i, p: None, out_dir=Path(out_dir)))
    assert result.path is not None
    return result.path.read_bytes()


async def test_a_pickled_chunk_job_renders_the_same_bytes_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    options = make_lossless_options(
        tmp_path, SOURCE, fps=Fraction(30), frames=40, start_frame=20, chunk_frames=20,
        preset="ultrafast",
    )
    plan = plan_render(options, await probe_environment(options))
    job = plan.jobs[1]  # frames 40..59: the page replays 0..39 first
    here = tmp_path / "here"
    here.mkdir()
    local = await render_chunk(job, lambda i, p: None, out_dir=here)
    assert local.path is not None and local.frames == 20
    there = tmp_path / "there"
    there.mkdir()
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        remote = await trio.to_thread.run_sync(
            pool.apply, _render_pickled, (pickle.dumps(job), str(there))
        )
    assert remote == local.path.read_bytes()
    # Without an out_dir the chunk comes back as bytes (for a remote caller), and nothing is
    # left in the temp folder.
    as_bytes = await render_chunk(job, lambda i, p: None)
    assert as_bytes.path is None and as_bytes.data == remote
