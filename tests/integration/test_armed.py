"""Armed seeks on the beginFrame path: a frame seeked inside its own capture (one CDP command
per frame) shows exactly what a seek and a capture show, and falls back when it must."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render._chromium.browser import Browser, launch_browser
from helios_render._chromium.page import Page, open_page
from helios_render._exceptions import PageError
from helios_render._source.server import serve_directory

from ..conftest import COMPOSITIONS
from ..factories import make_page
from .test_corpus import SHELL

pytestmark = [
    pytest.mark.browser,
    pytest.mark.beginframe,
    pytest.mark.usefixtures("clean_processes"),
    pytest.mark.skipif(SHELL is None, reason="needs a chrome-headless-shell build"),
]

W, H, FPS = 320, 180, Fraction(30)


@asynccontextmanager
async def shell_pages() -> AsyncIterator[tuple[Browser, str]]:
    assert SHELL is not None
    async with (
        serve_directory(COMPOSITIONS) as server,
        launch_browser(Path(SHELL), width=W, height=H, begin_frame_control=True) as browser,
    ):
        yield browser, server.url_for("")


@asynccontextmanager
async def page_of(
    browser: Browser, base: str, name: str, props: object = None
) -> AsyncIterator[Page]:
    config = make_page(url=base + name, width=W, height=H, fps=FPS, props=props, timeout=10)
    async with open_page(browser, config, begin_frame=True) as page:
        yield page


async def frames_of(page: Page, first: int, last: int, *, arm: bool) -> list[bytes]:
    """Frames first..last as a chunk renders them: seek and capture each, in order."""
    images = []
    for frame in range(first, last + 1):
        await page.seek(frame, last=last if arm else None)
        images.append(await page.capture("png", 100))
    return images


@pytest.mark.parametrize("name", ["raf_canvas.html", "css_linear.html", "composited_badge.html"])
async def test_an_armed_frame_is_the_frame_a_seek_and_a_capture_show(name: str) -> None:
    async with shell_pages() as (browser, base):
        async with page_of(browser, base, name) as page:
            assert page.can_arm
            plain = await frames_of(page, 0, 11, arm=False)
            assert page.armed_captures == 0
        async with page_of(browser, base, name) as page:
            armed = await frames_of(page, 0, 5, arm=True)
            # A second run of frames on the same page, as a worker's next chunk.
            armed += await frames_of(page, 6, 11, arm=True)
            # Every frame after the first of each run seeked itself inside its capture.
            assert (page.armed_captures, page.armed_fallbacks) == (10, 0)
    assert [i for i, (a, b) in enumerate(zip(plain, armed, strict=True)) if a != b] == []
    assert len(set(plain)) > 6  # the frames move: a frame left behind would show


async def test_a_frame_that_must_wait_falls_back_and_shows_its_own_update() -> None:
    # Each frame's rAF callback posts MessageChannel tasks that move the box: the frame cannot
    # be seeked inside its capture, so the capture is taken again after the tasks ran.
    async with shell_pages() as (browser, base):
        async with page_of(browser, base, "message_tasks.html") as page:
            plain = await frames_of(page, 0, 9, arm=False)
        async with page_of(browser, base, "message_tasks.html") as page:
            armed = await frames_of(page, 0, 4, arm=True)
            assert (page.armed_captures, page.armed_fallbacks) == (0, 1)  # then no more arming
            armed += await frames_of(page, 5, 9, arm=True)
            assert (page.armed_captures, page.armed_fallbacks) == (0, 2)
    assert [i for i, (a, b) in enumerate(zip(plain, armed, strict=True)) if a != b] == []
    assert len(set(plain)) == 10


async def test_an_armed_frame_whose_callback_throws_fails_as_a_seek_does() -> None:
    async with (
        shell_pages() as (browser, base),
        page_of(browser, base, "throws_at.html", {"throwAt": 0.2}) as page,
    ):
        with pytest.raises(PageError, match=r"the composition threw: Error: boom at 200\.0 ms"):
            await frames_of(page, 0, 9, arm=True)
        assert page.armed_captures == 5  # frames 1..5 were armed; frame 6 threw
        assert page.position == 5
