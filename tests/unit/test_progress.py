"""ProgressAggregator: monotonic, weighted, exactly 1.0 when (and only when) all are done."""

from __future__ import annotations

import math

import pytest
import trio
import trio.lowlevel
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from helios_render import ProgressAggregator, RenderProgress, WorkerProgress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class AggregatorMachine(RuleBasedStateMachine):
    """Any interleaving of updates, odd ones included, keeps the promises."""

    @initialize(weights=st.lists(st.integers(1, 500), min_size=1, max_size=8))
    def setup(self, weights: list[int]) -> None:
        self.weights = weights
        self.clock = FakeClock()
        self.published: list[RenderProgress] = []
        self.aggregator = ProgressAggregator(
            weights, self.published.append, min_interval=0.1, clock=self.clock
        )
        self.best = [0.0] * len(weights)

    @rule(
        data=st.data(),
        p=st.one_of(
            st.floats(-1, 2, allow_nan=False), st.just(1.0), st.just(0.0), st.just(math.nan)
        ),
    )
    def report(self, data: st.DataObject, p: float) -> None:
        worker = data.draw(st.integers(-1, len(self.weights)))
        self.aggregator.update(worker, p)
        if 0 <= worker < len(self.weights) and not math.isnan(p):
            self.best[worker] = max(self.best[worker], min(max(p, 0.0), 1.0))

    @rule(worker=st.integers(0, 7))
    def finish_worker(self, worker: int) -> None:
        if worker < len(self.weights):
            self.aggregator.update(worker, 1.0)
            self.best[worker] = 1.0

    @rule(dt=st.floats(0, 1))
    def tick(self, dt: float) -> None:
        self.clock.now += dt

    @invariant()
    def value_is_the_promised_weighted_sum(self) -> None:
        value = self.aggregator.progress
        all_done = all(b == 1.0 for b in self.best)
        if all_done:
            assert value == 1.0
        else:
            expected = math.fsum(b * w for b, w in zip(self.best, self.weights, strict=True))
            expected /= sum(self.weights)
            assert value < 1.0
            assert math.isclose(value, min(expected, math.nextafter(1.0, 0.0)), abs_tol=1e-12)

    @invariant()
    def published_values_are_monotonic_and_in_range(self) -> None:
        values = [s.progress for s in self.published]
        assert values == sorted(values)
        assert all(0.0 <= v <= 1.0 for v in values)
        if values and values[-1] == 1.0:
            assert all(b == 1.0 for b in self.best)

    @invariant()
    def completion_is_always_published(self) -> None:
        if all(b == 1.0 for b in self.best):
            assert self.published and self.published[-1].progress == 1.0


TestAggregatorMachine = AggregatorMachine.TestCase
TestAggregatorMachine.settings = settings(max_examples=200, stateful_step_count=40)


def test_updates_are_coalesced() -> None:
    clock = FakeClock()
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([1000], published.append, min_interval=0.1, clock=clock)
    for done in range(1, 1000):
        aggregator.update(0, done / 1000)
        clock.now += 0.001
    # 1 s of updates at 1 kHz: about 10 publications plus the first, not 1000.
    assert 5 <= len(published) <= 15
    aggregator.update(0, 1.0)
    assert published[-1].progress == 1.0


def test_weights_follow_frames() -> None:
    aggregator = ProgressAggregator([10, 30])
    aggregator.update(1, 1.0)
    assert aggregator.progress == pytest.approx(0.75)
    assert aggregator.frames_done() == 30
    aggregator.update(0, 0.5)
    assert aggregator.progress == pytest.approx(0.875)


def test_stage_moves_forward_only_and_reports_fps_and_eta() -> None:
    clock = FakeClock()
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([100], published.append, clock=clock)
    assert aggregator.snapshot().stage == "launching"
    clock.now = 1.0
    aggregator.update(0, 0.1)
    assert published[-1].stage == "rendering"
    clock.now = 2.0
    aggregator.update(0, 0.3)
    state = published[-1]
    assert state.fps == pytest.approx(20.0)
    assert state.eta == pytest.approx(3.5)
    assert aggregator.set_stage("launching") is None
    stitching = aggregator.set_stage("stitching")
    assert stitching is not None and stitching.stage == "stitching"


def test_works_without_a_callback() -> None:
    aggregator = ProgressAggregator({0: 5, 1: 5})
    aggregator.update(0, 1.0)
    aggregator.update(1, 1.0)
    assert aggregator.progress == 1.0 and aggregator.all_done


def test_rejects_empty_or_zero_weights() -> None:
    with pytest.raises(ValueError):
        ProgressAggregator([])
    with pytest.raises(ValueError):
        ProgressAggregator([3, 0])


@settings(deadline=None, max_examples=30)
@given(st.lists(st.lists(st.floats(0, 1), max_size=10), min_size=1, max_size=5))
async def test_run_consumes_until_every_clone_is_closed(reports: list[list[float]]) -> None:
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([3] * len(reports), published.append, min_interval=0)
    send, receive = trio.open_memory_channel[WorkerProgress](0)

    async def worker(
        worker_id: int, values: list[float], channel: trio.MemorySendChannel[WorkerProgress]
    ) -> None:
        async with channel:
            for p in [*values, 1.0]:
                await channel.send(WorkerProgress(worker_id, p))
                await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(aggregator.run, receive)
        async with send:
            for worker_id, values in enumerate(reports):
                nursery.start_soon(worker, worker_id, values, send.clone())
    assert aggregator.progress == 1.0
    assert published[-1].progress == 1.0
    values = [s.progress for s in published]
    assert values == sorted(values)


def test_replaying_is_a_stage_of_its_own_that_never_moves_the_progress() -> None:
    published: list[RenderProgress] = []
    clock = iter(float(i) for i in range(1000))
    aggregator = ProgressAggregator([10, 10], published.append, min_interval=0,
                                    clock=lambda: next(clock))
    aggregator.announce()
    aggregator.replay(1, 0.25)
    aggregator.replay(1, 0.5)
    aggregator.replay(1, 0.4)  # never goes back
    assert [s.stage for s in published] == ["launching", "replaying", "replaying"]
    assert [s.replaying for s in published] == [None, 0.25, 0.5]
    assert all(s.progress == 0.0 for s in published)
    assert published[-1].as_json()["replaying"] == 0.5
    aggregator.update(0, 0.5)  # worker 0 renders: the render is rendering
    assert published[-1].stage == "rendering"
    assert published[-1].replaying == 0.5  # worker 1 still replays
    aggregator.replay(1, 1.0)
    assert aggregator.snapshot().replaying == 1.0  # done replaying, not yet rendering
    aggregator.update(1, 0.1)
    assert published[-1].replaying is None
    aggregator.update(0, 1.0)
    aggregator.update(1, 1.0)
    assert published[-1].progress == 1.0


def test_replay_reports_from_unknown_workers_or_nan_are_dropped() -> None:
    aggregator = ProgressAggregator([5])
    assert aggregator.replay(7, 0.5) is None
    assert aggregator.replay(0, float("nan")) is None
    assert aggregator.snapshot().stage == "launching"


def test_progress_says_which_machine_renders_which_chunk() -> None:
    aggregator = ProgressAggregator([10, 10, 10])
    aggregator.set_machine(1, "tcp://10.0.0.5:4000")
    aggregator.set_machine(7, "tcp://nowhere:1")  # an unknown chunk is dropped
    state = aggregator.snapshot()
    assert state.machines == (None, "tcp://10.0.0.5:4000", None)
    assert state.as_json()["machines"] == [None, "tcp://10.0.0.5:4000", None]
    assert {"progress", "workers", "retries", "frames_reused"} <= set(state.as_json())


def test_static_frames_of_finished_chunks_are_counted_in_every_publication() -> None:
    published: list[RenderProgress] = []
    aggregator = ProgressAggregator([10, 10], published.append, min_interval=0.0)
    aggregator.update(0, 0.5)
    aggregator.count_skipped(4)
    aggregator.count_skipped(0)
    aggregator.update(0, 1.0)
    assert published[-1].frames_skipped == 4
    assert published[-1].as_json()["frames_skipped"] == 4
    assert published[0].frames_skipped == 0
