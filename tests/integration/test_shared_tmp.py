"""Two renders in two PID namespaces (two containers, or a container and the host) sharing one
temp folder: each sees the other's pids as dead (or as other processes), and yet neither's
sweep removes a folder of the other while it runs (the owner holds a lock on it, which the
kernel keeps for it in any namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ..conftest import COMPOSITIONS, probe

#: In each namespace, once the test says so, a sweep of the shared temp folder (besides the
#: one each render does when it starts); it prints what it removed.
SWEEP = (
    "import os, sys, time, json; from pathlib import Path; "
    "from helios_render._tempdirs import sweep_stale_dirs\n"
    "go = Path(sys.argv[1])\n"
    "while not go.exists(): time.sleep(0.05)\n"
    "swept = sweep_stale_dirs(Path(os.environ['TMPDIR']))\n"
    "print(json.dumps({'swept': [str(p) for p in swept]}), file=sys.stderr)\n"
)


def _unshare_works() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-p", "-f", "--mount-proc", "true"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(not _unshare_works(),
                                reason="needs root and unshare -p (PID namespaces)")


def _in_namespace(output: Path, go: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A render in a PID namespace of its own (it is pid 1 or 2 there), and a sweep."""
    render = " ".join([
        sys.executable, "-m", "helios_render", "render", str(COMPOSITIONS / "slow.html"),
        str(output), "--frames", "24", "--chunk-frames", "6", "--concurrency", "2",
        "--width", "320", "--height", "180", "--progress", "json",
    ])
    script = f"{render} & r=$!; {sys.executable} -c \"$SWEEP\" {go}; wait $r"
    return subprocess.Popen(
        ["unshare", "-p", "-f", "--mount-proc", "sh", "-c", script],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "SWEEP": SWEEP},
        start_new_session=True,
    )


@pytest.mark.browser
@pytest.mark.slow
def test_two_renders_in_two_pid_namespaces_sharing_tmp_both_succeed_while_each_sweeps(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    env = {**os.environ, "TMPDIR": str(shared)}
    go = tmp_path / "go"
    outputs = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    rendering = [threading.Event(), threading.Event()]
    processes: list[subprocess.Popen[str]] = []

    def watch(index: int, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if json.loads(line).get("frames_done", 0) >= 1:
                rendering[index].set()

    try:
        threads = []
        for index, output in enumerate(outputs):
            process = _in_namespace(output, go, env)
            processes.append(process)
            thread = threading.Thread(target=watch, args=(index, process), daemon=True)
            thread.start()
            threads.append(thread)
            # The second starts (and sweeps) once the first renders, its folders in place.
            assert rendering[index].wait(timeout=120), "a render did not start"
        assert list(shared.glob("helios-*")), "the renders made no folders in the shared tmp"
        go.touch()  # both render: now each namespace sweeps again
        codes = [process.wait(timeout=180) for process in processes]
        for thread in threads:
            thread.join(timeout=10)
        stderr = [process.stderr.read() if process.stderr else "" for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, 9)
                process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    assert codes == [0, 0], stderr
    for output in outputs:
        assert probe(output)["nb_read_frames"] == "24"
    # Each sweep ran (and found nothing of the other to remove while it ran).
    for text in stderr:
        [swept] = [json.loads(line)["swept"] for line in text.splitlines() if '"swept"' in line]
        assert swept == [], text
    assert not list(shared.glob("helios-*")), "folders left in the shared temp folder"

