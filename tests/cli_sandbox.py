"""The command line run in a sandbox: a private TMPDIR, HOME and working folder, and an older
output that a failure must leave untouched. Used by the CLI tests that need no browser
(tests/unit/test_cli.py) and by the hostile-input tests (tests/integration/test_hostile.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .conftest import wait_no_orphans, wait_no_processes

OLD = b"an older render that must survive"

#: What a render writes under HOME: what the tools said of themselves (versions, encoders,
#: which browsers have the beginFrame path) and compositions' own timings.
OUR_CACHE = {".cache", ".cache/helios-render", ".cache/helios-render/tools.json"}


def listing(folder: Path) -> set[str]:
    """Every path under ``folder``, relative to it."""
    return {os.fsdecode(p.relative_to(folder)) for p in folder.rglob("*")}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("helios-render: ")]


@dataclass
class Sandbox:
    """A private TMPDIR, HOME and working folder for one CLI run, and an output folder that
    holds an older output."""

    root: Path
    tmp: Path = field(init=False)
    home: Path = field(init=False)
    cwd: Path = field(init=False)
    output: Path = field(init=False)

    def __post_init__(self) -> None:
        # A short TMPDIR, as on most machines: Chromium's Unix sockets live in it.
        self.tmp = Path(tempfile.mkdtemp(prefix="hz-", dir="/tmp"))
        self.home, self.cwd = self.root / "home", self.root / "cwd"
        self.output = self.root / "out" / "out.mp4"
        for folder in (self.home, self.cwd, self.output.parent):
            folder.mkdir()
        self.output.write_bytes(OLD)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.tmp), "HOME": str(self.home)}

    def spawn(self, *args: str | bytes, **kwargs: object) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            [sys.executable, "-m", "helios_render", *args],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, **kwargs,
        )

    def run(self, *args: str | bytes, timeout: float = 60) -> Run:
        started = time.monotonic()
        with self.spawn(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise AssertionError(f"the CLI did not end within {timeout} s") from None
        run = Run(
            process.returncode,
            stdout.decode("utf-8", "replace"),
            stderr.decode("utf-8", "replace"),
            time.monotonic() - started,
        )
        assert not wait_no_processes(owner=process.pid), "processes left running"
        return run

    def check_left_as_found(
        self, *, output_replaced: bool = False, job_kept: bool = False
    ) -> None:
        """Nothing written anywhere but the output, our capability cache in HOME, and (after
        an interruption, ``job_kept``) the job folder of finished chunks for a resume."""
        assert listing(self.tmp) == set(), "the private TMPDIR changed"
        assert listing(self.home) <= OUR_CACHE, "something was written under HOME (~/Downloads?)"
        assert listing(self.cwd) == set(), "something was written in the working folder"
        beside = listing(self.output.parent) - {"out.mp4"}
        jobs = {p for p in beside if "/" not in p and p.startswith(".out.mp4.helios-job-")}
        if job_kept:
            assert len(jobs) == 1, beside
            (job,) = jobs
            # The lock file stays in a kept job folder (released; for the next owner).
            kept = {job, f"{job}/manifest.json", f"{job}/chunks", f"{job}/partial"}
            assert beside - {f"{job}/.helios-lock"} == kept | {
                p for p in beside if p.startswith(f"{job}/chunks/")
            }, "something half-written beside the output"
        else:
            assert beside == set(), "something beside the output"
        if not output_replaced:
            assert self.output.read_bytes() == OLD, "an existing output was touched"


def assert_one_error_line(run: Run, code: int, *expected: str) -> None:
    assert run.returncode == code, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert "sub-exception" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if "helios-render: error:" in line]
    assert len(errors) == 1, run.stderr
    assert errors[0].startswith("helios-render: error: "), run.stderr
    for text in expected:
        assert text in errors[0], run.stderr


@contextmanager
def open_sandbox(root: Path) -> Iterator[Sandbox]:
    """A :class:`Sandbox` in ``root``; on exit its TMPDIR is removed and no orphaned process of
    ours may be left."""
    box = Sandbox(root)
    try:
        yield box
    finally:
        shutil.rmtree(box.tmp, ignore_errors=True)
    assert not wait_no_orphans()
