"""FFmpeg helpers that need no FFmpeg: a stand-in ffprobe."""

from __future__ import annotations

from pathlib import Path

import pytest

from helios_render import EncoderError
from helios_render._ffmpeg import ffmpeg


async def test_a_hung_ffprobe_is_an_encoder_error_not_a_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A TooSlowError would reach the user as "unexpected TooSlowError (a bug)".
    hung = tmp_path / "ffprobe"
    hung.write_text("#!/bin/sh\nexec sleep 60\n")
    hung.chmod(0o755)
    chunk = tmp_path / "chunk-00000.mkv"
    chunk.write_bytes(b"")
    monkeypatch.setattr(ffmpeg, "PROBE_TIMEOUT", 0.2)
    with pytest.raises(EncoderError, match=r"ffprobe did not count the frames of chunk-00000\.mkv"):
        await ffmpeg.count_frames(hung, chunk)
