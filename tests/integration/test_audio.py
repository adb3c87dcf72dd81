"""Sound end to end: tones made by FFmpeg at test time, rendered by real Chromium and FFmpeg,
decoded to PCM and measured with a pure-Python Goertzel."""

from __future__ import annotations

import base64
import math
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import helios_render
from helios_render import AssetError, MediaError, WorkerError
from helios_render._source.server import serve_directory

from ..audio_helpers import (
    RATE,
    SINE_AMPLITUDE,
    decode_mono,
    decode_pcm,
    goertzel,
    make_silent_video,
    make_tone,
    make_two_tones,
    onset,
    rms,
    streams,
)
from ..conftest import EXAMPLES, decode_frames
from ..factories import make_options

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("clean_processes")]

FPS = 30
#: One millisecond, in samples.
MS = RATE // 1000


@pytest.fixture(autouse=True)
def own_tmpdir(tmp_path: Path) -> Iterator[Path]:
    """Each test its own TMPDIR, and nothing may be left in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    saved = tempfile.tempdir
    tempfile.tempdir = str(folder)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved
    assert list(folder.iterdir()) == []


def _page(folder: Path, body: str) -> Path:
    page = folder / "index.html"
    page.write_text(
        "<!doctype html><html><body style='margin:0;background:#000'>"
        f"{body}</body></html>"
    )
    return page


async def _render(
    source: Path | str, output: Path, frames: int, stages: list[str] | None = None, **kwargs: Any
) -> Path:
    options = make_options(
        source=source, output=output, fps=FPS, frames=frames,
        concurrency=kwargs.pop("concurrency", 1), **kwargs,
    )
    seen = stages if stages is not None else []
    result = await helios_render.render(options, on_progress=lambda p: seen.append(p.stage))
    return result.output


def _amplitude(channel: list[float], frequency: float, at: float, seconds: float = 0.1) -> float:
    """Amplitude of ``frequency`` over ``seconds`` from ``at``, relative to a full sine tone."""
    return goertzel(channel, frequency, round(at * RATE), round(seconds * RATE)) / SINE_AMPLITUDE


def _two_tones(folder: Path) -> Path:
    # 440 Hz mono, 0.8 s, from 0.5 s; 1000 Hz stereo at volume 0.5 from 1.5 s to the end.
    make_tone(folder / "a440.wav", 440, 0.8, channels=1)
    make_tone(folder / "b1000.wav", 1000, 3, channels=2)
    return _page(
        folder,
        '<audio id="low" src="a440.wav" data-helios-start="0.5"></audio>'
        '<audio id="high" src="b1000.wav" data-helios-start="1.5"></audio>'
        '<script>document.getElementById("high").volume = 0.5;</script>',
    )


@pytest.mark.slow
async def test_two_tones_exact_amplitudes_onsets_and_silence_in_aac(tmp_path: Path) -> None:
    page = _two_tones(tmp_path)
    out = await _render(page, tmp_path / "out.mp4", 90, concurrency=3)
    assert "codec_name=aac|codec_type=audio|sample_rate=48000|channels=2" in streams(out)
    left, right = decode_pcm(out)
    # Length: exactly frames / fps, within one AAC frame (1024 samples) of decoder padding.
    assert 3 * RATE <= len(left) < 3 * RATE + 1024
    for channel in (left, right):
        # Mono is heard at full level on both channels; volume 0.5 is half; amix does not halve.
        for at in (0.55, 0.8, 1.15):
            assert _amplitude(channel, 440, at) == pytest.approx(1.0, rel=0.01)
        for at in (1.55, 2.0, 2.85):
            assert _amplitude(channel, 1000, at) == pytest.approx(0.5, rel=0.01)
            assert _amplitude(channel, 440, at) < 0.005
    # Onsets within 1 ms of 0.5 s and 1.5 s (no ADTS or encoder delay).
    assert abs(onset(left) - round(0.5 * RATE)) <= MS
    assert abs(onset(left, round(1.4 * RATE), 0.25 * SINE_AMPLITUDE) - round(1.5 * RATE)) <= MS
    # Silence before, between (after the 0.8 s tone ends at 1.3 s) and nowhere else.
    assert max(map(abs, left[: round(0.49 * RATE)])) < 1e-3
    assert max(map(abs, left[round(1.32 * RATE) : round(1.49 * RATE)])) < 1e-3
    # No dip of more than 1 dB in 5 ms windows around the chunk seams at 1 s and 2 s.
    for seam in (1.0, 2.0):
        levels = [
            rms(left, round((seam + k * 0.005) * RATE), 5 * MS) for k in range(-10, 10)
        ]
        reference = max(levels)
        assert min(20 * math.log10(level / reference) for level in levels) > -1.0


@pytest.mark.slow
async def test_one_and_three_workers_give_identical_sample_exact_pcm(tmp_path: Path) -> None:
    page = _two_tones(tmp_path)
    one = await _render(page, tmp_path / "one.mkv", 90, audio_codec="pcm")
    three = await _render(page, tmp_path / "three.mkv", 90, audio_codec="pcm", concurrency=3)
    left, right = decode_pcm(one)
    assert (left, right) == decode_pcm(three)
    assert len(left) == 3 * RATE
    # Sample-exact against the tones themselves (16-bit PCM, FFmpeg's sine table).
    low = decode_mono(tmp_path / "a440.wav")
    high = decode_mono(tmp_path / "b1000.wav")
    expected = [0.0] * (3 * RATE)
    for n, value in enumerate(low):
        expected[round(0.5 * RATE) + n] += value
    for n in range(round(1.5 * RATE), 3 * RATE):
        expected[n] += 0.5 * high[n - round(1.5 * RATE)]
    assert max(abs(a - b) for a, b in zip(left, expected, strict=True)) < 2e-4
    assert left == right


async def test_audio_created_by_script_starts_from_its_own_beginning(tmp_path: Path) -> None:
    # 440 Hz for 0.2 s, then 1000 Hz: if it started anywhere else, the 440 would be missing.
    make_two_tones(tmp_path / "two.wav", 440, 0.2, 1000)
    page = _page(
        tmp_path,
        # Between frames 43 and 44: the sound must start at 1.45 s, not at a frame.
        '<script>setTimeout(() => { new Audio("two.wav").play(); }, 1450);</script>',
    )
    out = await _render(page, tmp_path / "out.mkv", 60, audio_codec="pcm")
    left, _ = decode_pcm(out)
    assert max(map(abs, left[: round(1.449 * RATE)])) < 1e-4
    assert abs(onset(left) - round(1.45 * RATE)) <= MS
    assert _amplitude(left, 440, 1.5, 0.1) == pytest.approx(1.0, rel=0.01)
    assert _amplitude(left, 1000, 1.7, 0.25) == pytest.approx(1.0, rel=0.01)


async def test_rate_loop_seek_and_fade_by_script(tmp_path: Path) -> None:
    make_tone(tmp_path / "tone.wav", 500, 1.0)
    make_tone(tmp_path / "blip.wav", 1500, 0.1)
    # Source of the seek: 300 Hz for 1 s, then 700 Hz.
    make_two_tones(tmp_path / "seek.wav", 300, 1.0, 700)
    page = _page(
        tmp_path,
        '<audio id="fast" src="tone.wav"></audio>'
        '<audio id="blip" src="blip.wav" loop data-helios-start="0.2"></audio>'
        '<audio id="seek" src="seek.wav"></audio>'
        "<script>"
        'const fast = document.getElementById("fast"); fast.playbackRate = 2;'
        'const blip = document.getElementById("blip");'
        'const seek = document.getElementById("seek"); seek.volume = 0.5;'
        # blip: 0.1 s on, loops every 0.1 s... silenced by a gap: duration 0.1 + loop = steady.
        # The seek source jumps to its 700 Hz half at frame 30 (1.0 s).
        "setTimeout(() => { seek.currentTime = 1.0; }, 1000);"
        # A fade of the seek source from 1.5 s: volume 0.5 -> 0 over 15 frames.
        "let first = null;"
        "function fade(ts) { if (first === null) first = ts; const ms = ts - first;"
        " if (ms >= 1500) seek.volume = Math.max(0, 0.5 * (1 - (ms - 1500) / 500));"
        " requestAnimationFrame(fade); } requestAnimationFrame(fade);"
        "</script>",
    )
    out = await _render(page, tmp_path / "out.mkv", 60, audio_codec="pcm")
    left, _ = decode_pcm(out)
    # playbackRate 2: the 1 s tone lasts 0.5 s, pitch kept at 500 Hz.
    assert _amplitude(left, 500, 0.1, 0.3) == pytest.approx(1.0, rel=0.01)
    assert _amplitude(left, 1000, 0.1, 0.3) < 0.01
    assert _amplitude(left, 500, 0.55, 0.3) < 0.01
    # loop: the 0.1 s blip repeats from 0.2 s to the end.
    for at in (0.2, 0.9, 1.7):
        assert _amplitude(left, 1500, at, 0.1) == pytest.approx(1.0, rel=0.01)
    assert _amplitude(left, 1500, 0.05, 0.1) < 0.01
    # seek at 1.0 s: 300 Hz before, 700 Hz (the source's second half) after.
    assert _amplitude(left, 300, 0.6, 0.3) == pytest.approx(0.5, rel=0.01)
    assert _amplitude(left, 700, 0.6, 0.3) < 0.01
    assert _amplitude(left, 700, 1.1, 0.3) == pytest.approx(0.5, rel=0.01)
    assert _amplitude(left, 300, 1.1, 0.3) < 0.01
    # fade: the volume set at each frame holds until the next.
    for k in range(45, 60, 3):
        expected = max(0.0, 0.5 * (1 - (k / FPS - 1.5) / 0.5))
        measured = goertzel(left, 700, round(k / FPS * RATE), RATE // FPS) / SINE_AMPLITUDE
        assert measured == pytest.approx(expected, abs=0.01)


async def test_av_sync_a_tone_starts_at_the_frame_of_its_flash(tmp_path: Path) -> None:
    make_tone(tmp_path / "beep.wav", 1000, 0.3)
    page = _page(
        tmp_path,
        '<div id="flash" style="position:absolute;inset:0;background:#000"></div>'
        '<audio src="beep.wav" data-helios-start="0.6"></audio>'
        "<script>setTimeout(() => {"
        'document.getElementById("flash").style.background = "#fff"; }, 600);</script>',
    )
    out = await _render(page, tmp_path / "out.mp4", 30, image_format="png")
    frames = decode_frames(out)
    flash = next(k for k, frame in enumerate(frames) if frame.pixel(160, 90)[0] > 128)
    assert flash == 18
    left, _ = decode_pcm(out)
    assert abs(onset(left) - round(flash / FPS * RATE)) <= MS


async def test_soundtrack_with_offset_and_volume_mixes_without_attenuation(tmp_path: Path) -> None:
    make_tone(tmp_path / "page.wav", 440, 2)
    make_tone(tmp_path / "track.wav", 2000, 3, channels=2)
    page = _page(tmp_path, '<audio src="page.wav"></audio>')
    stages: list[str] = []
    out = await _render(
        page, tmp_path / "out.mkv", 45, stages, audio_codec="pcm",
        audio=tmp_path / "track.wav", audio_offset=0.5, audio_volume=0.25,
    )
    assert stages[-3:] == ["stitching", "mixing audio", "done"]
    left, right = decode_pcm(out)
    assert len(left) == round(1.5 * RATE)
    assert _amplitude(left, 440, 0.6, 0.5) == pytest.approx(1.0, rel=0.01)
    assert _amplitude(right, 2000, 0.6, 0.5) == pytest.approx(0.25, rel=0.01)
    assert _amplitude(left, 2000, 0.1, 0.3) < 0.005
    later = await _render(
        page, tmp_path / "cut.mkv", 15, audio_codec="pcm",
        audio=tmp_path / "track.wav", audio_offset=-1.0, muted=False,
    )
    assert _amplitude(decode_pcm(later)[0], 2000, 0.0, 0.3) == pytest.approx(1.0, rel=0.01)


async def test_silent_video_and_muted_media_render_without_audio(tmp_path: Path) -> None:
    make_silent_video(tmp_path / "silent.mp4", 1)
    make_tone(tmp_path / "quiet.wav", 440, 1)
    page = _page(
        tmp_path,
        '<video src="silent.mp4" width="320" height="180"></video>'
        '<audio src="quiet.wav" muted></audio>',
    )
    out = await _render(page, tmp_path / "out.mp4", 10)
    assert "codec_type=audio" not in streams(out)
    assert "codec_type=video" in streams(out)


async def test_a_silent_video_beside_a_tone_does_not_break_the_graph(tmp_path: Path) -> None:
    make_silent_video(tmp_path / "silent.mp4", 1)
    make_tone(tmp_path / "tone.wav", 440, 1)
    page = _page(
        tmp_path,
        '<video src="silent.mp4" width="320" height="180"></video><audio src="tone.wav"></audio>',
    )
    out = await _render(page, tmp_path / "out.mkv", 10, audio_codec="pcm")
    assert _amplitude(decode_pcm(out)[0], 440, 0.1, 0.2) == pytest.approx(1.0, rel=0.01)


@pytest.mark.slow
async def test_a_hundred_audio_elements_render(tmp_path: Path) -> None:
    make_tone(tmp_path / "tick.wav", 1000, 0.05)
    tags = "".join(
        f'<audio src="tick.wav" data-helios-start="{k * 0.01:.2f}"></audio>' for k in range(100)
    )
    page = _page(tmp_path, tags)
    out = await _render(page, tmp_path / "out.mkv", 36, audio_codec="pcm")
    left, _ = decode_pcm(out)
    assert len(left) == round(1.2 * RATE)
    # Each 50 ms tick overlaps 4 to 5 others, at full level each: the mix is not normalized.
    assert max(map(abs, left)) > 3 * SINE_AMPLITUDE
    assert abs(onset(left) - 0) <= MS
    assert max(map(abs, left[round(1.06 * RATE) :])) < 1e-4


async def test_a_missing_source_names_the_url_before_any_frame(tmp_path: Path) -> None:
    # A media file the server does not have fails the render at load, like any asset that
    # fails to load (issue 12), before a frame is rendered: the URL and the status say why.
    page = _page(tmp_path, '<audio id="music" src="missing.wav"></audio>')
    with pytest.raises(WorkerError) as caught:
        await _render(page, tmp_path / "out.mp4", 3)
    assert isinstance(caught.value.__cause__, AssetError)
    assert caught.value.exit_code == 1  # the render started and failed (README, exit codes)
    assert re.search(r"could not load the media .*/missing\.wav: HTTP 404", str(caught.value))
    assert caught.value.frame is None
    assert not (tmp_path / "out.mp4").exists()


async def test_a_missing_optional_source_is_skipped(tmp_path: Path) -> None:
    make_tone(tmp_path / "tone.wav", 440, 1)
    page = _page(
        tmp_path,
        '<audio id="music" src="broken.wav" data-helios-optional></audio>'
        '<audio src="tone.wav"></audio>',
    )
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    out = await _render(page, tmp_path / "out.mkv", 6, audio_codec="pcm")
    assert _amplitude(decode_pcm(out)[0], 440, 0.05, 0.1) == pytest.approx(1.0, rel=0.01)


async def test_an_undecodable_source_is_a_media_error(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"not audio at all")
    page = _page(tmp_path, '<audio id="music" src="broken.wav"></audio>')
    with pytest.raises(MediaError, match=r"audio#music@0ms:0.*broken\.wav") as caught:
        await _render(page, tmp_path / "out.mp4", 3)
    assert "data-helios-optional" in str(caught.value)
    assert not (tmp_path / "out.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


async def test_data_urls_are_heard_and_blob_urls_are_a_clear_error(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "tone.wav", 440, 0.5)
    data = base64.b64encode(tone.read_bytes()).decode()
    page = _page(tmp_path, f'<audio src="data:audio/wav;base64,{data}"></audio>')
    out = await _render(page, tmp_path / "out.mkv", 6, audio_codec="pcm")
    assert _amplitude(decode_pcm(out)[0], 440, 0.05, 0.1) == pytest.approx(1.0, rel=0.01)
    blob = _page(
        tmp_path,
        "<script>fetch('tone.wav').then((r) => r.blob()).then((b) => {"
        " const a = document.createElement('audio'); a.src = URL.createObjectURL(b);"
        " document.body.append(a); heliosRender.resume(wait); });"
        " const wait = heliosRender.delay('blob');</script>",
    )
    with pytest.raises(MediaError, match="blob: URLs exist only inside the page"):
        await _render(blob, tmp_path / "blob.mp4", 3)


async def test_the_sound_example_renders_its_pad_and_dings(tmp_path: Path) -> None:
    out = await _render(EXAMPLES / "sound" / "index.html", tmp_path / "sound.mp4", 60)
    left, _ = decode_pcm(out)
    # The pad (a 220 Hz sine made at 0.8 x 1/8 of full scale) at volume 0.3 loops from 0 s.
    for at in (0.1, 0.9, 1.7):
        assert _amplitude(left, 220, at) == pytest.approx(0.3 * 0.8, rel=0.01)
    # A ding at each bounce, created by script: 0.5 s and 1.5 s.
    for hit in (0.5, 1.5):
        assert _amplitude(left, 880, hit + 0.005, 0.05) > 0.5
        assert _amplitude(left, 880, hit - 0.1, 0.05) < 0.01


async def test_remote_media_is_read_from_its_url(tmp_path: Path) -> None:
    make_tone(tmp_path / "tone.wav", 440, 1)
    page = _page(tmp_path, '<audio src="tone.wav" data-helios-start="0.1"></audio>')
    async with serve_directory(tmp_path) as server:
        # Rendered from a URL, the media URLs are not ours to map to files: FFmpeg fetches them.
        out = await _render(server.url_for(page.name), tmp_path / "out.mkv", 9, audio_codec="pcm")
    left, _ = decode_pcm(out)
    assert abs(onset(left) - round(0.1 * RATE)) <= MS
    assert _amplitude(left, 440, 0.15, 0.1) == pytest.approx(1.0, rel=0.01)


async def test_pause_play_and_removal_by_script_act_on_the_sample(tmp_path: Path) -> None:
    make_tone(tmp_path / "tone.wav", 440, 3)
    page = _page(
        tmp_path,
        '<audio id="a" src="tone.wav"></audio><script>const a = document.getElementById("a");'
        "setTimeout(() => a.pause(), 510); setTimeout(() => a.play(), 1010);"
        "setTimeout(() => a.remove(), 1520);</script>",
    )
    out = await _render(page, tmp_path / "out.mkv", 60, audio_codec="pcm")
    left, _ = decode_pcm(out)
    source = decode_mono(tmp_path / "tone.wav")
    paused, resumed, removed = (round(s * RATE) for s in (0.51, 1.01, 1.52))
    assert left[:paused] == pytest.approx(source[:paused], abs=1e-4)
    assert max(map(abs, left[paused:resumed])) < 1e-4
    # play() resumes from where pause() froze it.
    heard = left[resumed:removed]
    assert heard == pytest.approx(source[paused : paused + len(heard)], abs=1e-4)
    assert max(map(abs, left[removed:])) < 1e-4


async def test_start_frame_and_muted(tmp_path: Path) -> None:
    page = _two_tones(tmp_path)
    out = await _render(page, tmp_path / "late.mkv", 30, start_frame=30, audio_codec="pcm")
    left, _ = decode_pcm(out)
    assert len(left) == RATE
    # Composition time 1.0 s is output time 0: the 440 Hz tone is half-way, the 1000 Hz at 0.5 s.
    assert _amplitude(left, 440, 0.0, 0.25) == pytest.approx(1.0, rel=0.01)
    assert max(map(abs, left[round(0.31 * RATE) : round(0.49 * RATE)])) < 1e-4
    assert abs(onset(left, round(0.4 * RATE), 0.25 * SINE_AMPLITUDE) - round(0.5 * RATE)) <= MS
    muted = await _render(page, tmp_path / "muted.mp4", 60, muted=True)
    assert "codec_type=audio" not in streams(muted)
