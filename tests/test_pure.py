"""Pure pieces: FFmpeg argument builders, chunk padding, option validation."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render import OptionsError, RenderOptions
from helios_render._ffmpeg import (
    EncoderSettings,
    concat_args,
    encoder_args,
    pad_transport_stream,
)
from helios_render._stitch import concat_list

FFMPEG = Path("/usr/bin/ffmpeg")


def _after(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_encoder_args_are_exact_about_rate_format_and_codec() -> None:
    settings = EncoderSettings(fps=Fraction(30000, 1001), width=1280, height=720, crf=0,
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


def test_h265_is_tagged_for_players() -> None:
    args = encoder_args(FFMPEG, EncoderSettings(fps=Fraction(24), width=64, height=64,
                                                codec="h265"), Path("c.ts"))
    assert "libx265" in args and _after(args, "-tag:v") == "hvc1"


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


def test_concat_list_quotes_paths_and_gives_exact_durations() -> None:
    text = concat_list(
        [(Path("/tmp/a.ts"), Fraction(12, 30)), (Path("/tmp/it's.ts"), Fraction(11 * 1001, 30000))]
    )
    assert text == (
        "file '/tmp/a.ts'\nduration 0.400000000\n"
        "file '/tmp/it'\\''s.ts'\nduration 0.367033333\n"
    )


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


def _options(**kwargs: object) -> RenderOptions:
    settings: dict[str, object] = {"source": "a.html", "output": "o.mp4", "frames": 10}
    settings.update(kwargs)
    return RenderOptions(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 641}, "width must be even"),
        ({"height": 0}, "height must be a whole number"),
        ({"width": 10000}, "at most"),
        ({"fps": "0"}, "fps must be positive"),
        ({"fps": "abc"}, "fps must be a number"),
        ({"frames": 0}, "frames must be at least 1"),
        ({"frames": None}, "give the number of frames"),
        ({"duration": 1}, "either frames or duration"),
        ({"start_frame": -1}, "start_frame"),
        ({"concurrency": 0}, "concurrency must be at least 1"),
        ({"codec": "libnothing"}, "unknown codec"),
        ({"crf": 52}, "crf must be"),
        ({"preset": "fastest"}, "unknown preset"),
        ({"image_format": "gif"}, "image_format"),
        ({"quality": 101}, "quality"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"retries": -1}, "retries"),
        ({"capture": "magic"}, "capture must be"),
        ({"props": {"x": object()}}, "JSON-serializable"),
        ({"source": " "}, "source is empty"),
    ],
)
def test_invalid_options_say_what_to_do(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        _options(**kwargs)


def test_duration_becomes_whole_frames() -> None:
    assert _options(frames=None, duration="3", fps="30000/1001").frame_count == 90
    assert _options(frames=None, duration=2.5, fps=24).frame_count == 60
    assert _options(fps=29.97).exact_fps == Fraction(2997, 100)
