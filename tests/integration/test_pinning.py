"""What a machine leaks into frames is pinned: a page printing ``new Date(0).toString()``, a
local date and a number with ``toLocaleString()`` renders the same pixels whatever the
machine's ``TZ`` and ``LANG``; ``--timezone`` changes them, and the job digest."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import helios_render

from ..conftest import COMPOSITIONS
from ..factories import make_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

PAGE = COMPOSITIONS / "pinning" / "clock_text.html"


def pixels(path: Path) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True,
    ).stdout


async def still(tmp_path: Path, name: str, **overrides: object) -> bytes:
    options = make_options(tmp_path, source=PAGE, output=tmp_path / f"{name}.png", frames=1,
                           fps=30, image_format="png", **overrides)
    return pixels(await helios_render.render_still(options, 0))


async def test_the_machine_s_time_zone_and_language_do_not_change_the_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.setenv("LANG", "C.UTF-8")
    utc = await still(tmp_path, "utc")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LANGUAGE", "de")
    tokyo_machine = await still(tmp_path, "tokyo-machine")
    assert tokyo_machine == utc
    # Asked for, the zone and the locale do change them.
    tokyo = await still(tmp_path, "tokyo", timezone="Asia/Tokyo")
    assert tokyo != utc
    german = await still(tmp_path, "german", locale="de-DE")
    assert german not in (utc, tokyo)


def test_an_unknown_time_zone_is_a_usage_error_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        ["python3", "-m", "helios_render", "still", str(PAGE), str(tmp_path / "a.png"),
         "--frame", "0", "--timezone", "Mars/Olympus_Mons"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "helios-render: error: unknown time zone 'Mars/Olympus_Mons': give an IANA name such "
        "as UTC, Europe/Paris or Asia/Tokyo"
    ]
