"""The audio mix's I/O: where a media URL is read from, and ffprobe on a source."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render import MediaError
from helios_render._ffmpeg import mix
from helios_render._ffmpeg.mix import LocalMedia, probe_channels
from helios_render._model.audio_plan import localize_sources, plan_audio
from helios_render._model.job import MediaRecord

FPS = Fraction(30)


def test_local_media_maps_server_urls_to_files_and_nothing_outside(tmp_path: Path) -> None:
    local = LocalMedia("http://127.0.0.1:9", tmp_path)
    assert local.resolve("http://127.0.0.1:9/sub/a%20b.wav") == str(tmp_path / "sub" / "a b.wav")
    assert local.resolve("https://example.com/x.mp3") == "https://example.com/x.mp3"
    assert local.resolve("file:///srv/x.wav") == "/srv/x.wav"
    with pytest.raises(MediaError, match="outside"):
        local.resolve("http://127.0.0.1:9/../../etc/passwd")


def test_sources_of_workers_serving_on_their_own_ports_agree(tmp_path: Path) -> None:
    worker_a = [MediaRecord(0, "a", "http://127.0.0.1:1111/m/t%20a.wav", 0.0, 1.0)]
    worker_b = [MediaRecord(1, "a", "http://127.0.0.1:2222/m/t%20a.wav", 1 / 30, 1.0)]
    chunks = [
        localize_sources(worker_a, "http://127.0.0.1:1111"),
        localize_sources(worker_b, "http://127.0.0.1:2222/"),
    ]
    (segment,) = plan_audio(chunks, FPS)
    assert segment.source == "bundle:/m/t%20a.wav" and segment.length == Fraction(2, 30)
    local = LocalMedia("http://127.0.0.1:3333", tmp_path)
    assert local.resolve(segment.source) == str(tmp_path / "m" / "t a.wav")
    remote = [MediaRecord(0, "a", "https://cdn.example/t.wav", 0.0, 1.0)]
    assert localize_sources(remote, "http://127.0.0.1:1111") == remote


async def test_a_hung_ffprobe_on_a_source_is_a_media_error_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    ffprobe = tmp_path / "ffprobe"
    ffprobe.write_text(f'#!/bin/sh\necho $$ > "{pid_file}"\nexec sleep 30\n')
    ffprobe.chmod(0o755)
    monkeypatch.setattr(mix, "PROBE_TIMEOUT", 0.5)
    with pytest.raises(MediaError, match=r"^ffprobe did not answer within 0\.5 s$"):
        await probe_channels(ffprobe, "https://slow.example/a.wav", tmp_path, "0")
    with pytest.raises(ProcessLookupError):  # gone and reaped
        os.kill(int(pid_file.read_text()), 0)
