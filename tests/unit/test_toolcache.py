"""What tools say of themselves is remembered per executable file, and asked again when the
file changes; wrapper scripts are always asked."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helios_render import _toolcache
from helios_render._ffmpeg.ffmpeg import ffmpeg_encoders, ffmpeg_version, find_ffmpeg


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(_toolcache, "_memory", {})
    return tmp_path / "cache" / "helios-render" / "tools.json"


def test_an_answer_is_asked_once_per_file_and_again_after_a_change(
    tmp_path: Path, private_cache: Path
) -> None:
    tool = tmp_path / "tool"
    tool.write_bytes(b"\x7fELF pretend binary")
    asked: list[int] = []

    def ask() -> str:
        asked.append(1)
        return f"answer {len(asked)}"

    assert _toolcache.cached_facts(tool, "version", ask) == "answer 1"
    _toolcache._memory.clear()  # a new process reads the file
    assert _toolcache.cached_facts(tool, "version", ask) == "answer 1"
    assert len(asked) == 1 and private_cache.exists()
    replacement = tmp_path / "tool.new"
    replacement.write_bytes(b"\x7fELF a newer binary")
    os.replace(replacement, tool)  # as a package upgrade writes it
    assert _toolcache.cached_facts(tool, "version", ask) == "answer 2"


def test_scripts_and_failures_are_never_remembered(tmp_path: Path, private_cache: Path) -> None:
    script = tmp_path / "chromium"
    script.write_text("#!/bin/sh\nexec /usr/lib/chromium/chromium \"$@\"\n")
    answers = iter(["one", "two"])
    assert _toolcache.cached_facts(script, "version", lambda: next(answers)) == "one"
    assert _toolcache.cached_facts(script, "version", lambda: next(answers)) == "two"
    binary = tmp_path / "binary"
    binary.write_bytes(b"\x7fELF")
    assert _toolcache.cached_facts(binary, "version", lambda: None) is None
    assert _toolcache.cached_facts(binary, "version", lambda: "now") == "now"
    assert f"|{script.resolve()}|" not in private_cache.read_text()


def test_ffmpeg_facts_match_what_ffmpeg_says(tmp_path: Path) -> None:
    ffmpeg = find_ffmpeg(None)
    version, encoders = ffmpeg_version(ffmpeg), ffmpeg_encoders(ffmpeg)
    assert version.startswith("ffmpeg version ") and {"libx264", "png", "aac"} <= encoders
    _toolcache._memory.clear()
    assert (ffmpeg_version(ffmpeg), ffmpeg_encoders(ffmpeg)) == (version, encoders)
    # An FFmpeg that does not run says so, and nothing is remembered for it.
    broken = tmp_path / "ffmpeg"
    shutil.copy(ffmpeg, broken)
    broken.write_bytes(b"\x7fELF not really")
    broken.chmod(0o755)
    assert ffmpeg_version(broken).startswith("unknown")
