"""Runs of consecutive chunks: one stretch of the timeline per worker, balanced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from helios_render._model.job import assign_runs
from helios_render._model.plan import plan_chunks


@given(
    frames=st.integers(1, 5_000),
    chunk_frames=st.integers(1, 200),
    workers=st.integers(1, 16),
    holes=st.sets(st.integers(0, 100)),
)
def test_runs_are_consecutive_cover_every_chunk_and_are_balanced(
    frames: int, chunk_frames: int, workers: int, holes: set[int]
) -> None:
    chunks = [c for c in plan_chunks(0, frames, chunk_frames) if c.index not in holes]
    runs = assign_runs(chunks, workers)
    assert [c for run in runs for c in run] == chunks
    assert len(runs) == min(workers, len(chunks))
    assert all(runs)
    if runs:
        loads = [sum(c.frames for c in run) for run in runs]
        biggest = max(c.frames for c in chunks)
        # Contiguous cuts nearest to the equal shares: no run is off by more than a chunk
        # or so from the mean.
        mean = sum(loads) / len(loads)
        assert max(loads) - mean <= 2 * biggest
