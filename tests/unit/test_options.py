"""RenderOptions: every bad value is refused with what to do; timing left out is the page's."""

from __future__ import annotations

from fractions import Fraction

import pytest

from helios_render import OptionsError
from helios_render._model.options import parse_cluster

from ..factories import make_options


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"width": 641}, "width must be even"),
        ({"height": 0}, "height must be a whole number"),
        ({"width": 10000}, "at most"),
        ({"fps": "0"}, "fps must be positive"),
        ({"fps": "abc"}, "fps must be a number"),
        ({"frames": 0}, "frames must be at least 1"),
        ({"duration": 1}, "either frames or duration"),
        ({"start_frame": -1}, "start_frame"),
        ({"concurrency": 0}, "concurrency must be from 1 to 64"),
        ({"concurrency": 1000}, "concurrency must be from 1 to 64"),
        ({"fps": 1e-9}, "fps must be from 0.01 to 240"),
        ({"fps": "1/1000000000"}, "fps must be from 0.01 to 240"),
        ({"fps": 241}, "fps must be from 0.01 to 240"),
        ({"frames": 10**10}, "frames must be at most 10,000,000"),
        ({"frames": None, "duration": "1e9"}, "frames must be at most"),
        ({"start_frame": 10**7}, "start_frame \\+ frames must be at most"),
        ({"codec": "libnothing"}, "unknown codec"),
        ({"crf": 52}, "crf must be a whole number from 0 to 51"),
        ({"preset": "fastest"}, "unknown preset"),
        ({"image_format": "gif"}, "image_format"),
        ({"quality": 101}, "quality"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"retries": -1}, "retries"),
        ({"capture": "magic"}, "capture must be"),
        ({"props": {"x": object()}}, "JSON-serializable"),
        ({"source": " "}, "source is empty"),
        ({"timezone": "Not a zone!"}, "timezone must be an IANA time zone"),
        ({"timezone": ""}, "timezone must be"),
        ({"locale": "english please"}, "locale must be a language tag"),
        ({"preflight": "yes"}, "preflight must be"),
    ],
)
def test_invalid_options_say_what_to_do(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        make_options(**kwargs)


def test_left_out_timing_is_taken_from_the_composition() -> None:
    unset = make_options(frames=None)
    assert unset.timing_from_page and unset.fps is None
    with pytest.raises(OptionsError, match="give the number of frames"):
        unset.frame_count  # noqa: B018 - reading it is the check
    # Neither given: the composition's own fps and duration (2.1 s is 21/10 s exactly).
    taken = unset.with_page_timing(12.0, 2.1)
    assert (taken.exact_fps, taken.frame_count, taken.timing_from_page) == (Fraction(12), 25, False)
    # The user's fps wins; the length still comes from the page.
    given = make_options(frames=None, fps="30000/1001").with_page_timing(60.0, 3.0)
    assert (given.exact_fps, given.frame_count) == (Fraction(30000, 1001), 90)
    # The user's length wins; a page without an fps leaves the default 30.
    length = make_options(frames=7)
    assert length.timing_from_page
    assert (length.with_page_timing(None, None).exact_fps, length.frame_count) == (Fraction(30), 7)
    assert not make_options(frames=7, fps=30).timing_from_page
    with pytest.raises(OptionsError, match=r"declares no duration.*--frames N"):
        unset.with_page_timing(25.0, None)


def test_duration_becomes_whole_frames() -> None:
    assert make_options(frames=None, duration="3", fps="30000/1001").frame_count == 90
    assert make_options(frames=None, duration=2.5, fps=24).frame_count == 60
    assert make_options(fps=29.97).exact_fps == Fraction(2997, 100)


def test_cluster_specs_are_parsed_or_refused_with_a_clear_message() -> None:
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("tcp://10.0.0.5:8786") == ("remote", "tcp://10.0.0.5:8786")
    for bad in ("local:0", "local:x", "10.0.0.5:8786", "http://host:1"):
        with pytest.raises(ValueError, match="local:N"):
            parse_cluster(bad)
    with pytest.raises(OptionsError, match="local:N"):
        make_options(cluster="local:")


def test_scale_is_1_to_4_and_makes_whole_even_frames() -> None:
    assert make_options(scale=2).output_width == 640
    assert make_options(scale="1.5").output_height == 270
    assert make_options(scale=1.1, width=1000, height=500).exact_scale == Fraction(11, 10)
    assert (make_options(scale=Fraction(4, 3), width=960, height=540).output_width) == 1280
    for bad in (0.5, 4.5, 0, -1, float("nan"), float("inf"), "x", True, None):
        with pytest.raises(OptionsError, match="scale must be a number from 1 to 4"):
            make_options(scale=bad)
    with pytest.raises(OptionsError, match=r"--scale 1.3 makes the frame 429 pixels.*odd"):
        make_options(scale=1.3, width=330)
    with pytest.raises(OptionsError, match=r"whole pixels"):
        make_options(scale=1.25, width=322)
    assert make_options(scale=1.3, width=330, codec="png", output="f/").output_width == 429
    with pytest.raises(OptionsError, match="at most 7680"):
        make_options(scale=4, width=2000, height=1000)
    with pytest.raises(OptionsError, match="skip_static must be True or False"):
        make_options(skip_static="no")
