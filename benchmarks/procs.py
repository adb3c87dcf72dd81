"""The processes of this render, read from /proc: resident memory and CPU time per process, by
role (this Python, each Chromium with all its helpers, each FFmpeg), and open descriptors.

Chromium and FFmpeg carry ``HELIOS_RENDER_OWNER=<our pid>`` in their environment (see
``helios_render._process``); a Chromium's helpers (zygote, renderers, GPU) are found by the
session the browser leads. A :class:`ProcessSampler` samples every ``interval`` seconds; CPU
times are kept per pid at their last value, so processes that ended still count.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from helios_render._process import OWNER_ENV

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class ProcessInfo:
    pid: int
    session: int
    name: str
    rss: int  # bytes
    cpu: float  # seconds, user + system
    fds: int


def _read(pid: int) -> ProcessInfo | None:
    base = Path("/proc") / str(pid)
    try:
        stat = (base / "stat").read_text()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        session = int(fields[3])
        cpu = (int(fields[11]) + int(fields[12])) / TICKS
        rss = int((base / "statm").read_text().split()[1]) * PAGE_SIZE
        try:
            fds = len(os.listdir(base / "fd"))
        except OSError:
            fds = 0
        return ProcessInfo(pid, session, name, rss, cpu, fds)
    except (OSError, ValueError, IndexError):
        return None


def _owned(owner: int) -> set[int]:
    """Processes started by helios_render in process ``owner`` (marked in their environment)."""
    mark = f"{OWNER_ENV}={owner}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


@dataclass(slots=True)
class Sample:
    """One reading: seconds since the sampler started, RSS per group (Python, each Chromium
    by its leader's pid, each FFmpeg), open descriptors of this Python."""

    at: float
    python_rss: int
    chromium_rss: dict[int, int]
    ffmpeg_rss: dict[int, int]
    python_fds: int


@dataclass(slots=True)
class ProcessSampler:
    """Samples the render's processes; ``samples`` over time, CPU seconds by role."""

    interval: float = 1.0
    owner: int = field(default_factory=os.getpid)
    samples: list[Sample] = field(default_factory=list)
    cpu: dict[int, tuple[str, float]] = field(default_factory=dict)  # pid -> (role, seconds)
    started: float = field(default_factory=time.monotonic)

    def sample(self) -> Sample:
        me = _read(self.owner)
        marked = [info for pid in _owned(self.owner) if (info := _read(pid)) is not None]
        leaders = {info.pid for info in marked if info.pid == info.session}
        sessions = {info.session for info in marked}
        helpers: list[ProcessInfo] = []
        if sessions:
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit() and int(entry.name) not in leaders:
                    info = _read(int(entry.name))
                    if info is not None and info.session in sessions and info not in marked:
                        helpers.append(info)
        chromium: dict[int, int] = {}
        ffmpeg: dict[int, int] = {}
        seen = {info.pid for info in marked}
        for info in [*marked, *[h for h in helpers if h.pid not in seen]]:
            role = "ffmpeg" if info.name.startswith("ffmpeg") else "chromium"
            group = ffmpeg if role == "ffmpeg" else chromium
            group[info.session] = group.get(info.session, 0) + info.rss
            self.cpu[info.pid] = (role, info.cpu)
        if me is not None:
            self.cpu[self.owner] = ("python", me.cpu)
        reading = Sample(
            at=time.monotonic() - self.started,
            python_rss=me.rss if me else 0,
            chromium_rss=chromium,
            ffmpeg_rss=ffmpeg,
            python_fds=me.fds if me else 0,
        )
        self.samples.append(reading)
        return reading

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            await trio.to_thread.run_sync(self.sample)
            await trio.sleep(self.interval)

    def cpu_by_role(self) -> dict[str, float]:
        """CPU seconds used so far by role (processes that ended count at their last reading)."""
        totals: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            totals[role] = totals.get(role, 0.0) + seconds
        return totals
