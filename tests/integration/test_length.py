"""A length for any page: each source of a length (a CSS animation with delay and iterations, a
Web Animation with endDelay, a CSS transition started at load, a GSAP timeline, a Lottie
animation, SVG SMIL, a declaration) gives the length exact to the frame; a render without a
length renders exactly that many frames; a page whose animation never ends, or a bare
requestAnimationFrame loop, is a one-line usage error.

The pages are measured in one browser (one launch for all of them)."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

import helios_render
from helios_render._chromium.browser import find_browser, launch_browser
from helios_render._chromium.page import open_page
from helios_render._model.job import PageConfig
from helios_render._model.length import PageFacts, resolve_timing
from helios_render._source.server import serve_directory

from ..conftest import COMPOSITIONS

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

LENGTH = COMPOSITIONS / "length"
FPS = Fraction(10)
#: Page -> (frames at 10 fps, where they came from, what decided).
EXPECTED = {
    "css_iterations.html": (35, "animations", "CSS animation 'slide' on <div#box>"),
    "waapi_end_delay.html": (23, "animations", "Web Animation 'move' on <div#box>"),
    "transition.html": (15, "animations", "CSS transition of left on <div#box>"),
    "gsap_timeline.html": (33, "animations", "GSAP timeline"),
    "lottie.html": (18, "animations", "Lottie animation in <div#anim>"),
    "smil.html": (25, "animations", "SVG <animate> of x"),
    "declared.html": (17, "declared", None),
}
UNBOUNDED = {
    "infinite.html": "CSS animation 'spin' on <div#spinner> (iterations: infinite) never ends",
    "raf_loop.html": "requestAnimationFrame loop and no finite animation",
}


async def test_each_source_gives_its_length_exact_to_the_frame() -> None:
    found: dict[str, tuple[int | None, str | None, str | None]] = {}
    problems: dict[str, str | None] = {}
    async with (
        serve_directory(COMPOSITIONS) as server,
        launch_browser(find_browser(None), width=320, height=180) as browser,
    ):
        for name in [*EXPECTED, *UNBOUNDED]:
            config = PageConfig(url=server.url_for(f"length/{name}"), width=320, height=180,
                                fps=FPS)
            async with open_page(browser, config) as page:
                facts = PageFacts.from_page(
                    await page.composition_length(), *await page.composition_timing()
                )
            # The declared page declares its fps too; the others take the user's 10.
            timing = resolve_timing(facts, fps=None if name == "declared.html" else FPS)
            assert timing.fps == FPS
            found[name] = (
                timing.frames,
                timing.sources["frames"],
                timing.decided_by.name if timing.decided_by else None,
            )
            problems[name] = timing.problem
    assert {name: found[name] for name in EXPECTED} == EXPECTED
    for name, text in UNBOUNDED.items():
        assert found[name] == (None, None, None)
        assert text in (problems[name] or ""), problems[name]
        assert "give --frames N or --duration SECONDS" in (problems[name] or "")


@pytest.mark.parametrize(
    "name",
    [
        "css_iterations.html",
        "lottie.html",
        "declared.html",
    ],
)
# Every source reaches the render through the same resolution (measured above for each); three
# renders (CSS, a library's rAF-driven animation, a declaration) keep the suite's time small.
async def test_a_render_without_a_length_renders_exactly_the_page_s_frames(
    tmp_path: Path, name: str
) -> None:
    frames, _, _ = EXPECTED[name]
    fps = None if name == "declared.html" else 10
    output = tmp_path / "frames"
    options = helios_render.RenderOptions(
        source=LENGTH / name, output=output, codec="png", fps=fps, concurrency=1,
        # The declared page declares its size: leave it to the page.
        width=None if name == "declared.html" else 320,
        height=None if name == "declared.html" else 180,
    )
    result = await helios_render.render(options)
    assert (result.frames, result.fps, result.width, result.height) == (
        frames, Fraction(10), 320, 180)
    written = sorted(output.iterdir())
    assert len(written) == frames, written[-3:]


@pytest.mark.parametrize("name", list(UNBOUNDED))
def test_a_page_without_a_length_is_a_one_line_usage_error(tmp_path: Path, name: str) -> None:
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [sys.executable, "-m", "helios_render", "render", str(LENGTH / name), str(output),
         "--width", "320", "--height", "180"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("helios-render: error: "), lines
    assert UNBOUNDED[name] in lines[0] and "--frames N or --duration SECONDS" in lines[0]
    assert not output.exists()
