"""Batches without a browser: reading rows, naming outputs, the manifest, the batch progress,
and the scheduling of rows on warm workers (fake ones) for any failure schedule."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from helios_render import ProgressAggregator, PropsError, WorkerError
from helios_render._batch import (
    BatchError,
    BatchManifest,
    RowResult,
    SourceRow,
    _Batch,
    _Row,
    output_for,
    read_rows,
)
from helios_render._executors import RunHooks
from helios_render._executors.local import WarmWorkers, open_warm_workers
from helios_render._model.batch_progress import BatchProgress, BatchState
from helios_render._model.job import ChunkResult
from helios_render._model.progress import RenderProgress, WorkerProgress
from helios_render._nursery import task_nursery

from .test_pool import Machine, factory, row_jobs

# ---- rows ------------------------------------------------------------------------------------


def test_csv_rows_keep_their_text_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('name,count\n"Ada, Countess",3\n\nBob,007\n')
    rows = read_rows(path)
    assert [(r.index, r.where, r.values, r.cells) for r in rows] == [
        (0, "line 2", {"name": "Ada, Countess", "count": "3"}, True),
        (1, "line 4", {"name": "Bob", "count": "007"}, True),
    ]


def test_jsonl_and_json_rows(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"a": 1}\n\n{"a": [2]}\n')
    assert [r.values for r in read_rows(tmp_path / "rows.jsonl")] == [{"a": 1}, {"a": [2]}]
    (tmp_path / "rows.json").write_text('[{"a": 1}, {"b": null}]')
    assert [r.values for r in read_rows(tmp_path / "rows.json")] == [{"a": 1}, {"b": None}]
    assert [r.values for r in read_rows([{"x": 1}])] == [{"x": 1}]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("rows.txt", "a", "give a .csv, .jsonl or .json"),
        ("rows.csv", "", "is empty"),
        ("rows.csv", "a,,b\n1,2,3\n", "name a prop in every column"),
        ("rows.csv", "a,a\n1,2\n", "names a twice"),
        ("rows.csv", "a,b\n1\n", "line 2 has 1 cells, the header 2"),
        ("rows.jsonl", '{"a": 1}\n[1]\n', "line 2 is not a JSON object"),
        ("rows.jsonl", '{"a": 1}\n{bad\n', "line 2 is not valid JSON"),
        ("rows.json", '{"a": 1}', "JSON array of objects"),
    ],
)
def test_bad_rows_files_are_one_clear_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(BatchError, match=message):
        read_rows(tmp_path / name)


def test_a_missing_rows_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(BatchError, match="cannot read rows file") as caught:
        read_rows(tmp_path / "nope.csv")
    assert caught.value.exit_code == 2


def test_output_names_come_from_the_index_and_the_props(tmp_path: Path) -> None:
    name = output_for(str(tmp_path / "{index:04d}-{name}.mp4"), 7, {"name": "Ada"}, "row 7")
    assert name == tmp_path / "0007-Ada.mp4"
    with pytest.raises(PropsError, match=r"^row 2: the output template names \{city\}"):
        output_for("{city}.mp4", 2, {"name": "x"}, "row 2")
    with pytest.raises(PropsError, match="does not fit"):
        output_for("{index:d}-{name:d}.mp4", 2, {"name": "x"}, "row 2")


def test_the_manifest_knows_a_row_by_digest_and_file(tmp_path: Path) -> None:
    output = tmp_path / "a.mp4"
    output.write_bytes(b"video")
    manifest = BatchManifest(tmp_path / ".rows.csv.helios-batch.json")
    manifest.record(0, output, "d1")
    again = BatchManifest(tmp_path / ".rows.csv.helios-batch.json")
    assert again.complete(0, output, "d1")
    assert not again.complete(0, output, "d2")  # another digest: the row changed
    assert not again.complete(1, output, "d1")
    output.write_bytes(b"another video")  # the file is not the one the row wrote
    assert not again.complete(0, output, "d1")
    (tmp_path / ".rows.csv.helios-batch.json").write_text("{not json")
    assert BatchManifest(tmp_path / ".rows.csv.helios-batch.json").rows == {}


# ---- the batch progress ----------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.sampled_from(["start", "progress", "end"]),
        st.integers(0, 5),
        st.floats(-0.5, 1.5) | st.just(math.nan),
        st.sampled_from(["done", "skipped", "failed"]),
    ),
    max_size=60,
)


@given(frames=st.lists(st.integers(1, 100), min_size=1, max_size=5), events=events)
def test_batch_progress_is_monotonic_and_exactly_one_when_every_row_ended(
    frames: list[int], events: list[tuple[str, int, float, str]]
) -> None:
    published: list[BatchState] = []
    clock = iter(range(10_000))
    progress = BatchProgress(
        dict(enumerate(frames)), published.append, min_interval=0, clock=lambda: next(clock)
    )
    for kind, row, value, how in events:
        if kind == "start":
            progress.row_started(row)
        elif kind == "progress":
            progress.row_progress(row, value)
        else:
            progress.row_ended(row, how)  # type: ignore[arg-type]
    values = [state.progress for state in published]
    assert values == sorted(values) and all(0.0 <= v <= 1.0 for v in values)
    assert (progress.progress == 1.0) == progress.finished
    for row in range(len(frames)):
        progress.row_ended(row, "done")
    final = published[-1]
    assert final.progress == 1.0 and final.frames_done == final.frames_total == sum(frames)
    assert final.rows_done + final.rows_skipped + final.rows_failed == len(frames)
    assert final.rows_running == ()


# ---- rows on warm workers --------------------------------------------------------------------


@dataclass
class FakePool:
    """A render pool whose renders are fake chunk jobs on real warm workers."""

    workers: WarmWorkers
    machine: Machine
    concurrency: int
    rendered: list[int] = field(default_factory=list)

    def statistics(self) -> SimpleNamespace:
        return SimpleNamespace(browsers_launched=self.workers.statistics().browsers_launched)

    async def render(self, options: Any, *, on_progress: Any, plan: Any) -> Any:
        jobs = row_jobs(plan.row, plan.chunks)
        aggregator = ProgressAggregator([job.frames for job in jobs], on_progress,
                                        min_interval=0)
        send, receive = trio.open_memory_channel[WorkerProgress](math.inf)

        async def on_result(result: ChunkResult) -> None:
            pass

        hooks = RunHooks(
            on_result=on_result,
            report=lambda chunk, p: send.send_nowait(WorkerProgress(chunk, p)),
            retries=1,
            scratch=Path("/nonexistent"),
        )
        async with task_nursery() as nursery:
            nursery.start_soon(aggregator.run, receive)
            async with send:
                await self.workers.run(jobs, hooks)
        self.rendered.append(plan.row)
        return SimpleNamespace(frames=plan.frames, frames_reused=0, elapsed=0.0)


def fake_row(index: int, chunks: int) -> _Row:
    row = _Row(SourceRow(index, f"line {index + 2}", {}), f"row {index}")
    row.options = SimpleNamespace()  # type: ignore[assignment]
    row.output = Path(f"/nonexistent/{index}.mp4")
    row.plan = SimpleNamespace(  # type: ignore[assignment]
        row=index, chunks=chunks, frames=chunks * 5, digest=f"d{index}", concurrency=2
    )
    return row


@settings(deadline=None, max_examples=30)
@given(
    concurrency=st.integers(1, 3),
    rows=st.lists(st.tuples(st.integers(1, 3), st.booleans()), min_size=1, max_size=7),
    fail_fast=st.booleans(),
)
async def test_any_schedule_of_row_failures(
    concurrency: int, rows: list[tuple[int, bool]], fail_fast: bool
) -> None:
    """Every row that does not fail is complete; progress is monotonic and ends at 1.0
    (without fail_fast); nothing is left running; with fail_fast the first failure stops
    the batch."""
    machine = Machine()
    for index, (_, fails) in enumerate(rows):
        if fails:
            machine.fail_at[(index, 0)] = 1
    published: list[BatchState] = []
    results: list[RowResult] = []
    events: list[dict[str, Any]] = []
    raised: BaseException | None = None
    with trio.fail_after(30):
        async with open_warm_workers(concurrency, factory(machine)) as workers:
            pool = FakePool(workers, machine, concurrency)
            batch = _Batch(
                pool, "src.html", [{}] * len(rows), "{index}.mp4", None, False,  # type: ignore[arg-type]
                fail_fast, None, published.append, events.append, {},
            )
            send, receive = trio.open_memory_channel[RowResult](math.inf)
            try:
                async with task_nursery() as nursery:
                    nursery.start_soon(
                        batch.run, [fake_row(i, chunks) for i, (chunks, _) in enumerate(rows)],
                        send,
                    )
                    async with receive:
                        async for result in receive:
                            results.append(result)
            except WorkerError as exc:
                raised = exc
    assert machine.running == set() and machine.alive == 0 and machine.pages_open == 0
    values = [state.progress for state in published]
    assert values == sorted(values)
    failing = {index for index, (_, fails) in enumerate(rows) if fails}
    by_row = {result.index: result for result in results}
    if fail_fast and failing:
        assert raised is not None and isinstance(raised, WorkerError)
        assert {r.index for r in results if r.status == "failed"} <= failing
        return
    assert raised is None
    assert sorted(by_row) == list(range(len(rows)))
    for index in range(len(rows)):
        expected = "failed" if index in failing else "done"
        assert by_row[index].status == expected, (index, by_row[index])
    assert sorted(pool.rendered) == sorted(set(range(len(rows))) - failing)
    assert values[-1] == 1.0
    kinds = [(e["event"], e["row"]) for e in events]
    for index in range(len(rows)):
        end = "row-error" if index in failing else "row-done"
        assert kinds.index(("row-start", index)) < kinds.index((end, index))
    _ = json.dumps(events)  # every event is JSON
    _ = RenderProgress  # (the fake pool publishes RenderProgress through the aggregator)
