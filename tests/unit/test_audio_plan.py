"""The pure audio cores: records -> segments -> one FFmpeg graph, and the audio options."""

from __future__ import annotations

import itertools
import math
import pickle
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_render import MediaError, OptionsError
from helios_render._ffmpeg.mix import LocalMedia
from helios_render._model.audio_plan import (
    AUDIO_RATE,
    AudioSegment,
    Soundtrack,
    build_mix,
    localize_sources,
    plan_audio,
    soundtrack_segment,
    total_samples,
)
from helios_render._model.codecs import audio_codec_for
from helios_render._model.job import MediaRecord, dump_records, load_records

from ..factories import make_options

FPS = Fraction(30)


def _play(
    key: str, frames: range, *, src: str = "a.wav", offset: float = 0.0, rate: float = 1.0,
    volume: float = 1.0, loop: bool = False, duration: float | None = None,
) -> list[MediaRecord]:
    records = []
    for frame in frames:
        time = offset + (frame - frames.start) * rate / 30
        if loop and duration:
            time %= duration
        records.append(MediaRecord(frame, key, src, time, volume, rate, loop, duration))
    return records


def test_record_is_frozen_slotted_and_pickles() -> None:
    record = MediaRecord(3, "audio@0ms:0", "http://x/a.wav", 0.1, 0.5, 2.0, True, 1.5, True)
    assert pickle.loads(pickle.dumps(record)) == record
    assert not hasattr(record, "__dict__")
    with pytest.raises(AttributeError):
        record.frame = 4  # type: ignore[misc]
    assert load_records(dump_records([record])) == [record]


def test_continuous_play_is_one_segment_with_exact_start_and_length() -> None:
    segments = plan_audio([_play("a", range(15, 45))], FPS)
    assert segments == (
        AudioSegment("a", "a.wav", Fraction(1, 2), Fraction(1), 0.0, volumes=((Fraction(0), 1.0),)),
    )


def test_a_seek_cuts_the_segment_and_jumps_the_offset() -> None:
    records = _play("a", range(0, 10)) + _play("a", range(10, 20), offset=2.0)
    first, second = plan_audio([records], FPS)
    assert (first.start, first.length, first.offset) == (Fraction(0), Fraction(1, 3), 0.0)
    assert (second.start, second.length, second.offset) == (Fraction(1, 3), Fraction(1, 3), 2.0)


def test_a_gap_cuts_the_segment_and_resumes_where_the_page_says() -> None:
    records = _play("a", range(0, 5)) + _play("a", range(8, 12), offset=5 / 30)
    first, second = plan_audio([records], FPS)
    assert first.length == Fraction(5, 30)
    assert second.start == Fraction(8, 30)
    assert second.offset == pytest.approx(5 / 30)


def test_a_loop_wrap_stays_one_segment_when_the_duration_is_known() -> None:
    records = _play("a", range(0, 60), loop=True, duration=0.55)
    (segment,) = plan_audio([records], FPS)
    assert segment.loop and segment.length == 2


def test_rate_and_source_changes_cut() -> None:
    records = _play("a", range(0, 5)) + _play("a", range(5, 10), offset=5 / 30, rate=2.0)
    records += _play("a", range(10, 12), src="b.wav", offset=15 / 30, rate=2.0)
    segments = plan_audio([records], FPS)
    assert [(s.source, s.rate) for s in segments] == [("a.wav", 1), ("a.wav", 2), ("b.wav", 2)]


def test_volume_changes_are_kept_piecewise_per_frame() -> None:
    records = [
        MediaRecord(k, "a", "a.wav", k / 30, volume, 1.0)
        for k, volume in enumerate([1, 1, 0.5, 0.5, 0.25, 1])
    ]
    (segment,) = plan_audio([records], FPS)
    assert segment.volumes == (
        (Fraction(0), 1), (Fraction(2, 30), 0.5), (Fraction(4, 30), 0.25), (Fraction(5, 30), 1),
    )


def test_a_start_between_frames_is_exact_and_a_stop_between_frames_ends_it() -> None:
    # new Audio().play() from a timer at 1.45 s, paused by a timer at 1.71 s.
    records = [
        MediaRecord(k, "a", "a.wav", k / 30 - 1.45, 1.0, since=1.45) for k in range(44, 52)
    ]
    records.append(MediaRecord(52, "a", "a.wav", 0.26, 1.0, stopped=1.71))
    (segment,) = plan_audio([records], FPS)
    assert segment.start == Fraction(145, 100)
    assert segment.offset == pytest.approx(0.0, abs=1e-9)
    assert segment.start + segment.length == Fraction(171, 100)


def test_a_seek_between_frames_cuts_at_the_seek() -> None:
    before = [MediaRecord(k, "a", "a.wav", k / 30, 1.0, since=0.0) for k in range(0, 10)]
    # seeked to 5 s by a timer at 0.32 s
    after = [
        MediaRecord(k, "a", "a.wav", 5 + k / 30 - 0.32, 1.0, since=0.32) for k in range(10, 20)
    ]
    first, second = plan_audio([before + after], FPS)
    assert first.start + first.length == second.start == Fraction(32, 100)
    assert second.offset == pytest.approx(5.0)


def test_start_frame_shifts_the_output_timeline() -> None:
    (segment,) = plan_audio([_play("a", range(40, 50))], FPS, first_frame=30)
    assert segment.start == Fraction(10, 30)


def test_conflicting_records_for_one_frame_are_refused() -> None:
    with pytest.raises(ValueError, match="two records"):
        plan_audio([_play("a", range(3)), _play("a", range(2, 3), offset=9)], FPS)


_runs = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 40),
        st.integers(1, 30),
        st.sampled_from([0.0, 0.25, 1.5]),
        st.sampled_from([0.5, 1.0]),
        st.sampled_from([1.0, 2.0]),
        st.sampled_from([None, -0.01, 0.01]),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(_runs, st.lists(st.integers(1, 80), max_size=6), st.randoms())
def test_any_chunking_of_the_same_frames_gives_the_same_segments(
    runs: list[tuple[str, int, int, float, float, float, float | None]],
    cuts: list[int],
    rng: object,
) -> None:
    by_key: dict[tuple[str, int], MediaRecord] = {}
    for key, start, length, offset, volume, rate, shift in runs:
        # shift: the clock started a little before the first frame (between frames).
        since = None if shift is None else start / 30 + shift
        for record in _play(key, range(start, start + length), offset=offset, rate=rate,
                            volume=volume):
            record = replace(record, since=since)
            by_key.setdefault((record.key, record.frame), record)
    frames = sorted(by_key.values(), key=lambda r: (r.frame, r.key))
    whole = plan_audio([frames], FPS)
    # Contiguous chunks, as workers render them, handed over in any order.
    bounds = sorted({0, 80, *cuts})
    chunks = [
        [r for r in frames if lo <= r.frame < hi] for lo, hi in itertools.pairwise(bounds)
    ]
    rng.shuffle(chunks)  # type: ignore[attr-defined]
    assert plan_audio(chunks, FPS) == whole
    # Every record is covered by exactly one segment of its element.
    for key in {r.key for r in frames}:
        covered = [
            frame
            for segment in whole
            if segment.key == key
            for frame in range(
                math.ceil(segment.start * 30), math.ceil((segment.start + segment.length) * 30)
            )
        ]
        assert covered == sorted(r.frame for r in frames if r.key == key)


def test_graph_mixes_without_attenuation_and_delays_in_samples() -> None:
    segments = [
        AudioSegment("a", "/m/a.wav", Fraction(1, 2), Fraction(1), 0.0),
        AudioSegment("b", "/m/b.wav", Fraction(3, 2), Fraction(1, 2), 0.25,
                     volumes=((Fraction(0), 0.5),)),
    ]
    graph = build_mix(segments, {"/m/a.wav": 1, "/m/b.wav": 2}, total_samples(60, FPS))
    assert graph.inputs == (("/m/a.wav", False), ("/m/b.wav", False))
    script = graph.script
    assert "amix=inputs=2:normalize=0" in script
    assert "adelay=delays=24000S:all=1" in script and "adelay=delays=72000S:all=1" in script
    assert "[1:a]pan=stereo|c0=c0|c1=c0" in script  # mono at full level on both channels
    assert "atrim=start_sample=12000" in script and "volume=0.5" in script
    assert script.rstrip().endswith("apad=whole_len=96000,atrim=end_sample=96000[aout]")


def test_graph_shares_one_input_between_many_segments_and_loops_with_stream_loop() -> None:
    segments = [
        AudioSegment(f"k{i}", "/m/a.wav", Fraction(i, 30), Fraction(1), 0.0) for i in range(100)
    ] + [AudioSegment("l", "/m/a.wav", Fraction(0), Fraction(2), 0.0, loop=True, duration=0.5)]
    graph = build_mix(segments, {"/m/a.wav": 1}, AUDIO_RATE)
    assert graph.inputs == (("/m/a.wav", False), ("/m/a.wav", True))
    assert "[1:a]asplit=100" in graph.script


def test_graph_rate_and_piecewise_volume() -> None:
    fast = AudioSegment("a", "s", Fraction(0), Fraction(1), 0.0, rate=2.0)
    slow = AudioSegment("b", "s", Fraction(0), Fraction(1), 0.0, rate=0.2)
    faded = AudioSegment(
        "c", "s", Fraction(0), Fraction(1), 0.0,
        volumes=((Fraction(0), 1.0), (Fraction(1, 30), 0.5), (Fraction(2, 30), 0.25)),
    )
    script = build_mix([fast, slow, faded], {"s": 2}, AUDIO_RATE).script
    assert "atempo=2.0" in script
    assert "atempo=0.5,atempo=0.5,atempo=0.8" in script
    assert "if(lt(n,1600),1.0,if(lt(n,3200),0.5,0.25))" in script


def test_soundtrack_offsets_both_ways() -> None:
    later = soundtrack_segment(Soundtrack(Path("/t.wav"), 0.5, 0.8), 60, FPS)
    assert later is not None and (later.start, later.length, later.offset) == (
        Fraction(1, 2), Fraction(3, 2), 0.0
    )
    earlier = soundtrack_segment(Soundtrack(Path("/t.wav"), -1.25, 1.0), 60, FPS)
    assert earlier is not None and (earlier.start, earlier.offset) == (Fraction(0), 1.25)
    assert soundtrack_segment(Soundtrack(Path("/t.wav"), 5.0), 60, FPS) is None


def test_exact_length_for_fractional_fps() -> None:
    assert total_samples(30000, Fraction(30000, 1001)) == 1001 * 48000
    assert total_samples(1, Fraction(30000, 1001)) == 1602  # 1601.6 rounded


def test_codec_per_container() -> None:
    assert audio_codec_for(".mp4") == "aac"
    assert audio_codec_for(".webm") == "opus"
    assert audio_codec_for(".gif") is None
    assert audio_codec_for(".mkv", "pcm") == "pcm"
    with pytest.raises(ValueError, match="cannot hold opus"):
        audio_codec_for(".mov", "opus")


def test_local_media_maps_server_urls_to_files_and_nothing_outside(tmp_path: Path) -> None:
    local = LocalMedia("http://127.0.0.1:9", tmp_path)
    assert local.resolve("http://127.0.0.1:9/sub/a%20b.wav") == str(tmp_path / "sub" / "a b.wav")
    assert local.resolve("https://example.com/x.mp3") == "https://example.com/x.mp3"
    assert local.resolve("file:///srv/x.wav") == "/srv/x.wav"
    with pytest.raises(MediaError, match="outside"):
        local.resolve("http://127.0.0.1:9/../../etc/passwd")


def test_sources_of_workers_serving_on_their_own_ports_agree(tmp_path: Path) -> None:
    worker_a = [MediaRecord(0, "a", "http://127.0.0.1:1111/m/t%20a.wav", 0.0, 1.0)]
    worker_b = [MediaRecord(1, "a", "http://127.0.0.1:2222/m/t%20a.wav", 1 / 30, 1.0)]
    chunks = [
        localize_sources(worker_a, "http://127.0.0.1:1111"),
        localize_sources(worker_b, "http://127.0.0.1:2222/"),
    ]
    (segment,) = plan_audio(chunks, FPS)
    assert segment.source == "bundle:/m/t%20a.wav" and segment.length == Fraction(2, 30)
    local = LocalMedia("http://127.0.0.1:3333", tmp_path)
    assert local.resolve(segment.source) == str(tmp_path / "m" / "t a.wav")
    remote = [MediaRecord(0, "a", "https://cdn.example/t.wav", 0.0, 1.0)]
    assert localize_sources(remote, "http://127.0.0.1:1111") == remote


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"muted": True, "audio": "x.wav"}, "not both"),
        ({"audio_volume": -1}, "0 or more"),
        ({"audio_offset": float("nan")}, "must be a number"),
        ({"audio_codec": "mp3"}, "unknown audio codec"),
        ({"audio_codec": "opus", "output": "o.mov"}, "cannot hold opus"),
        ({"audio_bitrate": "loud"}, "like 128k"),
    ],
)
def test_bad_audio_options_say_what_to_do(settings: dict[str, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        make_options(**settings)
