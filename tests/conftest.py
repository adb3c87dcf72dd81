"""Shared helpers: real tools, frame decoding, process scans."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from helios_render._process import OWNER_ENV

# Tests hold on a busy machine (another render may run beside the suite): no per-example
# deadline, which would fail on a slow moment rather than on a wrong answer.
settings.register_profile("helios", deadline=None)
settings.load_profile("helios")

COMPOSITIONS = Path(__file__).parent / "compositions"
EXAMPLES = Path(__file__).parent.parent / "examples"


def _have_tools() -> bool:
    try:
        from helios_render._chromium.browser import find_browser

        find_browser()
    except Exception:
        return False
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


HAVE_TOOLS = _have_tools()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAVE_TOOLS:
        return
    if os.environ.get("CI"):
        # In CI the tools are installed by .ci/run; a missing one is a failure, not a skip.
        raise pytest.UsageError("CI=true but Chromium or FFmpeg is missing")
    skip = pytest.mark.skip(reason="needs Chromium and FFmpeg (apt-get install chromium ffmpeg)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def private_tmpdir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Each test gets its own temp folder (``TMPDIR``, inherited by Chromium and FFmpeg), so
    that what it leaves there is its own, whatever else runs on the machine."""
    path = tmp_path_factory.mktemp("tmpdir")
    monkeypatch.setenv("TMPDIR", str(path))
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    yield path


@dataclass(frozen=True)
class Frame:
    """One decoded RGB frame."""

    width: int
    height: int
    rgb: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        i = (y * self.width + x) * 3
        return self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]

    def crop(self, left: int, top: int, right: int, bottom: int) -> bytes:
        """The RGB bytes of the rectangle [left, right) x [top, bottom), row by row."""
        return b"".join(
            self.rgb[(y * self.width + left) * 3:(y * self.width + right) * 3]
            for y in range(top, bottom)
        )

    def first_x(self, y: int, predicate: object) -> int | None:
        """The leftmost x on row ``y`` whose pixel satisfies ``predicate``."""
        assert callable(predicate)
        for x in range(self.width):
            if predicate(self.pixel(x, y)):
                return x
        return None


def probe(path: Path) -> dict[str, str]:
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
            "-show_entries",
            "stream=codec_name,width,height,r_frame_rate,avg_frame_rate,nb_read_frames,pix_fmt",
            "-of", "default=noprint_wrappers=1", str(path),
        ],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.strip().splitlines())


def ffprobe_packets(path: Path) -> int:
    """The video packets ffprobe counts in ``path`` (the reference for in-process counts)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=nb_read_packets", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return int(out.split()[0].strip(","))


def decode_frames(path: Path, indices: list[int] | None = None) -> list[Frame]:
    """Decode frames of a video to RGB (all, or the given indices in order)."""
    info = probe(path)
    width, height = int(info["width"]), int(info["height"])
    args = ["ffmpeg", "-v", "error", "-i", str(path)]
    if indices is not None:
        select = "+".join(f"eq(n\\,{i})" for i in indices)
        args += ["-vf", f"select={select}", "-fps_mode", "passthrough"]
    args += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(args, capture_output=True, check=True).stdout
    size = width * height * 3
    frames = [Frame(width, height, raw[i : i + size]) for i in range(0, len(raw), size)]
    if indices is not None:
        assert len(frames) == len(indices), f"decoded {len(frames)} of {len(indices)} frames"
    return frames


@dataclass(frozen=True)
class Proc:
    pid: int
    session: int
    owner: int | None  # the helios_render owner mark in its environment, if any
    argv0: str
    cmdline: str  # the whole command line (Chromium's helpers rewrite theirs into one string)


def process_table() -> dict[int, Proc]:
    """Live (non-zombie) processes of this machine."""
    table = {}
    prefix = f"{OWNER_ENV}=".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            environ = (entry / "environ").read_bytes().split(b"\0")
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] == "Z":
            continue
        marks = [item[len(prefix) :] for item in environ if item.startswith(prefix)]
        owner = int(marks[0]) if marks else None
        argv0 = argv[0].decode("utf-8", "replace")
        cmdline = b" ".join(argv).decode("utf-8", "replace")
        table[int(entry.name)] = Proc(int(entry.name), int(fields[3]), owner, argv0, cmdline)
    return table


def _with_sessions(table: dict[int, Proc], leaders: set[int]) -> set[int]:
    # Chromium's zygote, GPU and renderer processes lose the environment mark but stay in the
    # session of the browser we started (its own session leader).
    return leaders | {p.pid for p in table.values() if p.session in leaders}


def our_processes(owner: int | None = None) -> set[int]:
    """Live processes that helios_render started from ``owner`` (default: this process), and
    their helpers: marked ones and everything in their sessions."""
    table = process_table()
    owner = owner or os.getpid()
    marked = {p.pid for p in table.values() if p.owner == owner}
    return _with_sessions(table, marked)


def orphans() -> set[int]:
    """Live processes started by a helios_render that no longer exists, with their helpers,
    and Chromium helpers of this test whose browser is gone.

    A helper is this test's when its command line names the test's own temp folder (the
    profile and crash database of every Chromium we launch live there): another render on the
    machine, or another test's browser, is not counted (their crash handlers also sit in
    sessions of their own)."""
    table = process_table()
    marked = {p.pid for p in table.values() if p.owner is not None and p.owner not in table}
    found = _with_sessions(table, marked)
    browsers = ("chrom", "headless")
    ours = tempfile.gettempdir()
    found |= {
        p.pid
        for p in table.values()
        if p.session not in table
        and any(b in p.argv0 for b in browsers)
        and p.owner is None
        and ours in p.cmdline
    }
    return found


def wait_no_orphans(timeout: float = 3.0) -> set[int]:
    """Orphaned processes still alive after ``timeout`` seconds (ideally none)."""
    deadline = time.monotonic() + timeout
    while True:
        left = orphans()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def wait_no_processes(timeout: float = 3.0, owner: int | None = None) -> set[int]:
    """Our processes still alive after ``timeout`` seconds (ideally none)."""
    deadline = time.monotonic() + timeout
    while True:
        left = our_processes(owner)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


@pytest.fixture
def clean_processes() -> Iterator[None]:
    """Fail the test if it leaves a Chromium or FFmpeg of ours running."""
    before = our_processes()
    yield
    # Reaped means gone at once; a short wait covers Chromium helpers that the kernel is
    # still tearing down after SIGKILL.
    left = wait_no_processes() - before
    assert not left, f"processes left running: {left}"
