"""The length, fps and size of a page: the user's, else the page's (Helios, declared, its
animations), else the defaults; a page whose animations never end has none."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from helios_render import OptionsError
from helios_render._model.length import (
    AnimationEnd,
    PageFacts,
    parse_declared_duration,
    parse_declared_size,
    resolve_timing,
    with_timing,
)
from helios_render._timing import declared_in_file

from ..factories import make_options

CSS = AnimationEnd("css-animation", "CSS animation 'slide' on <div#box>", 3500.0)


def test_the_last_animation_to_end_gives_the_frames_the_first_at_or_after_its_end() -> None:
    facts = PageFacts(ends=(CSS, AnimationEnd("waapi", "Web Animation", 1000.0)), count=2)
    timing = resolve_timing(facts)
    assert (timing.frames, timing.fps, timing.sources["frames"]) == (105, Fraction(30),
                                                                      "animations")
    assert timing.decided_by == CSS
    # An end between frames is covered by one more frame; float noise is not.
    assert resolve_timing(PageFacts(ends=(AnimationEnd("k", "n", 3250.0),)),
                          fps=Fraction(10)).frames == 33
    assert resolve_timing(PageFacts(ends=(AnimationEnd("k", "n", 3500.0000000004),)),
                          fps=Fraction(10)).frames == 35
    assert resolve_timing(PageFacts(ends=(AnimationEnd("k", "n", 2333.3333333),)),
                          fps=Fraction(30)).frames == 70


def test_what_the_user_gives_wins_then_helios_then_the_declarations() -> None:
    facts = PageFacts(
        helios_fps=24.0, helios_duration=2.0, declared_duration="1.7s", declared_fps="10",
        declared_size="320x180", ends=(CSS,),
    )
    timing = resolve_timing(facts)
    assert (timing.width, timing.height, timing.fps, timing.frames) == (320, 180, Fraction(24), 48)
    assert timing.sources == {"size": "declared", "fps": "helios", "frames": "helios"}
    declared = resolve_timing(PageFacts(declared_duration="1.7s", declared_fps="10", ends=(CSS,)))
    assert (declared.fps, declared.frames, declared.sources["frames"]) == (
        Fraction(10), 17, "declared")
    user = resolve_timing(facts, width=640, fps=Fraction(30000, 1001), frames=7)
    assert (user.width, user.height, user.fps, user.frames) == (640, 1080, Fraction(30000, 1001), 7)
    assert set(user.sources.values()) == {"user"}
    default = resolve_timing(PageFacts(ends=(CSS,)))
    assert (default.width, default.height, default.sources["size"]) == (1920, 1080, "default")


@pytest.mark.parametrize(
    ("facts", "named"),
    [
        (PageFacts(ends=(CSS,), unbounded=(AnimationEnd("css-animation", "CSS animation 'spin' on "
                                                          "<div#s> (iterations: infinite)"),)),
         "CSS animation 'spin' on <div#s> (iterations: infinite) never ends"),
        (PageFacts(raf=True), "requestAnimationFrame loop and no finite animation"),
        (PageFacts(), "starts no animation"),
    ],
)
def test_a_page_without_a_length_of_its_own_asks_for_one(facts: PageFacts, named: str) -> None:
    timing = resolve_timing(facts)
    assert timing.frames is None and timing.sources["frames"] is None
    assert timing.problem is not None and named in timing.problem
    assert "--frames N or --duration SECONDS" in timing.problem
    with pytest.raises(OptionsError, match="--frames N or --duration SECONDS"):
        with_timing(make_options(frames=None), timing)
    # The user's length needs no length from the page.
    assert with_timing(make_options(frames=4), timing).frame_count == 4


def test_with_timing_fills_in_only_what_the_user_left_out() -> None:
    facts = PageFacts(declared_size="640x360", declared_fps="25", ends=(CSS,))
    options = make_options(frames=None, width=None, height=None)
    resolved = with_timing(options, resolve_timing(facts))
    assert (resolved.width, resolved.height, resolved.exact_fps, resolved.frame_count) == (
        640, 360, Fraction(25), 88)
    kept = make_options(frames=None, fps=30)
    assert (with_timing(kept, resolve_timing(facts, width=320, height=180, fps=Fraction(30)))
            .frame_width) == 320


@pytest.mark.parametrize(
    ("text", "frames"),
    [("4.5s", 135), ("4.5", 135), ("1500ms", 45), ("90f", 90), ("12 frames", 12), ("0.05s", 2)],
)
def test_declared_durations(text: str, frames: int) -> None:
    assert parse_declared_duration(text, Fraction(30)) == frames


@pytest.mark.parametrize("text", ["soon", "-1s", "0s", "1.5f", ""])
def test_bad_declarations_name_the_meta(text: str) -> None:
    with pytest.raises(OptionsError, match='meta name="helios:duration"'):
        parse_declared_duration(text, Fraction(30))


def test_declared_sizes() -> None:
    assert parse_declared_size("1280x720") == (1280, 720)
    assert parse_declared_size(" 320 X 180 ") == (320, 180)
    with pytest.raises(OptionsError, match="helios:size"):
        parse_declared_size("big")


def test_facts_survive_the_cache_and_ignore_what_they_do_not_know() -> None:
    facts = PageFacts.from_page(
        {"declared": {"duration": " 2s ", "fps": None, "size": 3},
         "found": [{"kind": "gsap", "name": "GSAP timeline", "end": 3250},
                   {"kind": "x", "name": "y", "end": "soon"}, "junk"],
         "count": 1, "unbounded": [], "raf": True},
        24.0, None,
    )
    assert facts.declared_duration == "2s" and facts.declared_size is None
    assert facts.ends == (AnimationEnd("gsap", "GSAP timeline", 3250.0),)
    assert PageFacts.from_json(facts.to_json()) == facts
    assert PageFacts.from_page(None) == PageFacts()


def test_declarations_are_read_from_a_local_file_without_a_browser(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text('<!doctype html><meta name="helios:size" content="640x360">'
                    '<META NAME="helios:fps" content="25"><p>hi')
    facts = declared_in_file(page)
    assert (facts.declared_size, facts.declared_fps, facts.declared_duration) == (
        "640x360", "25", None)
    assert declared_in_file(tmp_path / "missing.html") == PageFacts()
