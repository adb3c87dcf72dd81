"""FFmpeg's side, purely: argument builders for chunks and the concat, chunk padding."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render._ffmpeg.ffmpeg import concat_args, encoder_args, pad_transport_stream

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
