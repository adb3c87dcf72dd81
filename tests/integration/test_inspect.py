"""``helios-render inspect``: each warning kind has a page that triggers it and a near miss that
does not (all in one browser); the fonts say what draws the text; the JSON shape and the exit
codes hold on the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

import helios_render
from helios_render._chromium.browser import find_browser, launch_browser
from helios_render._chromium.inspection import read_page_report
from helios_render._chromium.page import open_page
from helios_render._inspect import WARNING_KINDS, Inspection, inspection_from
from helios_render._model.job import PageConfig
from helios_render._model.length import PageFacts
from helios_render._source.server import serve_directory

from ..conftest import COMPOSITIONS
from ..factories import make_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

#: kind -> (a page body that triggers it, a near miss that must not).
PAIRS = {
    "network": (
        '<script>fetch("http://example.invalid/data.json").catch(() => {});</script>',
        '<script>fetch("data.json").catch(() => {});</script>',
    ),
    "random-values": (
        "<script>crypto.getRandomValues(new Uint8Array(4)); crypto.randomUUID();</script>",
        "<script>Math.random();</script>",
    ),
    "web-audio": (
        "<script>new AudioContext();</script>",
        "<script>typeof AudioContext;</script>",
    ),
    "worker": (
        '<script>new Worker(URL.createObjectURL(new Blob(["1"])));</script>',
        "<script>typeof Worker;</script>",
    ),
    "cross-origin-iframe": (
        '<iframe id="ad" sandbox srcdoc="<p>x</p>"></iframe>',
        '<iframe id="ad" srcdoc="<p>x</p>"></iframe>',
    ),
    "timezone-locale": (
        '<p id="t"></p><script>t.textContent = new Date(0).toString() + '
        "(1234.5).toLocaleString();</script>",
        '<p id="t"></p><script>t.textContent = new Date(0).toISOString() + '
        "(1234.5).toFixed(1);</script>",
    ),
    "canvas-readback": (
        '<canvas id="c"></canvas><script>c.getContext("2d").getImageData(0, 0, 1, 1);</script>',
        '<canvas id="c"></canvas><script>c.getContext("2d").fillRect(0, 0, 1, 1);</script>',
    ),
    "has-focus": (
        "<script>document.hasFocus();</script>",
        "<script>document.visibilityState;</script>",
    ),
    "font-fallback": (
        '<p style="font-family: \'No Such Family\', serif">text</p>',
        '<style>@font-face { font-family: "HeliosTest"; src: url("testfont.ttf"); }</style>'
        '<p style="font-family: HeliosTest, serif">text</p>',
    ),
    "media-decode": (
        '<video id="v" src="broken.webm"></video>',
        '<video id="v" src="clip.webm"></video>',
    ),
    "video-keyframes": (
        '<video id="v" src="recorded.webm"></video>',
        '<video id="v" src="clip.webm"></video>',
    ),
    "props-schema": (
        '<script type="application/json" id="helios-props-schema">{"type": </script>',
        '<script type="application/json" id="helios-props-schema">'
        '{"type": "object", "properties": {"title": {"type": "string", "default": "Hi"}}}'
        "</script>",
    ),
}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A folder with a trigger and a near-miss page for each kind, and what they load."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "data.json").write_text("{}")
    (folder / "broken.webm").write_bytes(b"this is not a video" * 100)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x36:r=10:d=1",
         "-c:v", "libvpx-vp9", str(folder / "clip.webm")],
        check=True,
    )
    # The same written to a pipe: FFmpeg cannot go back to write the Cues (as MediaRecorder).
    recorded = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=red:s=64x36:r=10:d=1",
         "-c:v", "libvpx-vp9", "-f", "webm", "pipe:1"],
        check=True, capture_output=True,
    ).stdout
    (folder / "recorded.webm").write_bytes(recorded)
    fonts = sorted(Path("/usr/share/fonts").rglob("*Serif*Bold*.ttf")) or sorted(
        Path("/usr/share/fonts").rglob("*.ttf")
    )
    shutil.copy(fonts[0], folder / "testfont.ttf")
    for kind, (trigger, near_miss) in PAIRS.items():
        for name, body in (("trigger", trigger), ("clean", near_miss)):
            (folder / f"{kind}-{name}.html").write_text(
                "<!doctype html><style>body { font-family: monospace; }</style>"
                f"<p>{kind}</p>{body}"
            )
    yield folder


async def _inspect_all(folder: Path, names: list[str]) -> dict[str, Inspection]:
    found = {}
    async with (
        serve_directory(folder) as server,
        launch_browser(find_browser(None), width=320, height=180) as browser,
    ):
        for name in names:
            config = PageConfig(url=server.url_for(name), width=320, height=180,
                                fps=Fraction(30), inspect=True, served_root=str(folder),
                                timeout=15)
            async with open_page(browser, config) as page:
                facts = PageFacts.from_page(await page.composition_length())
                report = await read_page_report(page)
            found[name] = inspection_from(make_options(frames=None), facts, report)
    return found


async def test_each_warning_has_a_page_that_triggers_it_and_one_that_does_not(
    site: Path,
) -> None:
    assert set(PAIRS) == set(WARNING_KINDS)
    names = [f"{kind}-{which}.html" for kind in PAIRS for which in ("trigger", "clean")]
    found = await _inspect_all(site, names)
    missed, false_alarms = [], []
    for kind in PAIRS:
        trigger = [w for w in found[f"{kind}-trigger.html"].warnings if w["kind"] == kind]
        if not trigger or not all(w["where"] and w["message"] for w in trigger):
            missed.append((kind, found[f"{kind}-trigger.html"].warnings))
        clean = found[f"{kind}-clean.html"].warnings
        if clean:
            false_alarms.append((kind, clean))
    assert not missed, missed
    assert not false_alarms, false_alarms
    # Where each was seen: the script position in the page's folder, the element, the URL.
    where = {kind: next(w["where"] for w in found[f"{kind}-trigger.html"].warnings
                        if w["kind"] == kind) for kind in PAIRS}
    assert where["random-values"].startswith("random-values-trigger.html:1:")
    assert where["network"] == "http://example.invalid/data.json"
    assert where["cross-origin-iframe"].startswith("<iframe#ad>")
    assert where["font-fallback"] == "<p>"
    assert where["media-decode"] == "<video#v> broken.webm"
    assert where["video-keyframes"] == "<video#v> recorded.webm"
    # The fonts: the family asked for, the face that draws it, and whether it fell back.
    fallback = found["font-fallback-trigger.html"].to_json()["fonts"]
    assert {"family": "No Such Family", "face": fallback[-1]["face"], "fallback": True} in fallback
    web = found["font-fallback-clean.html"].to_json()["fonts"]
    assert {"family": "HeliosTest", "face": "DejaVu Serif", "fallback": False} in web
    # Media with their durations and whether each decodes; the props schema and defaults.
    media = found["media-decode-clean.html"].to_json()["media"]
    assert [(m["element"], m["decodes"], m["duration"]) for m in media] == [
        ("<video#v>", True, 1.0)]
    props = found["props-schema-clean.html"].to_json()
    assert props["props_schema"]["type"] == "object"
    assert props["props_defaults"] == {"title": "Hi"}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "helios_render", "inspect", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_inspect_json_shape_and_exit_codes(tmp_path: Path) -> None:
    declared = _cli(str(COMPOSITIONS / "length" / "declared.html"), "--json", "--strict")
    assert declared.returncode == 0, declared.stderr
    report = json.loads(declared.stdout)
    assert {key: report[key] for key in ("width", "height", "fps", "frames", "duration",
                                          "source", "props_schema", "warnings")} == {
        "width": 320, "height": 180, "fps": "10", "frames": 17, "duration": 1.7,
        "source": {"size": "declared", "fps": "declared", "frames": "declared"},
        "props_schema": None, "warnings": [],
    }
    assert isinstance(report["fonts"], list) and isinstance(report["media"], list)
    # An unbounded page with nothing to warn about: exit 0 (frames null); with --strict, 1.
    endless = tmp_path / "endless.html"
    endless.write_text('<!doctype html><p>x</p><style>p { animation: a 1s infinite; }'
                       "@keyframes a { to { opacity: 0; } }</style>")
    assert _cli(str(endless), "--json").returncode == 0
    assert _cli(str(endless), "--json", "--strict").returncode == 1
    # With warnings: exit 1, the JSON still printed; an unbounded page: no frames.
    page = tmp_path / "tz.html"
    page.write_text('<!doctype html><p id="t"></p><style>p { animation: a 1s infinite; }'
                    "@keyframes a { to { opacity: 0; } }</style>"
                    "<script>t.textContent = new Date(0).toString();</script>")
    strict = _cli(str(page), "--json", "--fps", "30000/1001")
    assert strict.returncode == 1, strict.stderr
    data = json.loads(strict.stdout)
    assert (data["frames"], data["duration"], data["fps"], data["source"]["frames"]) == (
        None, None, "30000/1001", None)
    assert "never ends" in data["length"]["problem"]
    assert [(w["kind"], w["where"]) for w in data["warnings"]] == [
        ("timezone-locale", "tz.html:1:147")]
    # A page that cannot load: exit 2, the error alone (no chunk: nothing was rendering).
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><script>throw new Error('boom at load')</script>")
    failed = _cli(str(broken))
    assert failed.returncode == 2, failed.stderr
    assert failed.stdout == "" and "Traceback" not in failed.stderr
    first = failed.stderr.splitlines()[0]
    assert first.startswith("helios-render: error: the composition threw an uncaught error: "
                            "Error: boom at load"), failed.stderr


async def test_render_preflight_prints_the_warnings_and_strict_refuses_to_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page = tmp_path / "clock.html"
    page.write_text('<!doctype html><p id="t"></p><style>p { animation: a 0.3s; }'
                    "@keyframes a { to { opacity: 0; } }</style>"
                    "<script>t.textContent = new Date(0).toString();</script>")
    strict = make_options(tmp_path, source=page, frames=None, fps=10, strict=True)
    with pytest.raises(helios_render.PreflightError, match=r"\[timezone-locale\].*clock.html:1"):
        await helios_render.render(strict)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clock.html"]  # nothing started
    caplog.clear()
    loose = make_options(tmp_path, source=page, frames=None, fps=10, preflight=True,
                         concurrency=1)
    result = await helios_render.render(loose)
    assert result.frames == 3  # the length from the same page load: 0.3 s at 10 fps
    notes = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("preflight: [timezone-locale]" in note and "clock.html:1:" in note
               for note in notes), notes
