"""The plan partitions the frame range exactly once, balanced, for any input."""

from __future__ import annotations

import itertools
import pickle
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helios_render._model.audio_plan import AudioPlan, Soundtrack
from helios_render._model.job import ChunkJob, FolderSource, UrlSource, assign_runs
from helios_render._model.plan import (
    DEFAULT_CHUNK_FRAMES,
    default_chunk_frames,
    default_concurrency,
    encoder_threads,
    plan_chunks,
    plan_render,
)

from ..factories import make_env, make_options


@given(
    start=st.integers(0, 10**6),
    frames=st.integers(1, 100_000),
    chunk_frames=st.integers(1, 500),
)
def test_chunks_partition_the_range_exactly_once_and_balanced(
    start: int, frames: int, chunk_frames: int
) -> None:
    chunks = plan_chunks(start, frames, chunk_frames)
    assert chunks[0].start == start
    assert chunks[-1].end == start + frames
    for before, after in itertools.pairwise(chunks):
        assert before.end == after.start
    sizes = [c.frames for c in chunks]
    assert min(sizes) >= 1
    assert max(sizes) <= chunk_frames
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == frames
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len(chunks) == -(-frames // chunk_frames)


@given(frames=st.integers(1, 100_000))
def test_default_chunks_are_at_most_60_frames_and_enough_for_eight_workers(frames: int) -> None:
    size = default_chunk_frames(frames)
    chunks = plan_chunks(0, frames, size)
    assert max(c.frames for c in chunks) <= DEFAULT_CHUNK_FRAMES
    if frames >= 80:
        assert len(chunks) >= 8
    if len(chunks) > 1:
        assert min(c.frames for c in chunks) >= 10 or frames > 80


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        plan_chunks(0, 0, 1)
    with pytest.raises(ValueError):
        plan_chunks(0, 10, 0)
    with pytest.raises(ValueError):
        assign_runs(plan_chunks(0, 10, 5), 0)


ENV = make_env()

#: 300 frames: enough chunks that concurrency, up to 64, has something to change.
_options = partial(make_options, frames=300)


@given(concurrency=st.integers(1, 64))
def test_chunk_boundaries_and_digest_do_not_depend_on_concurrency(concurrency: int) -> None:
    reference = plan_render(_options(concurrency=1), ENV)
    plan = plan_render(_options(concurrency=concurrency), ENV)
    assert plan.chunks == reference.chunks
    assert plan.digest == reference.digest
    assert plan.jobs == reference.jobs
    assert plan.concurrency == min(concurrency, len(plan.chunks))


@pytest.mark.parametrize(
    "change",
    [{"width": 640}, {"height": 360}, {"fps": 60}, {"frames": 301}, {"start_frame": 1},
     {"codec": "h265"}, {"crf": 0}, {"preset": "ultrafast"}, {"image_format": "png"},
     {"quality": 80}, {"props": {"a": 1}}, {"seed": 1}, {"chunk_frames": 10},
     {"output": "/tmp/out.mkv"}, {"timezone": "Asia/Tokyo"}, {"locale": "fr-FR"}],
)
def test_every_setting_that_changes_pixels_changes_the_digest(change: dict[str, object]) -> None:
    assert plan_render(_options(**change), ENV).digest != plan_render(_options(), ENV).digest


@pytest.mark.parametrize(
    "env_change",
    [{"browser_version": "Chromium 2.0"}, {"ffmpeg_version": "ffmpeg 6"},
     {"begin_frame": True}, {"source_digest": "def"},
     {"source": FolderSource(root="/srv/comp", entry="other.html")}],
)
def test_tools_capture_path_and_composition_change_the_digest(
    env_change: dict[str, object],
) -> None:
    changed = replace(ENV, **env_change)  # type: ignore[arg-type]
    assert plan_render(_options(), changed).digest != plan_render(_options(), ENV).digest


@pytest.mark.parametrize(
    "change", [{"timeout": 5.0}, {"retries": 3}, {"concurrency": 4}, {"resume": False},
               {"ignore_page_errors": True}, {"capture": "screenshot"}, {"muted": True},
               {"audio": "track.wav"}, {"audio_offset": 1.5}, {"audio_volume": 0.5},
               {"audio_codec": "aac"}, {"audio_bitrate": "96k"}],
)
def test_settings_that_keep_pixels_keep_the_digest(change: dict[str, object]) -> None:
    assert plan_render(_options(**change), ENV).digest == plan_render(_options(), ENV).digest


def test_the_sound_is_not_in_the_digest_so_its_changes_reuse_every_chunk() -> None:
    track = Soundtrack(Path("/srv/track.wav"), 0.5, 0.8)
    with_track = replace(ENV, soundtrack=track, ffprobe=Path("/usr/bin/ffprobe"))
    assert plan_render(_options(), with_track).digest == plan_render(_options(), ENV).digest


def test_the_plan_carries_the_sound_and_the_tools_the_stitch_needs() -> None:
    track = Soundtrack(Path("/srv/track.wav"), -0.25, 0.5)
    env = replace(ENV, soundtrack=track, ffprobe=Path("/usr/bin/ffprobe"))
    plan = plan_render(_options(audio_bitrate="96k"), env)
    assert plan.audio == AudioPlan(
        codec="aac", bitrate="96k", soundtrack=track, muted=False, media_root="/srv/comp"
    )
    assert (plan.ffmpeg, plan.ffprobe) == (Path("/usr/bin/ffmpeg"), Path("/usr/bin/ffprobe"))
    assert plan.audio.audible
    webm = plan_render(_options(output="/tmp/out.webm", codec="vp9", audio_codec="opus"), ENV)
    assert webm.audio.codec == "opus" and webm.audio.soundtrack is None
    muted = plan_render(_options(muted=True), ENV).audio
    assert muted.muted and not muted.audible
    gif = plan_render(_options(output="/tmp/out.gif", codec="gif"), ENV).audio
    assert gif.codec is None and not gif.audible
    url = replace(ENV, source=UrlSource("https://example.com/"), source_digest=None)
    assert plan_render(_options(), url).audio.media_root is None


def test_a_url_source_is_not_resumable_by_default() -> None:
    url = replace(ENV, source=UrlSource("https://example.com/"), source_digest=None)
    assert not plan_render(_options(), url).resumable
    assert plan_render(_options(), ENV).resumable


@given(index=st.integers(0, 20))
def test_chunk_jobs_pickle_to_equal_jobs(index: int) -> None:
    plan = plan_render(_options(props={"title": "é", "n": [1, 2.5, None]}), ENV)
    job = plan.jobs[index % len(plan.jobs)]
    assert isinstance(job, ChunkJob)
    assert pickle.loads(pickle.dumps(job)) == job


def test_default_concurrency_is_one_per_cpu_capped_by_memory() -> None:
    gib = 1024**3
    assert default_concurrency(2, 24 * gib) == 2
    assert default_concurrency(4, 24 * gib) == 4
    assert default_concurrency(64, 24 * gib) == 8
    assert default_concurrency(16, 3 * gib) == 2
    assert default_concurrency(2, 2 * gib) == 1
    assert default_concurrency(1, 1) == 1


def test_each_encoder_gets_its_share_of_the_cpus() -> None:
    assert encoder_threads(2, 2) == 1
    assert encoder_threads(1, 2) == 2
    assert encoder_threads(3, 16) == 5
    assert encoder_threads(8, 2) == 1  # more workers than CPUs: still one thread each
    assert encoder_threads(1, 1) == 1


def test_the_preflight_s_font_families_reach_every_job() -> None:
    from dataclasses import replace

    plan = plan_render(_options(), replace(ENV, font_families=("Inter", "serif")))
    assert {job.page.font_families for job in plan.jobs} == {("Inter", "serif")}
    assert plan.digest == plan_render(_options(), ENV).digest


def test_scale_enlarges_the_frames_and_is_in_the_digest_skip_static_is_not() -> None:
    scaled = plan_render(_options(scale=1.5, width=320, height=180), ENV)
    plain = plan_render(_options(width=320, height=180), ENV)
    assert scaled.digest != plain.digest
    assert (scaled.width, scaled.height) == (480, 270)
    job = scaled.jobs[0]
    assert (job.encoder.width, job.encoder.height) == (480, 270)
    assert (job.page.width, job.page.height, job.page.scale) == (320, 180, 1.5)
    assert plan_render(_options(scale=1), ENV).digest == plan_render(_options(), ENV).digest
    unskipped = plan_render(_options(skip_static=False), ENV)
    assert unskipped.digest == plan_render(_options(), ENV).digest
    assert plan_render(_options(), ENV).jobs[0].page.skip_static
    assert not unskipped.jobs[0].page.skip_static
