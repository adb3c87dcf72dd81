"""The command line as users run it: exit codes, one-line errors, JSON progress."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import COMPOSITIONS, EXAMPLES, probe, wait_no_orphans

pytestmark = pytest.mark.browser


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_render", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _assert_clean_failure(result: subprocess.CompletedProcess[str], output: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("helios-render: error:"), lines
    assert not output.exists()
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.html", "--frames", "5"], "composition not found"),
        (["@closed-port", "--frames", "5"], "ERR_CONNECTION_REFUSED"),
        (["@page", "--frames", "5", "--width", "641"], "width must be even"),
        (["@page", "--frames", "0"], "frames must be at least 1"),
        (["@page", "--frames", "5", "--ffmpeg", "/nonexistent"], "FFmpeg not found"),
        (["@page", "--frames", "5", "--browser", "/nonexistent"], "Chromium not found"),
        (["@page", "--frames", "5", "--props", "{bad"], "not valid JSON"),
        (["@page", "--frames", "5", "--codec", "libnothing"], "unknown codec"),
        (["@page", "--frames", "5", "--fps", "0"], "fps must be positive"),
        (["@page", "--frames", "5", "--audio", "/nonexistent.wav"], "--audio file not found"),
        (["@page", "--frames", "5", "--audio", "a.wav", "--muted"], "not both"),
        (["@page", "--frames", "5", "--audio-volume", "-1"], "audio_volume must be 0 or more"),
        (["@page", "--frames", "5", "--audio-bitrate", "loud"], "like 128k"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    tmp_path: Path, args: list[str], expected: str
) -> None:
    output = tmp_path / "out.mp4"
    page = str(COMPOSITIONS / "css_linear.html")
    source, *rest = args
    if source == "@page":
        source = page
    elif source == "@closed-port":
        with socket.socket() as sock:  # a port that was free a moment ago
            sock.bind(("127.0.0.1", 0))
            source = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    result = run_cli("render", source, str(output), "--width", "64", "--height", "64", *rest)
    _assert_clean_failure(result, output)
    assert expected in result.stderr
    assert not wait_no_orphans()


def test_missing_output_folder_is_a_usage_error(tmp_path: Path) -> None:
    output = tmp_path / "nope" / "out.mp4"
    result = run_cli("render", str(COMPOSITIONS / "css_linear.html"), str(output), "--frames", "3")
    assert result.returncode == 2
    assert "does not exist" in result.stderr
    assert not output.parent.exists()


def test_json_progress_parses_never_decreases_and_ends_with_done(tmp_path: Path) -> None:
    output = tmp_path / "hello.mp4"
    result = run_cli(
        "render", str(EXAMPLES / "hello" / "index.html"), str(output),
        "--frames", "12", "--width", "640", "--height", "360", "--concurrency", "2",
        "--progress", "json",
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    progress = [e["progress"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert events[-1]["event"] == "done"
    assert events[-1]["frames"] == 12
    assert probe(output)["nb_read_frames"] == "12"


def test_doctor_reports_what_it_found() -> None:
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout
    assert "chromium:" in result.stdout and "ffmpeg:" in result.stdout
    assert "beginFrame:" in result.stdout
    assert "ready to render" in result.stdout


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    commands = {words[0] for words in lines if words and words[0] in {"render", "still", "doctor"}}
    assert commands == {"render", "still", "doctor"}


def test_render_help_shows_the_library_defaults() -> None:
    from dataclasses import fields

    from helios_render import RenderOptions

    defaults = {f.name: f.default for f in fields(RenderOptions) if f.init}
    result = run_cli("render", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for name in ("quality", "retries", "timezone", "locale"):
        assert f"(default {defaults[name]})" in text, name
    assert "(default: the page's helios:size, else 1920)" in text
    assert "(default: the page's helios:size, else 1080)" in text
    from helios_render._model.codecs import CODECS

    for codec in CODECS.values():  # crf and preset defaults are the codec table's
        if codec.quality is not None:
            assert f"{codec.name} {codec.quality.default} " in text, codec.name
        if codec.speed is not None:
            assert f"{codec.name} {codec.speed.default}" in text, codec.name


def test_the_readme_example_renders_a_plain_css_page_to_its_end(tmp_path: Path) -> None:
    # No --frames: the length is where the page's last CSS animation ends (3 s).
    output = tmp_path / "title.mp4"
    result = run_cli(
        "render", str(EXAMPLES / "title" / "index.html"), str(output),
        "--progress", "none", timeout=300,
    )
    assert result.returncode == 0, result.stderr
    info = probe(output)
    assert info["codec_name"] == "h264"
    assert (info["width"], info["height"]) == ("1920", "1080")
    assert info["r_frame_rate"] == "30/1"
    assert info["nb_read_frames"] == "90"
    assert info["pix_fmt"] == "yuv420p"
