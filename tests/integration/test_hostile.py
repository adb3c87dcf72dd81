"""Hostile and careless input, through the real command line: every case ends in bounded
time with the documented exit code, one ``helios-render: error:`` line (or none on success)
and no traceback, no process left, the private ``TMPDIR`` and ``HOME`` as they were, nothing
written outside the output path, and an existing output untouched by a failure."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..cli_sandbox import Run, Sandbox, assert_one_error_line, open_sandbox
from ..conftest import COMPOSITIONS, decode_frames, probe, wait_no_processes

HOSTILE = COMPOSITIONS / "hostile"
SMALL = ("--width", "320", "--height", "180")


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with open_sandbox(tmp_path) as box:
        yield box


def assert_success(run: Run, box: Sandbox, frames: int) -> None:
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert "helios-render: error" not in run.stderr, run.stderr
    assert probe(box.output)["nb_read_frames"] == str(frames)
    box.check_left_as_found(output_replaced=True)


# --- 1. a composition cannot write files on the user's disk --------------------------------


@pytest.mark.browser
def test_a_download_started_by_the_page_is_refused(sandbox: Sandbox) -> None:
    run = sandbox.run(
        "render", str(HOSTILE / "downloads.html"), str(sandbox.output), *SMALL,
        "--frames", "5", "--progress", "none",
    )
    assert_success(run, sandbox, 5)  # nothing under HOME: no ~/Downloads
    assert "refused a download" in run.stderr
    assert run.seconds < 60


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("clip.bin", os.urandom(4096), "would be served as application/octet-stream"),
        ("clip.mp4", os.urandom(4096), "would be served as video/mp4"),
        ("binary.html", b"\x00\x01\x02" + os.urandom(4096), "is a binary file"),
    ],
    ids=["bin", "mp4", "html"],
)
def test_a_local_source_that_is_not_a_page_is_a_usage_error(
    sandbox: Sandbox, name: str, content: bytes, expected: str
) -> None:
    source = sandbox.root / "src" / name
    source.parent.mkdir()
    source.write_bytes(content)
    run = sandbox.run("render", str(source), str(sandbox.output), *SMALL, "--frames", "3")
    assert_one_error_line(run, 2, "SOURCE is not an HTML page:", expected)
    assert run.seconds < 20
    sandbox.check_left_as_found()


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder served by Python's own http.server (another server than ours)."""
    folder = tmp_path / "www"
    folder.mkdir()
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    with subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    ) as server:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "http.server did not start"
                time.sleep(0.05)
        try:
            yield folder, port
        finally:
            server.terminate()
            server.wait()


@pytest.mark.browser
@pytest.mark.parametrize(
    ("name", "expected"),
    [("data.bin", "is served as a download"), ("image.png", "is image/png, not a page")],
)
def test_a_url_that_is_not_a_page_is_a_usage_error(
    sandbox: Sandbox, http_folder: tuple[Path, int], name: str, expected: str
) -> None:
    folder, port = http_folder
    if name.endswith(".png"):
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:size=16x16",
             "-frames:v", "1", str(folder / name)],
            check=True,
        )
    else:
        (folder / name).write_bytes(os.urandom(4096))
    run = sandbox.run(
        "render", f"http://127.0.0.1:{port}/{name}", str(sandbox.output), *SMALL,
        "--frames", "3", "--capture", "screenshot",
    )
    assert_one_error_line(run, 2, "SOURCE is not an HTML page:", expected)
    assert run.seconds < 30
    sandbox.check_left_as_found()


# --- 2. window.open() from a frame callback -----------------------------------------------


@pytest.mark.browser
def test_windows_opened_by_the_page_are_closed_and_its_frames_captured(
    sandbox: Sandbox,
) -> None:
    run = sandbox.run(
        "render", str(HOSTILE / "popup.html"), str(sandbox.output), *SMALL,
        "--frames", "6", "--timeout", "5", "--image-format", "png", "--crf", "0",
        "--progress", "none", timeout=90,
    )
    frames = decode_frames(sandbox.output)
    assert_success(run, sandbox, 6)
    assert "closed a window the composition opened" in run.stderr
    for frame in frames:  # the composition's green, never the popup's red
        red, green, blue = frame.pixel(160, 90)
        assert green > 200 and red < 50 and blue < 50, frame.pixel(160, 90)


# --- 3. the temp folder is left as it was found ---------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("outcome", ["ok", "failed", "cancelled"])
def test_a_render_leaves_the_temp_folder_as_it_found_it(sandbox: Sandbox, outcome: str) -> None:
    # --capture auto: the beginFrame probe starts a Chromium of its own, then two workers.
    page = {"ok": "css_linear.html", "failed": "throws_at.html", "cancelled": "slow.html"}
    args = [
        "render", str(COMPOSITIONS / page[outcome]), str(sandbox.output), *SMALL,
        "--frames", "60" if outcome != "cancelled" else "300", "--concurrency", "2",
        "--progress", "json",
    ]
    if outcome == "failed":
        args += ["--props", '{"throwAt": 1}']
    if outcome != "cancelled":
        run = sandbox.run(*args, timeout=120)
        if outcome == "ok":
            assert_success(run, sandbox, 60)
        else:
            assert_one_error_line(run, 1, "boom")
            sandbox.check_left_as_found()
        return
    with sandbox.spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        for line in process.stdout:
            if b'"frames_done": 2' in line or b'"frames_done": 3' in line:
                break
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
        stderr = process.stderr.read().decode()
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert not wait_no_processes(owner=process.pid)
    # Interrupted: the finished chunks stay beside the output for a resume, nothing else.
    sandbox.check_left_as_found(job_kept=True)


# --- 4. a page that reloads itself ----------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize("attempt", range(3))
def test_a_page_that_reloads_itself_says_navigated_away_every_time(
    sandbox: Sandbox, attempt: int
) -> None:
    run = sandbox.run(
        "render", str(HOSTILE / "reloads.html"), str(sandbox.output), *SMALL,
        "--frames", "10", "--timeout", "5", "--progress", "none",
    )
    assert_one_error_line(run, 1, "navigated away")
    assert run.seconds < 30
    sandbox.check_left_as_found()


# --- 5. a closed or full stdout -------------------------------------------------------------


@pytest.mark.browser
def test_closed_stdout_stops_progress_quietly_and_the_render_goes_on(sandbox: Sandbox) -> None:
    # helios-render ... --progress json | head -n 1
    with sandbox.spawn(
        "render", str(COMPOSITIONS / "css_linear.html"), str(sandbox.output), *SMALL,
        "--frames", "20", "--progress", "json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        assert process.wait(timeout=60) == 0
        stderr = process.stderr.read().decode()
    assert b'"event": "progress"' in first
    assert "Traceback" not in stderr and "error" not in stderr, stderr
    assert probe(sandbox.output)["nb_read_frames"] == "20"
    sandbox.check_left_as_found(output_replaced=True)


@pytest.mark.browser
def test_full_stdout_stops_progress_with_one_warning(sandbox: Sandbox) -> None:
    with open("/dev/full", "wb") as full:
        run_started = time.monotonic()
        process = sandbox.spawn(
            "render", str(COMPOSITIONS / "css_linear.html"), str(sandbox.output), *SMALL,
            "--frames", "10", "--progress", "json", stdout=full, stderr=subprocess.PIPE,
        )
        _, stderr_bytes = process.communicate(timeout=60)
    stderr = stderr_bytes.decode()
    assert process.returncode == 0, stderr
    assert time.monotonic() - run_started < 60
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [
        "helios-render: warning: progress output stopped: No space left on device"
    ]
    assert probe(sandbox.output)["nb_read_frames"] == "10"
    sandbox.check_left_as_found(output_replaced=True)


# --- 6. a file name that is not UTF-8 -------------------------------------------------------


@pytest.mark.browser
def test_a_file_name_that_is_not_utf8_renders(sandbox: Sandbox) -> None:
    folder = sandbox.root / "src"
    folder.mkdir()
    name = os.fsdecode(b"sc\xe8ne.html")  # Latin-1 "scène": valid on Linux, not UTF-8
    (folder / name).write_bytes((COMPOSITIONS / "css_linear.html").read_bytes())
    run = sandbox.run(
        "render", os.fsencode(folder / name), str(sandbox.output), *SMALL, "--frames", "4",
        "--progress", "none",
    )
    assert_success(run, sandbox, 4)


# --- 9. a console flood ---------------------------------------------------------------------


@pytest.mark.browser
def test_a_console_flood_does_not_slow_the_render(sandbox: Sandbox) -> None:
    # 100,000 console lines per frame took about 13 s per frame.
    run = sandbox.run(
        "render", str(HOSTILE / "console_flood.html"), str(sandbox.output), *SMALL,
        "--frames", "5", "--timeout", "10", "--progress", "none", timeout=120,
    )
    assert_success(run, sandbox, 5)
    assert run.seconds < 40


@pytest.mark.browser
def test_a_console_flood_does_not_defeat_the_frame_timeout(sandbox: Sandbox) -> None:
    run = sandbox.run(
        "render", str(HOSTILE / "console_flood_never_ready.html"), str(sandbox.output),
        *SMALL, "--frames", "5", "--timeout", "2", "--capture", "screenshot",
    )
    assert_one_error_line(run, 1, "frame 0 was not ready within 2 s", "flooded")
    assert run.seconds < 30
    sandbox.check_left_as_found()


# --- 10. a host that accepts and never answers ----------------------------------------------


@pytest.mark.browser
def test_a_host_that_never_answers_is_exit_2(sandbox: Sandbox) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        run = sandbox.run(
            "render", f"http://127.0.0.1:{port}/", str(sandbox.output), *SMALL,
            "--frames", "3", "--timeout", "2", "--capture", "screenshot",
        )
    assert_one_error_line(run, 2, "no answer within 2 s")
    assert run.seconds < 20
    sandbox.check_left_as_found()
