"""FFmpeg's side: argument builders for chunks and the concat, chunk padding, and count_frames
(ffprobe run through ``_process.spawn``, its answer read from a file, its failures and timeouts
mapped to :class:`EncoderError`, never a ``trio.TooSlowError``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render import EncoderError
from helios_render._ffmpeg import ffmpeg
from helios_render._ffmpeg.ffmpeg import (
    concat_args,
    count_frames,
    encoder_args,
    pad_transport_stream,
)

from ..factories import make_encoder

FFMPEG = Path("/usr/bin/ffmpeg")


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_encoder_args_are_exact_about_rate_format_and_codec() -> None:
    settings = make_encoder(fps=Fraction(30000, 1001), width=1280, height=720, crf=0,
                            preset="ultrafast", image_format="png")
    args = encoder_args(FFMPEG, settings, Path("/tmp/chunk.ts"))
    assert _after(args, "-framerate") == "30000/1001"
    assert _after(args, "-i") == "pipe:0"
    assert args[args.index("-i") - 1] == "png"
    assert _after(args, "-c:v") == "png" and args.count("-c:v") == 2
    assert "libx264" in args and _after(args, "-crf") == "0"
    assert _after(args, "-preset") == "ultrafast"
    assert "scale=1280:720" in _after(args, "-vf") and "yuv420p" in _after(args, "-vf")
    assert args[-1] == "/tmp/chunk.ts"
    assert _after(args, "-f") == "image2pipe"
    assert args[args.index("-f", args.index("-i")) + 1] == "mpegts"


def test_encoder_threads_are_bounded_only_when_asked() -> None:
    settings = make_encoder()
    args = encoder_args(FFMPEG, settings, Path("/tmp/chunk.ts"), threads=1)
    assert _after(args, "-threads") == "1"
    assert args.index("-threads") > args.index("-i")  # an output option: the encoder's
    assert "-threads" not in encoder_args(FFMPEG, settings, Path("/tmp/chunk.ts"))


def test_h265_is_tagged_for_players_on_the_concat_not_on_the_chunk() -> None:
    args = encoder_args(FFMPEG, make_encoder(fps=Fraction(24), width=64, height=64,
                                             codec="h265"), Path("c.ts"))
    assert "libx265" in args and "-tag:v" not in args  # it would do nothing in MPEG-TS
    for suffix in (".mp4", ".mov"):
        joined = concat_args(FFMPEG, Path("l.txt"), Path(f"o{suffix}"), "h265")
        assert _after(joined, "-tag:v") == "hvc1"
    assert "-tag:v" not in concat_args(FFMPEG, Path("l.txt"), Path("o.mkv"), "h265")
    assert "-tag:v" not in concat_args(FFMPEG, Path("l.txt"), Path("o.mp4"), "h264")


@pytest.mark.parametrize(("suffix", "container", "faststart"),
                         [(".mp4", "mp4", True), (".mov", "mov", True),
                          (".mkv", "matroska", False)])
def test_concat_args_stream_copy_into_the_container_of_the_suffix(
    suffix: str, container: str, faststart: bool
) -> None:
    args = concat_args(FFMPEG, Path("/w/list.txt"), Path(f"/o/out{suffix}"))
    assert _after(args, "-c") == "copy"
    assert args[-3:-1] == ["-f", container]
    assert ("+faststart" in args) is faststart


def test_short_chunks_are_padded_with_null_packets(tmp_path: Path) -> None:
    chunk = tmp_path / "c.ts"
    chunk.write_bytes(b"\x47" + b"\x00" * 187)
    pad_transport_stream(chunk, minimum=2000)
    data = chunk.read_bytes()
    assert len(data) >= 2000 and len(data) % 188 == 0
    assert all(data[i] == 0x47 for i in range(0, len(data), 188))
    assert data[189:191] == b"\x1f\xff"  # PID 0x1FFF: null packets
    size = len(data)
    pad_transport_stream(chunk, minimum=1000)
    assert chunk.stat().st_size == size


@pytest.mark.skipif(not FFMPEG.exists(), reason="needs ffmpeg")
def test_a_padded_tiny_chunk_is_readable_by_ffprobe(tmp_path: Path) -> None:
    chunk = tmp_path / "tiny.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x64:r=30:d=0.1",
                    "-c:v", "libx264", "-f", "mpegts", str(chunk)], check=True)
    pad_transport_stream(chunk)
    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(chunk)],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out and set(out) == {"3"}  # the stream, listed once per program it is in


def _fake_ffprobe(folder: Path, body: str) -> Path:
    script = folder / "ffprobe"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def _clip(folder: Path) -> Path:
    clip = folder / "clip.mp4"
    clip.write_bytes(b"not really a video")
    return clip


async def test_a_hung_ffprobe_is_an_encoder_error_naming_the_file_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    ffprobe = _fake_ffprobe(tmp_path, f'echo $$ > "{pid_file}"\nexec sleep 30\n')
    clip = _clip(tmp_path)
    monkeypatch.setattr(ffmpeg, "PROBE_TIMEOUT", 0.5)
    with pytest.raises(EncoderError) as caught:
        await count_frames(ffprobe, clip)
    message = str(caught.value)
    assert message.startswith("ffprobe did not answer within 0.5 s reading clip.mp4")
    assert message.endswith("check that the disk is not stalled, then rerun to resume")
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # gone and reaped: not even a zombie is left
        os.kill(pid, 0)
    # Its answer and log files are not left beside the clip.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "ffprobe", "pid"]


async def test_the_count_is_read_from_the_answer_file(tmp_path: Path) -> None:
    # What ffprobe writes for MPEG-TS: the stream once per program too; the counts agree.
    ffprobe = _fake_ffprobe(tmp_path, (
        'while [ $# -gt 0 ]; do\n'
        '  if [ "$1" = "-o" ]; then printf "42,\\n42\\n" > "$2"; fi\n'
        '  shift\n'
        'done\n'
    ))
    assert await count_frames(ffprobe, _clip(tmp_path)) == 42
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "ffprobe"]


async def test_an_unreadable_file_quotes_ffprobe(tmp_path: Path) -> None:
    ffprobe = _fake_ffprobe(tmp_path, 'echo "clip.mp4: Invalid data found" >&2\nexit 1\n')
    with pytest.raises(EncoderError, match=r"cannot read clip\.mp4 back with ffprobe: "
                       r"clip\.mp4: Invalid data found$"):
        await count_frames(ffprobe, _clip(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "ffprobe"]


async def test_an_ffprobe_that_cannot_start_is_an_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="could not start ffprobe at"):
        await count_frames(tmp_path / "missing-ffprobe", _clip(tmp_path))


@pytest.fixture
def ffv1_clip(tmp_path: Path) -> Path:
    """Six frames of FFV1 in Matroska (not MPEG-TS: counted by ffprobe, not in-process)."""
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("needs ffmpeg and ffprobe")
    clip = tmp_path / "clip.mkv"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x64:r=30:d=0.2",
                    "-c:v", "ffv1", str(clip)], check=True)
    return clip


async def test_a_real_ffprobe_counts_the_frames_of_a_file(ffv1_clip: Path) -> None:
    ffprobe = shutil.which("ffprobe")
    assert ffprobe is not None
    assert await count_frames(Path(ffprobe), ffv1_clip) == 6
    assert [p.name for p in ffv1_clip.parent.iterdir()] == ["clip.mkv"]


#: RGB colours and what BT.709 limited-range YUV makes of them (Y, Cb, Cr), exactly.
_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0), (128, 128, 128),
            (200, 100, 50), (30, 180, 220), (250, 250, 10), (17, 33, 99)]


def _bt709(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    r, g, b = (c / 255 for c in rgb)
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 16 + 219 * y, 128 + 224 * (b - y) / 1.8556, 128 + 224 * (r - y) / 1.5748


@pytest.mark.parametrize("colorspace_filter", [True, False])
def test_a_chromium_jpeg_becomes_bt709_tv_range_within_a_code_value(
    tmp_path: Path, colorspace_filter: bool
) -> None:
    # A JPEG as Chromium writes one: BT.601 full-range YUV 4:2:0 of sRGB, flat 32x32 squares.
    if colorspace_filter and not ffmpeg.has_colorspace_filter(FFMPEG):
        pytest.skip("this FFmpeg has no colorspace filter")
    width, height = 32 * len(_COLOURS), 32
    rgb = b"".join(bytes(c) * 32 for c in _COLOURS) * height
    jpeg = tmp_path / "frame.jpg"
    subprocess.run([FFMPEG, "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s",
                    f"{width}x{height}", "-i", "-", "-vf",
                    "scale=out_color_matrix=bt601:out_range=pc,format=yuvj420p", "-q:v", "1",
                    str(jpeg)], input=rgb, check=True)
    settings = make_encoder(width=width, height=height)
    args = encoder_args(FFMPEG, settings, tmp_path / "c.ts", colorspace_filter=colorspace_filter)
    chain = _after(args, "-vf")
    assert ("colorspace=all=" in chain) is colorspace_filter
    yuv = subprocess.run([FFMPEG, "-v", "error", "-i", str(jpeg), "-vf", chain, "-f", "rawvideo",
                          "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout
    plane = width * height
    for k, colour in enumerate(_COLOURS):
        x = 32 * k + 16
        got = (yuv[16 * width + x], yuv[plane + 8 * (width // 2) + x // 2],
               yuv[plane + plane // 4 + 8 * (width // 2) + x // 2])
        worst = max(abs(g - e) for g, e in zip(got, _bt709(colour), strict=True))
        # The colorspace filter is within 0.75 of the exact value (the JPEG's own rounding
        # included); scale, which it replaces where it can, within 1.6.
        assert worst < (0.8 if colorspace_filter else 1.6), (colour, got)
