"""The static-frame detector never calls a frame unchanged when its picture differs: Hypothesis
builds pages from random schedules of CSS and Web Animations (delays, durations, iterations,
directions, fills, easings with steps() holds, at the effect or the keyframes), transitions and
animations started by timers, and DOM and style changes at random frames; each frame is seeked
with the detector on and captured, and a frame the runtime calls unchanged must be, byte for
byte, the capture of the frame before."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helios_render._chromium.browser import find_browser, launch_browser
from helios_render._chromium.page import open_page
from helios_render._source.server import serve_directory

from ..factories import make_page
from . import test_corpus
from .test_corpus import CapturePath

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

FPS = 10
FRAMES = 16
W, H = 160, 120
PROPERTIES = {
    "transform": ("translateX(0px)", "translateX(60px)"),
    "opacity": ("0.1", "1"),
    "background-color": ("rgb(200, 0, 0)", "rgb(0, 0, 200)"),
}
EASINGS = st.sampled_from([
    "linear", "ease-in-out", "steps(1)", "steps(2)", "steps(3, jump-start)", "steps(4, jump-end)",
    "steps(3, jump-none)", "steps(2, jump-both)", "step-start", "step-end",
])


@dataclass(frozen=True)
class Mover:
    kind: str  # css | waapi | waapi-keyframe-easing | timer-waapi | transition
    prop: str
    delay: int  # frames
    duration: int  # frames
    iterations: int
    direction: str
    fill: str
    easing: str
    at: int  # frame at which a timer starts it (timer-waapi, transition)


@dataclass(frozen=True)
class Schedule:
    movers: tuple[Mover, ...]
    text_changes: tuple[int, ...]  # frames at which a timer changes a text node
    style_changes: tuple[int, ...]  # frames at which a timer changes an inline style


movers = st.builds(
    Mover,
    kind=st.sampled_from(["css", "waapi", "waapi-keyframe-easing", "timer-waapi", "transition"]),
    prop=st.sampled_from(sorted(PROPERTIES)),
    delay=st.integers(0, 8),
    duration=st.integers(1, 8),
    iterations=st.integers(1, 3),
    direction=st.sampled_from(["normal", "reverse", "alternate"]),
    fill=st.sampled_from(["none", "forwards", "backwards", "both"]),
    easing=EASINGS,
    at=st.integers(1, FRAMES - 2),
)
schedules = st.builds(
    Schedule,
    movers=st.lists(movers, min_size=1, max_size=4).map(tuple),
    text_changes=st.lists(st.integers(1, FRAMES - 1), max_size=2).map(tuple),
    style_changes=st.lists(st.integers(1, FRAMES - 1), max_size=2).map(tuple),
)


def page_html(schedule: Schedule) -> str:
    """The page of a schedule: one box per mover, a text line and a styled bar."""
    ms = 1000 / FPS
    css, boxes, script = [], [], []
    for i, m in enumerate(schedule.movers):
        start, end = PROPERTIES[m.prop]
        top = 4 + 26 * i
        css.append(f"#b{i} {{ position: absolute; left: 4px; top: {top}px; width: 20px; "
                   f"height: 20px; background: rgb(0, 150, 0); {m.prop}: {start}; }}")
        timing = {"duration": m.duration * ms, "delay": m.delay * ms,
                  "iterations": m.iterations, "direction": m.direction, "fill": m.fill}
        frames = [{m.prop: start}, {m.prop: end}]
        if m.kind == "css":
            css.append(f"@keyframes k{i} {{ from {{ {m.prop}: {start}; }} "
                       f"to {{ {m.prop}: {end}; }} }}")
            css.append(f"#b{i} {{ animation: k{i} {m.duration * ms}ms {m.easing} "
                       f"{m.delay * ms}ms {m.iterations} {m.direction} {m.fill}; }}")
        elif m.kind in ("waapi", "waapi-keyframe-easing", "timer-waapi"):
            if m.kind == "waapi-keyframe-easing":
                frames[0]["easing"] = m.easing
            else:
                timing["easing"] = m.easing
            call = (f"document.getElementById('b{i}').animate("
                    f"{json.dumps(frames)}, {json.dumps(timing)});")
            script.append(call if m.kind != "timer-waapi" else
                          f"setTimeout(() => {{ {call} }}, {m.at * ms});")
        else:  # a transition started by a timer's class change
            css.append(f"#b{i} {{ transition: {m.prop} {m.duration * ms}ms {m.easing} "
                       f"{m.delay * ms}ms; }} #b{i}.on {{ {m.prop}: {end}; }}")
            script.append(f"setTimeout(() => document.getElementById('b{i}').classList.add('on'), "
                          f"{m.at * ms});")
        boxes.append(f'<div id="b{i}"></div>')
    for n, frame in enumerate(schedule.text_changes):
        script.append(f"setTimeout(() => {{ document.getElementById('t').textContent = "
                      f"'text {n + 1}'; }}, {frame * ms});")
    for n, frame in enumerate(schedule.style_changes):
        script.append(f"setTimeout(() => {{ document.getElementById('s').style.width = "
                      f"'{30 + 20 * (n + 1)}px'; }}, {frame * ms});")
    return (
        "<!doctype html><html><head><style>html, body { margin: 0; background: #fff; } "
        "#t { position: absolute; left: 60px; top: 10px; font: 14px sans-serif; } "
        "#s { position: absolute; left: 60px; top: 40px; width: 30px; height: 10px; "
        "background: #333; } " + " ".join(css) + "</style></head><body>"
        + "".join(boxes) + '<div id="t">text 0</div><div id="s"></div>'
        + "<script>" + "\n".join(script) + "</script></body></html>"
    )


async def check_schedule(folder: Path, schedule: Schedule, capture: CapturePath) -> int:
    """Seek every frame with the detector on, capture each; return how many were called
    unchanged (each checked against the capture before)."""
    (folder / "index.html").write_text(page_html(schedule))
    begin_frame = capture.name == "beginframe"
    unchanged = 0
    async with (
        serve_directory(folder) as server,
        launch_browser(find_browser(capture.browser), width=W, height=H,
                       begin_frame_control=begin_frame) as browser,
    ):
        config = replace(make_page(width=W, height=H, fps=Fraction(FPS)),
                         url=server.url_for("index.html"), skip_static=True)
        async with open_page(browser, config, begin_frame=begin_frame) as page:
            previous = b""
            for frame in range(FRAMES):
                await page.seek(frame, reuse=frame > 0)
                image = await page.capture("png", 100)
                if page.unchanged:
                    unchanged += 1
                    assert image == previous, (
                        f"frame {frame} was called unchanged but differs from frame "
                        f"{frame - 1}:\n{page_html(schedule)}"
                    )
                previous = image
    return unchanged


capture = test_corpus.capture  # both capture paths, as the corpus runs them


def test_a_frame_called_unchanged_is_the_frame_before(
    tmp_path_factory: pytest.TempPathFactory, capture: CapturePath
) -> None:
    seen: list[int] = []

    @settings(
        # A longer hunt: HELIOS_DETECTOR_EXAMPLES=200.
        max_examples=int(os.environ.get("HELIOS_DETECTOR_EXAMPLES", 0))
        or (5 if capture.name == "screenshot" else 3),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
    )
    @given(schedules)
    def check(schedule: Schedule) -> None:
        folder = tmp_path_factory.mktemp("schedule")
        seen.append(trio.run(check_schedule, folder, schedule, capture))

    check()
    # Not vacuous: holds (delays, fills, steps) make some frames unchanged.
    assert sum(seen) > 0, seen
