"""End-to-end renders with real Chromium and FFmpeg: frame k shows the composition at k / fps."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import helios_render
import helios_render._chromium.browser
from helios_render import RenderOptions, RenderProgress

from ..conftest import COMPOSITIONS, decode_frames, probe
from ..factories import make_lossless_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

W, H = 640, 360


def _options(tmp_path: Path, page: str, **kwargs: Any) -> RenderOptions:
    """``page`` at 640x360 on one worker, lossless."""
    settings: dict[str, Any] = {"width": W, "height": H, "concurrency": 1}
    settings.update(kwargs)
    return make_lossless_options(tmp_path, COMPOSITIONS / page, **settings)


def _red(p: tuple[int, int, int]) -> bool:
    return p[0] > 180 and p[1] < 90 and p[2] < 90


def _blue(p: tuple[int, int, int]) -> bool:
    return p[2] > 180 and p[0] < 90 and p[1] < 90


def _green(p: tuple[int, int, int]) -> bool:
    return p[1] > 180 and p[0] < 90 and p[2] < 90


def _expected_x(frame: int, fps: Fraction, speed: float = 500.0) -> float:
    return float(Fraction(frame) / fps) * speed


async def test_css_animation_is_exact_at_first_middle_and_last_frame(tmp_path: Path) -> None:
    options = _options(tmp_path, "css_linear.html", frames=31)
    result = await helios_render.render(options)
    info = probe(result.output)
    assert info["nb_read_frames"] == "31"
    assert info["codec_name"] == "h264"
    assert (info["width"], info["height"]) == (str(W), str(H))
    frames = decode_frames(result.output, [0, 15, 30])
    for frame, index in zip(frames, [0, 15, 30], strict=True):
        x = frame.first_x(120, _red)
        assert x is not None, f"no red block in frame {index}"
        assert abs(x - _expected_x(index, Fraction(30))) <= 2, (index, x)


async def test_web_animation_is_exact(tmp_path: Path) -> None:
    result = await helios_render.render(_options(tmp_path, "waapi.html", frames=25))
    for index, frame in zip([0, 12, 24], decode_frames(result.output, [0, 12, 24]), strict=True):
        x = frame.first_x(120, _blue)
        assert x is not None
        assert abs(x - _expected_x(index, Fraction(30))) <= 2, (index, x)


async def test_raf_canvas_gets_the_virtual_timestamp_once_per_frame(tmp_path: Path) -> None:
    result = await helios_render.render(_options(tmp_path, "raf_canvas.html", frames=20))
    for index, frame in zip([0, 10, 19], decode_frames(result.output, [0, 10, 19]), strict=True):
        x = frame.first_x(120, _green)
        assert x is not None
        assert abs(x - round(_expected_x(index, Fraction(30)))) <= 2, (index, x)
        # The call counter bar is (calls * 4) px wide: exactly one rAF call per frame.
        width = frame.first_x(210, lambda p: p[0] > 128)
        assert width is not None
        assert abs(width - (index + 1) * 4) <= 2, (index, width)


async def test_set_timeout_changes_colour_at_its_virtual_time(tmp_path: Path) -> None:
    result = await helios_render.render(_options(tmp_path, "timeout_color.html", frames=31))
    frames = decode_frames(result.output, [0, 14, 15, 29, 30])
    colours = [frame.pixel(W // 2, H // 2) for frame in frames]
    assert _blue(colours[0]) and _blue(colours[1]), colours
    assert _green(colours[2]) and _green(colours[3]), colours
    assert _red(colours[4]), colours


async def test_fractional_fps_uses_exact_frame_times(tmp_path: Path) -> None:
    fps = Fraction(30000, 1001)
    options = _options(tmp_path, "css_linear.html", frames=31, fps="30000/1001")
    result = await helios_render.render(options)
    info = probe(result.output)
    assert info["r_frame_rate"] == "30000/1001"
    assert info["nb_read_frames"] == "31"
    for index, frame in zip([0, 15, 30], decode_frames(result.output, [0, 15, 30]), strict=True):
        x = frame.first_x(120, _red)
        assert x is not None
        assert abs(x - _expected_x(index, fps)) <= 2, (index, x)


async def test_png_renders_are_deterministic(tmp_path: Path) -> None:
    first = await helios_render.render(
        _options(tmp_path, "raf_canvas.html", frames=12, output=tmp_path / "a.mp4")
    )
    second = await helios_render.render(
        _options(tmp_path, "raf_canvas.html", frames=12, output=tmp_path / "b.mp4")
    )
    a, b = decode_frames(first.output), decode_frames(second.output)
    assert len(a) == len(b) == 12
    assert [f.rgb for f in a] == [f.rgb for f in b]


async def test_progress_is_monotonic_and_ends_at_one(tmp_path: Path) -> None:
    states: list[RenderProgress] = []
    await helios_render.render(
        _options(tmp_path, "css_linear.html", frames=20), on_progress=states.append
    )
    values = [s.progress for s in states]
    assert values == sorted(values)
    assert values[-1] == 1.0
    assert all(v < 1.0 for v in values[: values.index(1.0)])
    assert states[0].stage == "launching" and states[0].progress == 0.0
    assert states[-1].stage == "done"
    assert states[-1].frames_done == 20


async def test_render_still_writes_the_frame_as_png(tmp_path: Path) -> None:
    options = _options(tmp_path, "css_linear.html", frames=1, output=tmp_path / "still.png")
    path = await helios_render.render_still(options, 30)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    frame = decode_frames(path)[0]
    x = frame.first_x(120, _red)
    assert x is not None and abs(x - 500) <= 1


async def test_a_still_needs_no_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine with a browser and no FFmpeg: a still is the browser's PNG, nothing encodes it.
    bare = tmp_path / "bin"
    bare.mkdir()
    browser = helios_render._chromium.browser.find_browser()
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("HELIOS_FFMPEG", raising=False)
    options = _options(tmp_path, "css_linear.html", frames=1, output=tmp_path / "still.png",
                       browser=browser)
    path = await helios_render.render_still(options, 30)
    monkeypatch.undo()
    assert decode_frames(path)[0].first_x(120, _red) in range(499, 502)
    # A video without FFmpeg still says what to install.
    monkeypatch.setenv("PATH", str(bare))
    monkeypatch.delenv("HELIOS_FFMPEG", raising=False)
    with pytest.raises(helios_render.ToolNotFoundError, match="FFmpeg not found on PATH"):
        await helios_render.render(_options(tmp_path, "css_linear.html", frames=2,
                                            browser=browser))


async def test_an_existing_output_is_replaced_only_on_success(tmp_path: Path) -> None:
    output = tmp_path / "out.mp4"
    output.write_bytes(b"precious")
    with pytest.raises(helios_render.WorkerError):
        await helios_render.render(
            _options(tmp_path, "throws_at.html", frames=10, props={"throwAt": 0.1})
        )
    assert output.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


async def test_a_late_start_on_an_raf_page_reports_its_replay(tmp_path: Path) -> None:
    # Frames 0..119 are run first (rAF state is built frame by frame): that is a stage of its
    # own, with its own progress, instead of a long silence.
    states: list[RenderProgress] = []
    await helios_render.render(
        _options(tmp_path, "resume.html", width=320, height=180, frames=4, start_frame=120),
        on_progress=states.append,
    )
    stages = [s.stage for s in states]
    assert stages.index("launching") < stages.index("replaying") < stages.index("rendering")
    replaying = [s for s in states if s.stage == "replaying"]
    values = [s.replaying for s in replaying]
    assert all(v is not None and 0 < v <= 1 for v in values), values
    assert values == sorted(values)  # type: ignore[type-var]
    assert all(s.progress == 0.0 for s in replaying)
    assert states[-1].progress == 1.0 and states[-1].replaying is None


async def test_a_late_start_runs_every_frame_before_it_once(tmp_path: Path) -> None:
    # The frames before a late start go to the page many in one call (calls grow as they are
    # found cheap): the page's count of rAF calls shows that each ran once, none skipped or
    # doubled. At frame k its black bar is (k + 1) * 4 px wide.
    result = await helios_render.render(
        _options(tmp_path, "raf_canvas.html", frames=3, start_frame=150)
    )
    for k, frame in zip(range(150, 153), decode_frames(result.output), strict=True):
        black = [x for x in range(W) if max(frame.pixel(x, 210)) < 60]
        assert black == list(range((k + 1) * 4)), (k, len(black))


async def test_a_replay_that_throws_names_the_frame_that_threw(tmp_path: Path) -> None:
    # 49/30 s < 1.65 s <= 50/30 s: frame 50 throws, inside a call of many replayed frames.
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(
            _options(tmp_path, "throws_at.html", frames=2, start_frame=200,
                     props={"throwAt": 1.65})
        )
    assert caught.value.frame == 50, caught.value
    assert "boom at 1666.7 ms" in str(caught.value)


async def test_a_replay_that_hangs_times_out_naming_the_frame_and_what_it_waits_for(
    tmp_path: Path,
) -> None:
    page = tmp_path / "hangs.html"
    page.write_text(
        "<!doctype html><script>let n = 0; function tick() { n += 1;"
        " if (n === 61) heliosRender.delay('a handle never resumed');"
        " requestAnimationFrame(tick); } requestAnimationFrame(tick);</script>"
    )
    with pytest.raises(helios_render.WorkerError) as caught:
        await helios_render.render(
            make_lossless_options(tmp_path, page, frames=2, start_frame=200, timeout=2)
        )
    assert isinstance(caught.value.cause, helios_render.FrameTimeoutError), caught.value
    assert caught.value.frame == 60, caught.value
    assert "frame 60 was not ready" in str(caught.value)
    assert "a handle never resumed" in str(caught.value)


async def test_a_late_start_handles_the_messages_each_replayed_frame_posts_before_the_next(
    tmp_path: Path,
) -> None:
    # A page may post itself a message in each frame (a setImmediate polyfill does) and count
    # on it being handled before the next frame, as it is in a whole render: replayed frames
    # keep a task boundary between them, though many go to the page in one call.
    for start in (0, 150):
        result = await helios_render.render(
            _options(tmp_path, "raf_posts_messages.html", frames=2, start_frame=start,
                     output=tmp_path / f"from-{start}.mp4")
        )
        for frame in decode_frames(result.output):
            assert frame.pixel(160, 90)[1] > 200 and frame.pixel(160, 90)[0] < 60, start


async def test_a_replay_whose_frames_turn_slow_is_not_taken_for_a_hang(tmp_path: Path) -> None:
    # Frames 0..59 are cheap, later ones take tens of milliseconds each: the 140 slow frames
    # before frame 200 take longer together than the 2 s timeout of one frame. Each call to the
    # page returns after about 50 ms of work, so no call nears the timeout.
    page = tmp_path / "slows.html"
    page.write_text(
        "<!doctype html><script>let sink = 0; function tick() {"
        " if (heliosRender.frame >= 60) for (let i = 0; i < 2e6; i++) sink += Math.sqrt(i);"
        " requestAnimationFrame(tick); } requestAnimationFrame(tick);</script>"
    )
    result = await helios_render.render(
        make_lossless_options(tmp_path, page, frames=1, start_frame=200, timeout=2)
    )
    assert probe(result.output)["nb_read_frames"] == "1"
