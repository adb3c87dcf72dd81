"""The in-process frame count of MPEG-TS chunks agrees with ffprobe, and never raises."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_render._ffmpeg.ffmpeg import pad_transport_stream
from helios_render._model import mpegts as _mpegts
from helios_render._model.mpegts import TS_PACKET, count_ts_frames

from ..conftest import ffprobe_packets


def _encode(folder: Path, codec: str, frames: int) -> Path:
    path = folder / f"{codec}-{frames}.ts"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x36:rate=30",
         "-frames:v", str(frames), "-c:v", codec, "-pix_fmt", "yuv420p",
         *(["-x265-params", "log-level=error"] if codec == "libx265" else []),
         "-f", "mpegts", "-mpegts_copyts", "1", str(path)],
        check=True,
    )
    return path


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
@pytest.mark.parametrize("frames", [1, 2, 13, 61])
def test_the_count_equals_ffprobes_padded_or_not(tmp_path: Path, codec: str, frames: int) -> None:
    path = _encode(tmp_path, codec, frames)
    assert count_ts_frames(path) == ffprobe_packets(path) == frames
    pad_transport_stream(path)  # null packets, as every short chunk gets
    assert path.stat().st_size >= 64 * 1024
    assert count_ts_frames(path) == ffprobe_packets(path) == frames


def test_what_is_no_transport_stream_is_left_to_ffprobe(tmp_path: Path) -> None:
    path = _encode(tmp_path, "libx264", 5)
    data = path.read_bytes()
    cut = tmp_path / "cut.ts"
    cut.write_bytes(data[: len(data) - 100])  # truncated mid-packet
    assert count_ts_frames(cut) is None
    shifted = tmp_path / "shifted.ts"
    shifted.write_bytes(b"\0" * TS_PACKET + data[1:] + b"\0")  # sync lost
    assert count_ts_frames(shifted) is None
    empty = tmp_path / "empty.ts"
    empty.write_bytes(b"")
    assert count_ts_frames(empty) is None
    no_video = tmp_path / "nulls.ts"
    no_video.write_bytes((b"\x47\x1f\xff\x10" + b"\xff" * 184) * 4)
    assert count_ts_frames(no_video) is None


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _encode(tmp_path_factory.mktemp("ts"), "libx264", 4).read_bytes()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_damaged_streams_give_a_count_or_none_never_an_error(
    tmp_path: Path, sample: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(sample)
    for at, value in flips:
        data[at % len(data)] = value
    path = tmp_path / "damaged.ts"
    path.write_bytes(bytes(data))
    frames = count_ts_frames(path)
    assert frames is None or 0 <= frames <= len(data) // TS_PACKET


@settings(max_examples=500)
@given(st.binary(min_size=12, max_size=TS_PACKET))
def test_any_table_section_is_read_without_an_error(section: bytes) -> None:
    pids = _mpegts._pmt_pids(section)
    assert all(0 <= pid < 0x2000 for pid in pids)
    pid = _mpegts._video_pid(section)
    assert pid is None or 0 <= pid < 0x2000
