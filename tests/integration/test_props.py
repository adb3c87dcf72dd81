"""Props schemas with a real Chromium: checked before anything renders, defaults reach the
page, a Helios-core composition's own schema is read from the page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import COMPOSITIONS, decode_frames, our_processes

pytestmark = pytest.mark.browser

CARD = COMPOSITIONS / "props_card.html"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "helios_render", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("props", "extra", "expected"),
    [
        ('{"color": "#112233"}', [], "prop 'name' is required"),
        ('{"name": "a", "size": "big"}', [], "prop 'size': 'big' is not of type 'integer'"),
        ('{"name": "a", "color": "red"}', [], "prop 'color': 'red' does not match"),
        ('{"name": "a", "colour": "#112233"}', ["--strict-props"], "prop 'colour' is not declared"),
    ],
)
def test_bad_props_are_refused_before_anything_renders(
    tmp_path: Path, props: str, extra: list[str], expected: str
) -> None:
    output = tmp_path / "out.mp4"
    before = our_processes()
    result = run_cli(
        "render", str(CARD), str(output), "--width", "320", "--height", "180", "--frames", "2",
        "--props", props, *extra,
    )
    line = _one_error_line(result)
    assert line.startswith("helios-render: error: ") and expected in line, line
    # A local page's schema is read from its file: no browser was needed to refuse them.
    assert "chromium" not in result.stderr.lower()
    assert not output.exists() and list(tmp_path.iterdir()) == []
    assert our_processes() <= before


def test_the_schema_defaults_reach_the_page(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    result = run_cli(
        "render", str(CARD), str(output), "--width", "320", "--height", "180", "--frames", "2",
        "--props", '{"name": "Ada"}', "--image-format", "png", "--crf", "0",
    )
    assert result.returncode == 0, result.stderr
    frame = decode_frames(output, [1])[0]
    r, g, b = frame.pixel(300, 90)
    assert r < 16 and 176 < g < 208 and b < 16, (r, g, b)  # the default #00c000


def test_a_helios_core_schema_is_read_from_the_page(tmp_path: Path) -> None:
    page = COMPOSITIONS / "props_helios.html"
    output = tmp_path / "out.mp4"
    refused = run_cli(
        "render", str(page), str(output), "--width", "320", "--height", "180", "--frames", "2",
        "--fps", "30", "--props", '{"speed": 2}',
    )
    assert "prop 'color' is required" in _one_error_line(refused)
    assert not output.exists()
    done = run_cli(
        "render", str(page), str(output), "--width", "320", "--height", "180", "--frames", "2",
        "--fps", "30", "--props", '{"color": "#0000ff"}', "--image-format", "png", "--crf", "0",
    )
    assert done.returncode == 0, done.stderr
    r, g, b = decode_frames(output, [0])[0].pixel(160, 90)
    assert r < 16 and g < 16 and b > 230, (r, g, b)
