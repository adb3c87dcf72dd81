"""Every output format, rendered for real and read back: codec, tag, pixel format, colour tags,
frame count, every frame's timestamp, duration, decoded colours and alpha; and the bad
combinations, which exit 2 with one line before anything starts.

The fixture (``compositions/formats.html``, 320x180) has a blue square, a half-transparent
green fill, an empty corner and a red square moving 10 px a frame. Each render is shared by
the assertions on it (rendered once per module, on first use); 12 frames in chunks of 4, so
every output has two seams.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import helios_render
from helios_render import RenderOptions

from ..conftest import COMPOSITIONS

FRAMES = 12
CHUNK = 4
W, H = 320, 180
PAGE = COMPOSITIONS / "formats.html"


@dataclass(frozen=True)
class Case:
    """One render of the fixture and what its output must be."""

    codec: str
    output: str
    concurrency: int = 3
    fps: int = 30
    start_frame: int = 0
    transparent: bool = False
    crf: int | None = None
    image_format: str | None = None
    #: ffprobe's view of the output.
    pix_fmt: str = "yuv420p"
    tag: str | None = None
    codec_name: str | None = None
    #: Largest channel difference from the expected colour.
    tolerance: int = 48
    #: How to decode it (libvpx for VP9 alpha).
    decoder: str | None = None

    @property
    def alpha(self) -> bool:
        return self.transparent

    @property
    def yuv(self) -> bool:
        return self.codec not in ("gif", "png")


CASES = {
    "h264": Case("h264", "out.mp4", crf=0, image_format="png", tag="avc1", tolerance=8),
    "h264-1": Case("h264", "one.mp4", concurrency=1, crf=0, image_format="png", tag="avc1",
                   tolerance=8),
    "h265": Case("h265", "out.mp4", tag="hvc1", codec_name="hevc"),
    "vp9-alpha": Case("vp9", "out.webm", transparent=True, decoder="libvpx-vp9"),
    "vp8": Case("vp8", "out.webm", tolerance=56),
    "prores-4444": Case("prores", "out.mov", transparent=True, pix_fmt="yuva444p12le",
                        tag="ap4h", tolerance=12),
    "av1-webm": Case("av1", "out.webm", tolerance=56),
    "av1-mkv": Case("av1", "out.mkv", concurrency=1, tolerance=56),
    "gif": Case("gif", "out.gif", fps=25, pix_fmt="bgra", tolerance=40),
    "png": Case("png", "frames", start_frame=3, transparent=True, pix_fmt="rgba", tolerance=1),
    "png-1": Case("png", "one/f-%05d.png", concurrency=1, start_frame=3, transparent=True,
                  pix_fmt="rgba", tolerance=1),
}


class Renders:
    """Renders each case once, on first use, into a folder shared by the module."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.done: dict[str, Path] = {}

    def __call__(self, name: str) -> Path:
        if name not in self.done:
            case = CASES[name]
            folder = self.root / name
            folder.mkdir()
            output = folder / case.output
            if "/" in case.output:
                output.parent.parent.mkdir(exist_ok=True)
            options = RenderOptions(
                source=PAGE, output=output, width=W, height=H, fps=case.fps, frames=FRAMES,
                start_frame=case.start_frame, chunk_frames=CHUNK, concurrency=case.concurrency,
                codec=case.codec, transparent=case.transparent, crf=case.crf,
                image_format=case.image_format,  # type: ignore[arg-type]
            )
            helios_render.render_sync(options)
            self.done[name] = options.target_path
        return self.done[name]


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    return Renders(tmp_path_factory.mktemp("formats"))


def _ffprobe(path: Path, *entries: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json", "-show_streams",
         "-show_format", *entries, os.fspath(path)],
        capture_output=True, text=True, check=True,
    ).stdout
    return dict(json.loads(out))


def _decode(path: Path, pix_fmt: str, decoder: str | None = None) -> list[bytes]:
    args = ["ffmpeg", "-v", "error"]
    if decoder:
        args += ["-c:v", decoder]
    args += ["-i", os.fspath(path), "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt",
             pix_fmt, "-"]
    raw = subprocess.run(args, capture_output=True, check=True).stdout
    size = W * H * (4 if pix_fmt == "rgba" else 3)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _frames_of(case: Case, output: Path) -> list[bytes]:
    """Every decoded frame of ``output``, as RGBA (alpha 255 without --transparent)."""
    if case.codec == "png":
        files = sorted(output.iterdir())
        return [_decode(f, "rgba")[0] for f in files]
    return _decode(output, "rgba", case.decoder)


def _pixel(frame: bytes, x: int, y: int) -> tuple[int, int, int, int]:
    i = (y * W + x) * 4
    return frame[i], frame[i + 1], frame[i + 2], frame[i + 3]


def _close(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def _expected(case: Case, frame: int) -> list[tuple[int, int, tuple[int, int, int, int] | None]]:
    """(x, y, RGBA) probes of composition frame ``frame``; ``None``: any colour."""
    red_left = round(300 * Fraction(frame, case.fps))
    background = (0, 0, 0, 0) if case.alpha else (255, 255, 255, 255)
    half = (0, 255, 0, 128) if case.alpha else (128, 255, 128, 255)
    return [
        (40, 40, (0, 0, 255, 255)),
        (130, 40, half),
        (285, 30, background),
        (red_left + 10, 130, (255, 0, 0, 255)),
        (red_left + 30, 130, background) if red_left + 30 < W else (5, 170, background),
        (200, 170, background),
    ]


pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("clean_processes")]


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n].codec != "png"])
def test_each_codec_writes_exact_frames_times_tags_and_colours(
    renders: Renders, name: str
) -> None:
    case = CASES[name]
    output = renders(name)
    info = _ffprobe(output, "-count_packets", "-show_entries", "packet=pts_time")
    stream = info["streams"][0]
    assert stream["codec_name"] == (case.codec_name or case.codec)
    if case.tag:
        assert stream["codec_tag_string"] == case.tag
    assert stream["pix_fmt"] == case.pix_fmt
    assert (stream["width"], stream["height"]) == (W, H)
    if case.yuv:
        assert (stream["color_space"], stream["color_range"], stream["color_transfer"],
                stream["color_primaries"]) == ("bt709", "tv", "bt709", "bt709")
    if case.codec == "vp9" and case.alpha:
        assert stream["tags"]["ALPHA_MODE"] == "1"
    assert int(stream["nb_read_packets"]) == FRAMES
    # Every frame at k / fps: within one tick of the container's clock (1 ms in WebM and
    # Matroska, 1 cs in GIF), never drifting at the chunk seams.
    tick = Fraction(stream["time_base"])
    pts = sorted(Fraction(p["pts_time"]) for p in info["packets"])
    assert len(pts) == FRAMES
    for k, t in enumerate(pts):
        assert abs(t - Fraction(k, case.fps)) < tick, (k, float(t))
    assert abs(Fraction(info["format"]["duration"]) - Fraction(FRAMES, case.fps)) <= tick
    frames = _frames_of(case, output)
    assert len(frames) == FRAMES
    for k, frame in enumerate(frames):
        for x, y, colour in _expected(case, case.start_frame + k):
            if colour is not None:
                got = _pixel(frame, x, y)
                assert _close(got, colour, case.tolerance), (k, x, y, got, colour)


def test_gif_loops_forever(renders: Renders) -> None:
    data = renders("gif").read_bytes()
    assert data[:6] == b"GIF89a"
    assert b"NETSCAPE2.0\x03\x01\x00\x00" in data  # loop count 0: forever


def test_png_sequence_is_a_new_folder_of_frames_numbered_by_composition_frame(
    renders: Renders,
) -> None:
    folder = renders("png")
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"{k:05d}.png" for k in range(3, 3 + FRAMES)]
    case = CASES["png"]
    assert _ffprobe(folder / "00003.png")["streams"][0]["pix_fmt"] == "rgba"
    frames = _frames_of(case, folder)
    for k, frame in enumerate(frames):
        for x, y, colour in _expected(case, 3 + k):
            assert colour is not None
            assert _close(_pixel(frame, x, y), colour, case.tolerance)
    pattern = renders("png-1")
    assert sorted(p.name for p in pattern.iterdir()) == [
        f"f-{k:05d}.png" for k in range(3, 3 + FRAMES)
    ]
    # Nothing but the frames was left beside them: no job folder, no log.
    assert sorted(p.name for p in pattern.parent.iterdir()) == ["one"]


def test_alpha_is_half_over_the_fill_and_zero_over_nothing(renders: Renders) -> None:
    for name in ("vp9-alpha", "prores-4444", "png"):
        case = CASES[name]
        frame = _frames_of(case, renders(name))[0]
        half = _pixel(frame, 130, 40)[3]
        empty = _pixel(frame, 285, 30)[3]
        assert abs(half - 128) <= 3, (name, half)
        assert empty == 0, (name, empty)
        assert _pixel(frame, 40, 40)[3] == 255, name


def test_lossless_renders_decode_identically_with_one_and_three_workers(
    renders: Renders,
) -> None:
    assert _decode(renders("h264"), "rgb24") == _decode(renders("h264-1"), "rgb24")
    three, one = renders("png"), renders("png-1")
    for k in range(3, 3 + FRAMES):
        assert _decode(three / f"{k:05d}.png", "rgba") == _decode(one / f"f-{k:05d}.png", "rgba")


DEFAULT_SHELL = "/opt/helios-headless-shell/unpacked/chromium"
SHELL = os.environ.get("HELIOS_HEADLESS_SHELL") or (
    DEFAULT_SHELL if os.access(DEFAULT_SHELL, os.X_OK) else None
)


@pytest.mark.beginframe
@pytest.mark.skipif(SHELL is None, reason="needs chrome-headless-shell (see scripts/)")
def test_transparency_holds_on_the_begin_frame_path(tmp_path: Path) -> None:
    output = tmp_path / "frames"
    helios_render.render_sync(RenderOptions(
        source=PAGE, output=output, width=W, height=H, fps=30, frames=4, start_frame=5,
        concurrency=1, codec="png", transparent=True, capture="beginframe", browser=SHELL,
    ))
    case = CASES["png"]
    frames = _frames_of(case, output)
    assert len(frames) == 4
    for k, frame in enumerate(frames):
        for x, y, colour in _expected(case, 5 + k):
            assert colour is not None
            assert _close(_pixel(frame, x, y), colour, 1), (k, x, y, _pixel(frame, x, y))


# --- bad combinations: exit 2, one line, nothing started, nothing written -----------------


@pytest.fixture
def browser_stub(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A "browser" that answers ``--version`` and otherwise leaves a mark: a render that gets
    as far as launching a browser is caught."""
    mark = tmp_path / "launched"
    stub = tmp_path / "stub-chromium"
    stub.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--version*) echo "Chromium 120.0.0.0"; exit 0;; esac\n'
        f"touch {mark}\nexit 1\n"
    )
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    yield stub, mark


def _ffmpeg_without(tmp_path: Path, missing: tuple[str, ...]) -> Path:
    """An FFmpeg that lists the real encoders but ``missing`` (and is the real one otherwise)."""
    real = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True,
                          text=True, check=True).stdout
    listing = tmp_path / "encoders.txt"
    listing.write_text("\n".join(
        line for line in real.splitlines() if not any(f" {m} " in line for m in missing)
    ))
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *-encoders*) cat {listing}; exit 0;; esac\n'
        'exec ffmpeg "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


BAD: list[tuple[str, list[str], str]] = [
    ("out.mp4", ["--codec", "vp9"], "write out.webm"),
    ("out.webm", ["--codec", "h264"], "write out.mp4, or give --codec vp9 or vp8 or av1"),
    ("out.mov", ["--codec", "vp9"], "--codec vp9 writes .webm, .mkv"),
    ("out.webm", ["--codec", "vp9", "--crf", "64"], "from 0 to 63 for --codec vp9"),
    ("out.mp4", ["--crf", "52"], "from 0 to 51 for --codec h264"),
    ("out.webm", ["--codec", "vp8", "--crf", "2"], "from 4 to 63"),
    ("out.mov", ["--codec", "prores", "--crf", "10"], "prores has no --crf"),
    ("out.mp4", ["--transparent"], "use one of vp9, vp8, prores, png"),
    ("out.gif", ["--codec", "gif", "--transparent"], "cannot carry transparency"),
    ("out.mov", ["--codec", "prores", "--transparent", "--prores-profile", "hq"],
     "use --prores-profile 4444 or 4444xq"),
    ("out.mp4", ["--prores-profile", "4444"], "only for --codec prores"),
    ("out.webm", ["--codec", "vp9", "--preset", "veryfast"], "choose one of realtime"),
    ("out.gif", ["--codec", "gif", "--image-format", "jpeg"], "needs PNG frames"),
    ("frames/a-%d-%d.png", ["--codec", "png"], "exactly one %d"),
    ("@exists", ["--codec", "png"], "already exists"),
    ("out.mkv", ["--codec", "av1", "@no-av1"], "no libsvtav1 or libaom-av1 encoder"),
]


@pytest.mark.parametrize(("output", "args", "expected"), BAD)
def test_bad_combinations_exit_2_with_one_line_before_anything_starts(
    tmp_path: Path,
    browser_stub: tuple[Path, Path],
    output: str,
    args: list[str],
    expected: str,
) -> None:
    stub, mark = browser_stub
    work = tmp_path / "work"
    work.mkdir()
    if output == "@exists":
        output = "frames"
        (work / "frames").mkdir()
    if "@no-av1" in args:
        args = [a for a in args if a != "@no-av1"]
        args += ["--ffmpeg", os.fspath(_ffmpeg_without(tmp_path, ("libsvtav1", "libaom-av1")))]
    before = sorted(p.name for p in work.iterdir())
    result = subprocess.run(
        [sys.executable, "-m", "helios_render", "render", os.fspath(PAGE),
         os.fspath(work / output), "--frames", "3", "--width", "64", "--height", "64",
         "--browser", os.fspath(stub), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("helios-render: error:"), lines
    assert expected in lines[0], lines[0]
    assert not mark.exists(), "a browser was launched"
    assert sorted(p.name for p in work.iterdir()) == before


def test_doctor_lists_every_codec_with_yes_or_no() -> None:
    result = subprocess.run([sys.executable, "-m", "helios_render", "doctor"],
                            capture_output=True, text=True, timeout=120, check=False)
    lines = result.stdout.splitlines()
    for codec in ("h264", "h265", "vp9", "vp8", "prores", "av1", "gif", "png"):
        line = next((x for x in lines if x.strip().startswith(f"--codec {codec} ")), None)
        assert line is not None, result.stdout
        assert line.rstrip().split(": ", 1)[1].split()[0] in ("yes", "no"), line

