"""The in-process frame count of MP4 and MOV files agrees with ffprobe, leaves what it does not
know to ffprobe, and never raises."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_render._model.mp4 import count_mp4_frames

from ..conftest import ffprobe_packets

ENCODERS = {
    "h264-ultrafast": ["-c:v", "libx264", "-preset", "ultrafast"],
    "h264-b-frames": ["-c:v", "libx264", "-preset", "medium"],  # an edit list for the delay
    "h265": ["-c:v", "libx265", "-x265-params", "log-level=error"],
    "av1": ["-c:v", "libsvtav1", "-preset", "12"],
}


def _encode(folder: Path, name: str, args: list[str], frames: int, suffix: str = ".mp4") -> Path:
    path = folder / f"{name}-{frames}{suffix}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=128x72:rate=30",
         "-frames:v", str(frames), *args, "-pix_fmt", "yuv420p", "-movflags", "+faststart",
         str(path)],
        check=True,
    )
    return path


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("frames", [1, 13])
def test_the_count_equals_ffprobes(tmp_path: Path, name: str, frames: int) -> None:
    path = _encode(tmp_path, name, ENCODERS[name], frames)
    assert count_mp4_frames(path) == ffprobe_packets(path) == frames


def test_a_prores_mov_and_a_file_without_faststart_are_counted(tmp_path: Path) -> None:
    mov = tmp_path / "p.mov"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x72:rate=30",
                    "-frames:v", "7", "-c:v", "prores_ks", str(mov)], check=True)
    assert count_mp4_frames(mov) == ffprobe_packets(mov) == 7
    late = tmp_path / "late.mp4"  # moov after mdat
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=128x72:rate=30",
                    "-frames:v", "9", "-c:v", "libx264", str(late)], check=True)
    assert count_mp4_frames(late) == ffprobe_packets(late) == 9


def test_what_it_does_not_know_is_left_to_ffprobe(tmp_path: Path) -> None:
    whole = _encode(tmp_path, "whole", ENCODERS["h264-b-frames"], 20)
    cut = tmp_path / "cut.mp4"  # an edit list that starts inside the media
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "0.3", "-i", str(whole), "-c", "copy",
                    str(cut)], check=True)
    assert count_mp4_frames(cut) is None
    fragmented = tmp_path / "fragmented.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(whole), "-c", "copy", "-movflags",
                    "frag_keyframe+empty_moov", str(fragmented)], check=True)
    assert count_mp4_frames(fragmented) is None
    data = whole.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[:200])
    assert count_mp4_frames(truncated) is None
    assert count_mp4_frames(tmp_path / "missing.mp4") is None
    (tmp_path / "text.mp4").write_bytes(b"not really a video")
    assert count_mp4_frames(tmp_path / "text.mp4") is None


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _encode(tmp_path_factory.mktemp("mp4"), "s", ENCODERS["h264-b-frames"], 4).read_bytes()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8))
def test_damaged_files_give_a_count_or_none_never_an_error(
    tmp_path: Path, sample: bytes, flips: list[tuple[int, int]]
) -> None:
    data = bytearray(sample)
    for at, value in flips:
        data[at % min(len(data), 2048)] = value  # the boxes are in the first 2 KiB (faststart)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))
    frames = count_mp4_frames(path)
    assert frames is None or frames >= 0
