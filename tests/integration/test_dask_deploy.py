"""A cluster as people deploy it: ``dask scheduler`` and ``dask worker`` processes started with
Dask's own command line (see tests/dask_cli.py), each worker with its own temp folder and home.

Each worker goes through its chunks in ascending order (an rAF page never goes back and
replays), and the frames are those of a local render.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helios_render
from helios_render import DaskExecutor, RenderOptions, RenderProgress

from ..conftest import COMPOSITIONS, EXAMPLES, decode_frames, probe
from ..dask_cli import Certificates, DaskCLICluster, dask_cli_cluster, make_certificates
from ..factories import make_lossless_options, make_options

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCLICluster]:
    with dask_cli_cluster(tmp_path_factory.mktemp("dask-cli-2"), 2) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskCLICluster]:
    with dask_cli_cluster(tmp_path_factory.mktemp("dask-cli-1"), 1) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def tls_worker(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[DaskCLICluster]:
    """A scheduler and one worker that speak TLS only, with certificates made for the test."""
    with dask_cli_cluster(
        tmp_path_factory.mktemp("dask-cli-tls"), 1, protocol="tls",
        scheduler_args=certificates.node_args, worker_args=certificates.node_args,
    ) as cluster:
        assert cluster.address.startswith("tls://")
        yield cluster


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    return subprocess.run([sys.executable, "-m", "helios_render", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def hello(tmp_path: Path, name: str, **kwargs: Any) -> RenderOptions:
    """The hello example: 24 lossless frames in chunks of 3 (8 chunks, 4 per worker)."""
    settings: dict[str, Any] = {
        "source": EXAMPLES / "hello" / "index.html", "output": tmp_path / name,
        "frames": 24, "chunk_frames": 3,
    }
    settings.update(kwargs)
    return make_lossless_options(tmp_path, **settings)


def starts_by_worker(starts: tuple[tuple[int, str], ...]) -> dict[str, list[int]]:
    by_worker: dict[str, list[int]] = {}
    for chunk, worker in starts:
        by_worker.setdefault(worker, []).append(chunk)
    return by_worker


@pytest.mark.browser
@pytest.mark.slow
async def test_each_worker_takes_a_run_of_chunks_in_ascending_order_and_frames_match_local(
    tmp_path: Path, two_workers: DaskCLICluster
) -> None:
    local = await helios_render.render(hello(tmp_path, "local.mp4", concurrency=1))
    executor = DaskExecutor(two_workers.address)
    result = await helios_render.render(hello(tmp_path, "cluster.mp4"), executor=executor)
    stats = executor.statistics()
    by_worker = starts_by_worker(stats.starts)
    assert len(by_worker) == 2, (stats.starts, two_workers.logs())
    for worker, chunks in by_worker.items():
        assert chunks == sorted(chunks), f"{worker} started its chunks out of order: {chunks}"
        # A run: consecutive chunks, so the page only ever goes forward by one chunk.
        assert chunks == list(range(chunks[0], chunks[0] + len(chunks))), chunks
    assert sorted(itertools.chain(*by_worker.values())) == list(range(8))
    # Only the lead-in of the second run is run without capture (the hello page animates
    # with rAF): frames 0..10 before its first frame, 12; never a chunk's frames twice.
    second = max(chunks[0] for chunks in by_worker.values())
    assert stats.replayed_frames == second * 3 - 1
    assert probe(result.output)["nb_read_frames"] == "24"
    expected = [frame.rgb for frame in decode_frames(local.output)]
    frames = [frame.rgb for frame in decode_frames(result.output)]
    assert frames == expected


@pytest.mark.browser
@pytest.mark.slow
async def test_the_replayed_frame_count_counts_what_a_worker_runs_before_a_chunk(
    tmp_path: Path, one_worker: DaskCLICluster
) -> None:
    # Starting at frame 100, an rAF page runs frames 0..98 without capture, then draws 99.
    options = make_options(
        tmp_path, source=COMPOSITIONS / "raf_canvas.html", frames=20, start_frame=100,
        chunk_frames=10, fps=30,
    )
    executor = DaskExecutor(one_worker.address)
    await helios_render.render(options, executor=executor)
    assert executor.statistics().replayed_frames == 99


@pytest.mark.browser
@pytest.mark.slow
async def test_an_raf_page_of_600_frames_in_60_chunks_on_one_worker_costs_what_it_costs_locally(
    tmp_path: Path, one_worker: DaskCLICluster
) -> None:
    options = make_options(
        tmp_path, source=COMPOSITIONS / "raf_canvas.html", frames=600, chunk_frames=10, fps=30,
    )
    executor = DaskExecutor(one_worker.address)
    result = await helios_render.render(options, executor=executor)
    stats = executor.statistics()
    assert probe(result.output)["nb_read_frames"] == "600"
    [chunks] = starts_by_worker(stats.starts).values()
    assert chunks == list(range(60))
    # A local render with one worker runs each of the 600 frames once (no replay); the
    # cluster's cost is its frames plus those it ran again to go back.
    assert 600 + stats.replayed_frames <= 1.3 * 600, stats.replayed_frames
    assert stats.replayed_frames == 0


@pytest.mark.browser
@pytest.mark.slow
async def test_a_tls_cluster_renders_the_frames_of_a_local_render(
    tmp_path: Path, tls_worker: DaskCLICluster, certificates: Certificates
) -> None:
    local = await helios_render.render(hello(tmp_path, "local.mp4", chunk_frames=6))
    output = tmp_path / "tls.mp4"
    result = cli(
        "render", str(EXAMPLES / "hello" / "index.html"), str(output), "--frames", "24",
        "--chunk-frames", "6", "--width", "320", "--height", "180", "--fps", "30",
        "--image-format", "png", "--crf", "0", "--progress", "none",
        "--cluster", tls_worker.address, "--tls-ca-file", str(certificates.ca),
        "--tls-cert", str(certificates.client_cert), "--tls-key", str(certificates.client_key),
    )
    assert result.returncode == 0, result.stderr + tls_worker.logs()
    frames = [frame.rgb for frame in decode_frames(output)]
    assert len(frames) == 24
    assert frames == [frame.rgb for frame in decode_frames(local.output)]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["render", "doctor"])
def test_tls_without_certificates_exits_2_within_10_s_with_one_line(
    tmp_path: Path, tls_worker: DaskCLICluster, command: str
) -> None:
    args = [str(EXAMPLES / "hello" / "index.html"), str(tmp_path / "out.mp4"), "--frames", "3"]
    started = time.monotonic()
    assert cli("--help", timeout=60).returncode == 0
    startup = time.monotonic() - started  # Python and the command line, on a busy machine
    started = time.monotonic()
    result = cli(command, *(args if command == "render" else []),
                 "--cluster", tls_worker.address, timeout=60)
    took = time.monotonic() - started - startup
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--tls-ca-file" in lines[0] and "Traceback" not in result.stderr
    assert took < 10
    assert not list(tmp_path.iterdir())  # nothing was started, nothing left


@pytest.mark.slow
def test_a_client_certificate_of_another_ca_is_refused_in_one_line(
    tmp_path: Path, tls_worker: DaskCLICluster
) -> None:
    stranger = make_certificates(tmp_path / "other", name="another-ca")
    started = time.monotonic()
    result = cli(
        "doctor", "--cluster", tls_worker.address, "--tls-ca-file", str(stranger.ca),
        "--tls-cert", str(stranger.client_cert), "--tls-key", str(stranger.client_key),
        timeout=120,
    )
    took = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], result.stderr
    assert "--tls-ca-file" in lines[0]
    assert took < 30


@pytest.mark.browser
@pytest.mark.slow
async def test_a_worker_that_stops_answering_hands_its_chunks_to_the_other_one(
    tmp_path: Path, two_workers: DaskCLICluster
) -> None:
    local = await helios_render.render(hello(tmp_path, "local.mp4"))
    stopped = two_workers.worker_address(1)
    paused: list[float] = []

    def progress(state: RenderProgress) -> None:
        machines = state.as_json().get("machines")
        # Once it renders a chunk, it stops answering.
        if not paused and isinstance(machines, list) and stopped in machines:
            two_workers.signal_worker(1, signal.SIGSTOP)
            paused.append(time.monotonic())

    executor = DaskExecutor(two_workers.address, stall_timeout=8)
    try:
        result = await helios_render.render(
            hello(tmp_path, "cluster.mp4"), executor=executor, on_progress=progress
        )
        finished = time.monotonic()
    finally:
        two_workers.signal_worker(1, signal.SIGCONT)
    stats = executor.statistics()
    assert paused, "the second worker never rendered"
    assert stats.stalls == 1 and list(stats.dropped) == [stopped], stats
    assert "did not report progress for 8 s" in stats.dropped[stopped]
    assert finished - paused[0] < 8 + 60  # the stall timeout, then the other worker's work
    # The other worker went through its own run, then took over the rest of the stopped
    # one's, each in order: its page went back once at most.
    other = [chunk for chunk, worker in stats.starts if worker != stopped]
    assert set(range(8)) <= {c for c, _ in stats.starts}
    assert sum(b < a for a, b in itertools.pairwise(other)) <= 1, other
    frames = [frame.rgb for frame in decode_frames(result.output)]
    assert frames == [frame.rgb for frame in decode_frames(local.output)]


@pytest.mark.browser
@pytest.mark.slow
def test_a_render_whose_only_worker_stops_answering_fails_in_one_line_after_the_stall_timeout(
    tmp_path: Path, one_worker: DaskCLICluster
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    paused = None
    with subprocess.Popen(
        [sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "slow.html"),
         str(tmp_path / "out.mp4"), "--frames", "24", "--chunk-frames", "6", "--width", "320",
         "--height", "180", "--cluster", one_worker.address, "--stall-timeout", "5",
         "--progress", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as process:
        try:
            assert process.stdout is not None
            for line in process.stdout:
                if json.loads(line).get("frames_done", 0) >= 1:
                    one_worker.signal_worker(0, signal.SIGSTOP)
                    paused = time.monotonic()
                    break
            code = process.wait(timeout=120)
            ended = time.monotonic()
        finally:
            one_worker.signal_worker(0, signal.SIGCONT)
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.stderr is not None
        stderr = process.stderr.read()
    assert paused is not None, stderr
    assert code == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("helios-render: error")]
    assert len(errors) == 1, stderr
    assert one_worker.worker_address(0) in errors[0]
    assert "did not report progress for 5 s" in errors[0]
    assert ended - paused < 5 + 30


@pytest.mark.browser
@pytest.mark.slow
def test_doctor_checks_delivery_to_every_worker_and_lists_the_ports_to_open(
    two_workers: DaskCLICluster,
) -> None:
    result = cli("doctor", "--cluster", two_workers.address, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("delivery:   ok") == 2, result.stdout
    ports = result.stdout.split("ports a render needs open:")[1]
    assert two_workers.address.removeprefix("tcp://") in ports
    for index in range(2):
        assert f"the scheduler -> worker {two_workers.worker_address(index)}" in ports
    assert "--nanny-port" in ports and "never connect to each other" in ports
