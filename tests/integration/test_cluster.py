"""Renders on a real Dask LocalCluster of worker processes: the same frames as a local render,
honest progress, first-failure cancellation, a killed worker's chunk re-run, clean stops.

One cluster of two worker processes is shared by the tests of this module (starting one costs
seconds); the CLI test starts its own with ``--cluster local:2``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
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
from helios_render import DaskExecutor, RenderOptions, RenderProgress
from helios_render._environment import resolve_source
from helios_render._model.job import FolderSource
from helios_render._tempdirs import sweep_stale_dirs

from ..conftest import COMPOSITIONS, EXAMPLES, decode_frames, probe, wait_no_processes
from ..factories import make_lossless_options

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temp folder of the shared cluster's worker processes."""
    return tmp_path_factory.mktemp("cluster-tmp")


@pytest.fixture(scope="module")
def client(cluster_tmp: Path) -> Iterator[Any]:
    """One LocalCluster of two worker processes (``local:2``), shared by this module."""
    from helios_render._executors._dask_cluster import local_cluster

    with contextlib.ExitStack() as stack:
        saved = os.environ.get("TMPDIR")
        os.environ["TMPDIR"] = str(cluster_tmp)  # inherited by the worker processes
        try:
            started = stack.enter_context(local_cluster(2))
        finally:
            if saved is None:
                del os.environ["TMPDIR"]
            else:
                os.environ["TMPDIR"] = saved
        yield started


def worker_pids(client: Any) -> dict[str, int]:
    client.wait_for_workers(2, timeout=120)
    pids: dict[str, int] = client.run(os.getpid)
    return pids


def ours_in(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.startswith("helios-")}


def assert_workers_clean(client: Any, cluster_tmp: Path, timeout: float = 2.0) -> None:
    """No Chromium or FFmpeg left on any worker process, no temporary folder of ours left."""
    for address, pid in worker_pids(client).items():
        left = wait_no_processes(timeout=timeout, owner=pid)
        assert not left, f"worker {address} still runs {left}"
    assert ours_in(cluster_tmp) == set()


def lossless(tmp_path: Path, name: str, **kwargs: Any) -> RenderOptions:
    """The hello example into ``name``: 24 lossless frames in chunks of 6."""
    settings: dict[str, Any] = {
        "source": EXAMPLES / "hello" / "index.html",
        "output": tmp_path / name,
        "frames": 24,
        "chunk_frames": 6,
    }
    settings.update(kwargs)
    return make_lossless_options(tmp_path, **settings)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The frames of a local render with one worker."""
    folder = tmp_path_factory.mktemp("reference")
    result = helios_render.render_sync(lossless(folder, "local.mp4", concurrency=1))
    return [frame.rgb for frame in decode_frames(result.output)]


@pytest.mark.browser
@pytest.mark.slow
async def test_a_cluster_render_decodes_to_the_frames_of_a_local_render(
    tmp_path: Path, client: Any, cluster_tmp: Path, reference: list[bytes]
) -> None:
    executor = DaskExecutor(client=client)
    states: list[RenderProgress] = []
    result = await helios_render.render(
        lossless(tmp_path, "cluster.mp4"), executor=executor, on_progress=states.append
    )
    assert result.workers == 2
    assert probe(result.output)["nb_read_frames"] == "24"
    frames = [frame.rgb for frame in decode_frames(result.output)]
    mismatched = [i for i, (a, b) in enumerate(zip(reference, frames, strict=True)) if a != b]
    assert not mismatched, f"frames differ from the local render: {mismatched}"
    values = [s.progress for s in states]
    assert values == sorted(values) and values[-1] == 1.0
    assert states[-1].stage == "done"
    # Which machine rendered which chunk; consecutive chunks stay on one worker.
    machines = states[-1].as_json()["machines"]
    assert isinstance(machines, list) and len(machines) == 4
    assert set(machines) == set(worker_pids(client))
    assert machines == sorted(machines, key=machines.index)  # runs, not interleaved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cluster.mp4"]
    assert_workers_clean(client, cluster_tmp)


@pytest.mark.browser
@pytest.mark.slow
async def test_a_page_that_throws_in_one_chunk_stops_every_task(
    tmp_path: Path, client: Any, cluster_tmp: Path
) -> None:
    # 4 chunks of 20 frames on 2 workers: chunks 0-1 on one, 2-3 on the other, which throws
    # at frame 45 (1.5 s) while the first worker is still rendering.
    options = lossless(
        tmp_path, "out.mp4", source=COMPOSITIONS / "throws_at.html", frames=80,
        chunk_frames=20, props={"throwAt": 1.5}, retries=1,
    )
    executor = DaskExecutor(client=client)
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(options, executor=executor)
    error = caught.value
    # Chunk 2 throws at frame 45; so does chunk 3 while it replays frames 0..59, when Dask
    # (work stealing) runs it on a worker of its own.
    assert error.chunk_index in (2, 3)
    assert error.frame == 45
    assert isinstance(error.__cause__, helios_render.PageError)
    assert "boom at 1500.0 ms" in str(error.__cause__)
    stats = executor.statistics()
    assert stats.retries == 0  # a page error is never retried
    # Every task ends promptly (about 1 s here when quiet; FFmpeg and Chromium teardown takes
    # longer on a loaded machine): a guard against a hang, not a speed bound.
    assert stats.stop_seconds is not None and stats.stop_seconds < 5.0
    assert_workers_clean(client, cluster_tmp, timeout=0.5)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.browser
@pytest.mark.slow
async def test_a_killed_worker_process_has_its_chunk_rerun_and_the_output_is_identical(
    tmp_path: Path, client: Any, cluster_tmp: Path, reference: list[bytes]
) -> None:
    pids = worker_pids(client)
    killed: list[str] = []

    def progress(state: RenderProgress) -> None:
        machine = state.machines[0] if state.machines else None
        if not killed and machine is not None and state.chunks[0] > 0:
            killed.append(machine)
            os.kill(pids[machine], signal.SIGKILL)

    executor = DaskExecutor(client=client)
    result = await helios_render.render(
        lossless(tmp_path, "out.mp4", retries=3), executor=executor, on_progress=progress
    )
    assert killed, "no worker was killed"
    assert executor.statistics().retries >= 1
    frames = [frame.rgb for frame in decode_frames(result.output)]
    assert len(frames) == 24
    mismatched = [i for i, (a, b) in enumerate(zip(reference, frames, strict=True)) if a != b]
    assert not mismatched, f"frames differ from the local render: {mismatched}"
    # The killed process's Chromium died with it (parent-death signal); its folders stay
    # until a sweep (a new worker process sweeps at its first chunk) finds their owner gone.
    assert not wait_no_processes(timeout=3.0, owner=pids[killed[0]])
    sweep_stale_dirs(cluster_tmp)
    assert_workers_clean(client, cluster_tmp, timeout=3.0)


@pytest.mark.browser
@pytest.mark.slow
async def test_an_interrupted_cluster_render_resumes_from_its_finished_chunks(
    tmp_path: Path, client: Any, cluster_tmp: Path, reference: list[bytes]
) -> None:
    options = lossless(tmp_path, "out.mp4")
    async with trio.open_nursery() as nursery:

        def progress(state: RenderProgress) -> None:
            if state.chunks[0] == 1.0:  # chunk 0 is in the job folder
                nursery.cancel_scope.cancel()

        nursery.start_soon(lambda: helios_render.render(
            options, executor=DaskExecutor(client=client), on_progress=progress))
    assert not (tmp_path / "out.mp4").exists()
    states: list[RenderProgress] = []
    result = await helios_render.render(
        options, executor=DaskExecutor(client=client), on_progress=states.append
    )
    assert result.frames_reused >= 6  # chunk 0 at least came from the job folder
    frames = [frame.rgb for frame in decode_frames(result.output)]
    assert frames == reference
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    sweep_stale_dirs(cluster_tmp)
    assert_workers_clean(client, cluster_tmp, timeout=3.0)


@pytest.mark.browser
@pytest.mark.slow
def test_a_failing_cli_cluster_render_prints_one_error_line_and_no_dask_logs(
    tmp_path: Path,
) -> None:
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "throws_at.html"),
         str(output), "--frames", "40", "--width", "320", "--height", "180",
         "--chunk-frames", "10", "--props", '{"throwAt": 0.5}', "--cluster", "local:2",
         "--progress", "none"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    # One error (the page's message, then its JavaScript stack), nothing from Dask.
    assert lines[0].startswith("helios-render: error: chunk "), result.stderr
    assert " on worker tcp://" in lines[0]  # the Dask worker that ran the chunk
    assert "boom at 500.0 ms" in lines[0]
    assert all(line.startswith("at ") for line in lines[1:]), result.stderr
    assert "Compute Failed" not in result.stderr and "distributed" not in result.stderr
    assert not output.exists()


@pytest.mark.browser
@pytest.mark.slow
async def test_cancelling_a_cluster_render_stops_every_remote_task(
    tmp_path: Path, client: Any, cluster_tmp: Path
) -> None:
    worker_pids(client)  # both workers up (an earlier test may have killed one)
    options = lossless(tmp_path, "out.mp4", source=COMPOSITIONS / "slow.html", frames=300,
                       chunk_frames=30)
    started = trio.Event()

    def progress(state: RenderProgress) -> None:
        if state.frames_done >= 4:
            started.set()

    executor = DaskExecutor(client=client)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: helios_render.render(options, executor=executor, on_progress=progress)
        )
        await started.wait()
        t0 = time.monotonic()
        nursery.cancel_scope.cancel()
    assert time.monotonic() - t0 < 5.0
    stats = executor.statistics()
    # Every task ends promptly (about 1 s here when quiet; FFmpeg and Chromium teardown takes
    # longer on a loaded machine): a guard against a hang, not a speed bound.
    assert stats.stop_seconds is not None and stats.stop_seconds < 5.0
    assert_workers_clean(client, cluster_tmp, timeout=0.5)
    assert not (tmp_path / "out.mp4").exists()
    (job,) = tmp_path.iterdir()
    assert job.name.startswith(".out.mp4.helios-job-")
    assert list((job / "partial").iterdir()) == []


@pytest.mark.browser
@pytest.mark.slow
def test_workers_say_which_files_draw_the_composition_s_fonts(client: Any) -> None:
    from helios_render._executors._dask_cluster import check_versions, gather_facts

    client.wait_for_workers(2, timeout=120)
    facts = gather_facts(client, None, None, False, ("DejaVu Sans", "sans-serif"))
    assert len(facts) == 2
    for worker in facts.values():
        assert worker["fonts"]["DejaVu Sans"].endswith("DejaVuSans.ttf"), worker["fonts"]
        assert Path(worker["fonts"]["sans-serif"]).is_file()
    assert check_versions(facts, allow_mixed=False) == sorted(facts)  # the same machine


@pytest.mark.browser
@pytest.mark.slow
def test_doctor_reports_every_worker_of_a_cluster(client: Any) -> None:
    address = client.scheduler.address
    result = subprocess.run(
        [sys.executable, "-m", "helios_render", "doctor", "--cluster", address],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for worker in worker_pids(client):
        assert f"worker {worker}" in result.stdout
    assert result.stdout.count("beginFrame:") == 2
    assert result.stdout.count("chromium=1") == 2
    assert "ready to render on 2 workers" in result.stdout


def _processes_with_tmpdir(folder: Path) -> set[int]:
    mark = f"TMPDIR={folder}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.browser
@pytest.mark.slow
def test_ctrl_c_to_the_cli_process_group_stops_a_local_cluster_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    folder = Path(tempfile.gettempdir())
    before = set(folder.iterdir())
    output = tmp_path / "out.mp4"
    with subprocess.Popen(
        [sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "slow.html"),
         str(output), "--frames", "300", "--width", "320", "--height", "180",
         "--cluster", "local:2", "--progress", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if json.loads(line).get("frames_done", 0) >= 2:
                    break
            else:
                raise AssertionError("the CLI ended before rendering")
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl+C in a terminal does
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines[0].startswith("helios-render: error: interrupted"), stderr
    assert len(lines) == 2 and "run the same command again to resume" in lines[1], stderr
    deadline = time.monotonic() + 10
    while _processes_with_tmpdir(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_with_tmpdir(folder), "worker processes outlived the CLI"
    left = {p for p in set(folder.iterdir()) - before if not p.name.startswith("org.chromium")}
    assert not left, f"left in the temp folder: {left}"
    # A local composition resolves to a folder source: the bundle carried it to the workers.
    assert isinstance(resolve_source(COMPOSITIONS / "slow.html")[0], FolderSource)
