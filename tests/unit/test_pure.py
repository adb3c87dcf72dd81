"""Pure pieces: FFmpeg argument builders, chunk padding, option validation."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render import OptionsError, RenderOptions
from helios_render._chromium.capture import BeginFrameCapture
from helios_render._ffmpeg.ffmpeg import concat_args, encoder_args, pad_transport_stream
from helios_render._model.job import EncoderSettings
from helios_render._output.stitch import concat_list

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


def test_encoder_threads_are_bounded_only_when_asked() -> None:
    settings = EncoderSettings(fps=Fraction(30), width=320, height=180)
    args = encoder_args(FFMPEG, settings, Path("/tmp/chunk.ts"), threads=1)
    assert _after(args, "-threads") == "1"
    assert args.index("-threads") > args.index("-i")  # an output option: the encoder's
    assert "-threads" not in encoder_args(FFMPEG, settings, Path("/tmp/chunk.ts"))


def test_h265_is_tagged_for_players_on_the_concat_not_on_the_chunk() -> None:
    args = encoder_args(FFMPEG, EncoderSettings(fps=Fraction(24), width=64, height=64,
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


def test_concat_list_quotes_paths_and_gives_exact_durations() -> None:
    text = concat_list(
        [(Path("/tmp/a.ts"), Fraction(12, 30)), (Path("/tmp/it's.ts"), Fraction(11 * 1001, 30000))]
    )
    assert text == (
        "file '/tmp/a.ts'\nduration 0.400000000\n"
        "file '/tmp/it'\\''s.ts'\nduration 0.367033333\n"
    )
    with_options = concat_list([(Path("/tmp/a.ts"), Fraction(1))], [("probesize", "65536")])
    assert with_options == "file '/tmp/a.ts'\noption probesize 65536\nduration 1.000000000\n"


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
        ({"duration": 1}, "either frames or duration"),
        ({"start_frame": -1}, "start_frame"),
        ({"concurrency": 0}, "concurrency must be from 1 to 64"),
        ({"concurrency": 1000}, "concurrency must be from 1 to 64"),
        ({"fps": 1e-9}, "fps must be from 0.01 to 240"),
        ({"fps": "1/1000000000"}, "fps must be from 0.01 to 240"),
        ({"fps": 241}, "fps must be from 0.01 to 240"),
        ({"frames": 10**10}, "frames must be at most 10,000,000"),
        ({"frames": None, "duration": "1e9"}, "frames must be at most"),
        ({"start_frame": 10**7}, "start_frame \\+ frames must be at most"),
        ({"codec": "libnothing"}, "unknown codec"),
        ({"crf": 52}, "crf must be a whole number from 0 to 51"),
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


def test_left_out_timing_is_taken_from_the_composition() -> None:
    unset = _options(frames=None)
    assert unset.timing_from_page and unset.fps is None
    with pytest.raises(OptionsError, match="give the number of frames"):
        unset.frame_count  # noqa: B018 - reading it is the check
    # Neither given: the composition's own fps and duration (2.1 s is 21/10 s exactly).
    taken = unset.with_page_timing(12.0, 2.1)
    assert (taken.exact_fps, taken.frame_count, taken.timing_from_page) == (Fraction(12), 25, False)
    # The user's fps wins; the length still comes from the page.
    given = _options(frames=None, fps="30000/1001").with_page_timing(60.0, 3.0)
    assert (given.exact_fps, given.frame_count) == (Fraction(30000, 1001), 90)
    # The user's length wins; a page without an fps leaves the default 30.
    length = _options(frames=7)
    assert length.timing_from_page
    assert (length.with_page_timing(None, None).exact_fps, length.frame_count) == (Fraction(30), 7)
    assert not _options(frames=7, fps=30).timing_from_page
    with pytest.raises(OptionsError, match=r"declares no duration.*--frames N"):
        unset.with_page_timing(25.0, None)


def test_duration_becomes_whole_frames() -> None:
    assert _options(frames=None, duration="3", fps="30000/1001").frame_count == 90
    assert _options(frames=None, duration=2.5, fps=24).frame_count == 60
    assert _options(fps=29.97).exact_fps == Fraction(2997, 100)


@given(st.lists(st.tuples(st.floats(0, 0.2), st.integers(0, 7)), min_size=1, max_size=40))
def test_begin_frame_times_tell_new_frames_from_retries_and_keep_up_with_the_clock(
    steps: list[tuple[float, int]],
) -> None:
    # (seconds the clock moves before a capture, retries that capture needs)
    clock = [1000.0]
    capture = BeginFrameCapture(Fraction(30), clock=lambda: clock[0])
    interval = 1000 / 30
    previous: float | None = None
    for elapsed, retries in steps:
        clock[0] += elapsed
        first = capture._ticks(0)
        assert first >= clock[0] * 1000  # never behind the clock
        if previous is not None:
            assert first - previous >= interval  # a new frame: at least one interval on
        last = first
        for attempt in range(1, retries + 1):
            ticks = capture._ticks(attempt)
            assert ticks - last == pytest.approx(interval / 64)  # a retry: just after
            last = ticks
        assert last - first < interval / 2  # what the runtime takes for the same frame
        previous = last
