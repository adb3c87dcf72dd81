"""Which jobs of a run one FFmpeg writes as segments (:func:`segment_run`)."""

from __future__ import annotations

import dataclasses

from helios_render._ffmpeg.segments import SEGMENTS_PER_ENCODER, segment_run
from helios_render._model.job import ChunkJob
from helios_render._model.plan import plan_chunks

from ..factories import make_encoder, make_job


def _run_of(count: int, codec: str = "h264") -> list[ChunkJob]:
    encoder = make_encoder(codec=codec)
    return [make_job(chunk, encoder=encoder) for chunk in plan_chunks(0, count * 10, 10)]


def test_consecutive_mpegts_chunks_share_one_encoder() -> None:
    jobs = _run_of(4)
    assert segment_run(jobs[0], jobs[1:]) == jobs


def test_a_run_is_cut_at_a_gap_in_chunks_or_frames() -> None:
    jobs = _run_of(4)
    assert segment_run(jobs[0], [jobs[1], jobs[3]]) == jobs[:2]


def test_a_run_is_cut_where_the_encoding_changes() -> None:
    jobs = _run_of(3)
    other = dataclasses.replace(jobs[2], encoder=make_encoder(crf=30))
    assert segment_run(jobs[0], [jobs[1], other]) == jobs[:2]


def test_at_most_segments_per_encoder_chunks_share_one() -> None:
    jobs = _run_of(SEGMENTS_PER_ENCODER + 3)
    assert segment_run(jobs[0], jobs[1:]) == jobs[:SEGMENTS_PER_ENCODER]


def test_chunks_of_other_containers_get_an_encoder_each() -> None:
    jobs = _run_of(3, codec="vp9")
    assert segment_run(jobs[0], jobs[1:]) == jobs[:1]
