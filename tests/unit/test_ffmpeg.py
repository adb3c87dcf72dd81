"""count_frames: ffprobe run through ``_process.spawn``, its answer read from a file, and its
failures and timeouts mapped to :class:`EncoderError` (never a ``trio.TooSlowError``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helios_render import EncoderError
from helios_render._ffmpeg import ffmpeg
from helios_render._ffmpeg.ffmpeg import count_frames


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
    assert "run again" in message
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
