"""Every HeliosError crosses a process boundary intact: it pickles to an equal error."""

from __future__ import annotations

import io
import pickle
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

import helios_render
from helios_render import CdpCommandError, HeliosError, WorkerError


def _all_subclasses(cls: type[HeliosError]) -> list[type[HeliosError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


for _name in helios_render.__all__:  # some are imported when first asked for (BatchError)
    getattr(helios_render, _name)
ERROR_TYPES = _all_subclasses(HeliosError)


_E = TypeVar("_E", bound=HeliosError)


def roundtrip(error: _E) -> _E:
    """Pickle and unpickle with the classes' own reducers. (Importing ``distributed`` installs
    tblib's reducer for every exception class in ``copyreg``, which also pickles the
    ``__context__`` chain; what crosses a cluster is checked in tests/test_cluster.py.)"""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.dispatch_table = {}
    pickler.dump(error)
    copy = pickle.loads(buffer.getvalue())
    assert isinstance(copy, type(error))
    return copy
text = st.text(max_size=80)


def plain_errors() -> st.SearchStrategy[HeliosError]:
    simple = [t for t in ERROR_TYPES if t not in (CdpCommandError, WorkerError)]
    return st.builds(lambda t, m: t(m), st.sampled_from(simple), text)


cdp_errors = st.builds(CdpCommandError, text, st.integers(-(2**31), 2**31), text)
causes = st.one_of(plain_errors(), cdp_errors, st.builds(ValueError, text),
                   st.builds(RuntimeError, text))
worker_errors = st.builds(
    WorkerError,
    st.integers(0, 10_000),
    st.tuples(st.integers(0, 1000), st.integers(1001, 2000)),
    st.one_of(st.none(), st.integers(0, 2000)),
    causes,
    st.one_of(st.none(), st.floats(0, 1e6)),
    st.one_of(st.none(), st.integers(0, 64), st.just("tcp://10.0.0.5:4000")),
)
any_error = st.one_of(plain_errors(), cdp_errors, worker_errors)


def test_the_tree_is_complete() -> None:
    # Every public error is reachable from HeliosError, so the property below covers it.
    public = {getattr(helios_render, n) for n in helios_render.__all__}
    errors = {e for e in public if isinstance(e, type) and issubclass(e, BaseException)}
    assert errors <= set(ERROR_TYPES)


@given(any_error)
def test_every_error_pickles_to_an_equal_error(error: HeliosError) -> None:
    copy = roundtrip(error)
    assert type(copy) is type(error)
    assert copy == error
    assert str(copy) == str(error)
    assert copy.exit_code == error.exit_code
    assert hash(copy) == hash(error)


@given(worker_errors)
def test_a_worker_error_keeps_its_cause_and_where_it_happened(error: WorkerError) -> None:
    copy = roundtrip(error)
    assert (copy.chunk_index, copy.chunk, copy.frame, copy.failed_at, copy.worker) == (
        error.chunk_index, error.chunk, error.frame, error.failed_at, error.worker,
    )
    assert type(copy.__cause__) is type(error.__cause__)
    assert str(copy.__cause__) == str(error.__cause__)


def test_an_unpicklable_cause_is_kept_as_its_type_and_message() -> None:
    class Local(Exception):  # defined in a function: pickle cannot find it by name
        pass

    error = WorkerError(1, (0, 10), 3, Local("odd"))
    assert isinstance(error.__cause__, Local)  # in this process, the error as it was raised
    copy = roundtrip(error)
    assert "Local: odd" in str(copy.__cause__)
    assert str(copy) == str(error) and copy.frame == 3


class _Job:
    """What ``WorkerError.for_job`` reads of a job (a ChunkJob has more)."""

    index = 7
    start = 420
    end = 480


def test_for_job_names_the_chunk_its_frames_the_frame_and_the_worker() -> None:
    cause = helios_render.PageError("boom")
    error = WorkerError.for_job(_Job(), cause, 431, failed_at=2.5, worker=1)
    assert str(error) == "chunk 7 (frames 420..479) failed at frame 431 on worker 1: boom"
    assert (error.chunk_index, error.chunk, error.frame, error.failed_at, error.worker) == (
        7, (420, 480), 431, 2.5, 1,
    )
    assert error.__cause__ is cause and error.exit_code == cause.exit_code
    before = WorkerError.for_job(_Job(), ValueError("odd"))
    assert str(before) == "chunk 7 (frames 420..479) failed before its first frame: odd"
    assert before.worker is None


def test_for_job_keeps_a_worker_error_and_adds_the_worker_once() -> None:
    error = WorkerError.for_job(_Job(), helios_render.BrowserError("crashed"), 430)
    assert WorkerError.for_job(_Job(), error) is error
    named = WorkerError.for_job(_Job(), error, worker="tcp://10.0.0.5:4000")
    assert named.worker == "tcp://10.0.0.5:4000"
    assert (named.chunk_index, named.frame, named.__cause__) == (7, 430, error.__cause__)
    assert str(named).endswith("at frame 430 on worker tcp://10.0.0.5:4000: crashed")
    assert WorkerError.for_job(_Job(), named, worker=3) is named  # already named


def test_worker_id_is_a_deprecated_alias_of_chunk_index() -> None:
    error = WorkerError(7, (420, 480), None, ValueError("odd"))
    with pytest.warns(DeprecationWarning, match="chunk_index"):
        assert error.worker_id == 7
    progress = helios_render.WorkerProgress(3, 0.5)
    with pytest.warns(DeprecationWarning, match=r"WorkerProgress\.chunk"):
        assert progress.worker_id == 3 == progress.chunk
    state = helios_render.RenderProgress(
        progress=0.5, stage="rendering", frames_done=5, frames_total=10, chunks=(1.0, 0.0),
        fps=None, eta=None, elapsed=1.0,
    )
    with pytest.warns(DeprecationWarning, match=r"RenderProgress\.chunks"):
        assert state.workers == (1.0, 0.0) == state.chunks
    # Scripts read the old JSON key: it stays, with the new one beside it.
    assert state.as_json()["workers"] == state.as_json()["chunks"] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("cause", "retryable", "deterministic"),
    [
        (helios_render.BrowserError("crashed"), True, False),
        (helios_render.CdpConnectionClosed("gone"), True, False),
        (helios_render.CdpCommandError("Page.navigate", -32000, "no"), False, False),
        (helios_render.PageError("threw"), False, True),
        (helios_render.FrameTimeoutError("late"), False, True),
        (helios_render.MediaError("cannot decode"), False, True),
        (helios_render.AssetError("HTTP 404"), False, True),
        (helios_render.CaptureStalledError("beginFrame did not answer"), True, False),
        (helios_render.SourceError("missing"), False, True),
        (helios_render.OptionsError("bad"), False, True),
        (helios_render.ClusterError("cannot reach the scheduler"), False, False),
        (helios_render.EncoderError("disk full"), False, False),
        (helios_render.RenderError("odd"), False, False),
        (ValueError("a bug"), False, False),
    ],
)
def test_the_classifiers_judge_a_worker_error_by_its_cause(
    cause: Exception, retryable: bool, deterministic: bool
) -> None:
    from helios_render._exceptions import is_deterministic, is_retryable
    from helios_render._executors import is_retryable as reexported

    assert reexported is is_retryable
    error = WorkerError.for_job(_Job(), cause, 430)
    assert (is_retryable(cause), is_deterministic(cause)) == (retryable, deterministic)
    assert (is_retryable(error), is_deterministic(error)) == (retryable, deterministic)
