"""The run book of a cluster render: each worker takes a run of consecutive chunks in order, at
most two at a time; a lost or stalled worker's chunks go, in order, to the first worker free."""

from __future__ import annotations

from helios_render._executors._dask_runs import RunBook
from helios_render._model.job import ChunkJob
from helios_render._model.plan import plan_render

from ..factories import make_env, make_options


def jobs(count: int) -> list[ChunkJob]:
    plan = plan_render(make_options(frames=count * 10, chunk_frames=10), make_env())
    assert len(plan.jobs) == count
    return list(plan.jobs)


def indices(given: list[tuple[str, ChunkJob]]) -> list[tuple[str, int]]:
    return [(worker, job.index) for worker, job in given]


def test_each_worker_gets_its_run_in_order_two_at_a_time() -> None:
    book = RunBook(jobs(8), ["a", "b"], now=0.0)
    assert indices(book.take(0.0)) == [("a", 0), ("a", 1), ("b", 4), ("b", 5)]
    assert book.take(0.0) == []  # every worker holds two
    assert book.settled(0, 1.0) == "a"
    assert indices(book.take(1.0)) == [("a", 2)]
    assert book.held("a") == (1, 2)
    for index in (1, 2):
        book.settled(index, 2.0)
    assert indices(book.take(2.0)) == [("a", 3)]
    book.settled(3, 3.0)
    assert book.take(3.0) == [] and book.waiting == 2  # b's run is b's


def test_a_dropped_worker_hands_its_held_chunks_and_run_on_in_order() -> None:
    book = RunBook(jobs(8), ["a", "b"], now=0.0)
    order = [job.index for worker, job in book.take(0.0) if worker == "a"]
    dropped = book.drop("b", "left the cluster")
    assert dropped is not None and dropped.held == (4, 5)
    assert book.drop("b", "again") is None
    assert book.live == ["a"] and book.gone == {"b": "left the cluster"}
    # a finishes its own run first, then takes b's, from b's first unfinished chunk.
    while book.waiting or book.held("a"):
        for _, job in book.take(0.0):
            order.append(job.index)
        book.settled(book.held("a")[0], 0.0)
    assert order == [0, 1, 2, 3, 4, 5, 6, 7]


def test_a_retried_chunk_goes_first_to_the_first_worker_with_room() -> None:
    book = RunBook(jobs(4), ["a", "b"], now=0.0)
    book.take(0.0)  # a: 0, 1; b: 2, 3
    book.retry(0)
    assert book.first_waiting().index == 0
    assert indices(book.take(0.0)) == [("a", 0)]


def test_a_worker_unheard_of_for_the_timeout_is_stalled() -> None:
    book = RunBook(jobs(4), ["a", "b"], now=0.0)
    book.take(0.0)
    book.heard("a", 8.0)
    assert book.stalled(9.0, timeout=5.0) == ["b"]
    assert book.stalled(12.0, timeout=5.0) == ["b"]
    assert book.stalled(14.0, timeout=5.0) == ["a", "b"]
    idle = RunBook(jobs(1), ["a", "b"], now=0.0)
    idle.take(0.0)
    assert idle.stalled(100.0, timeout=5.0) == ["a"]  # b holds nothing: never stalled

