"""Every HeliosError crosses a process boundary intact: it pickles to an equal error."""

from __future__ import annotations

import io
import pickle
from typing import TypeVar

from hypothesis import given
from hypothesis import strategies as st

import helios_render
from helios_render import CdpCommandError, HeliosError, WorkerError


def _all_subclasses(cls: type[HeliosError]) -> list[type[HeliosError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


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
    assert (copy.worker_id, copy.chunk, copy.frame, copy.failed_at) == (
        error.worker_id, error.chunk, error.frame, error.failed_at,
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
