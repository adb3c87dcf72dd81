"""The exceptions helios_render raises.

Every error a user can meet is a :class:`HeliosError` and says what went wrong and what to do.
``exit_code`` is what the command line exits with for it.

```
HeliosError
├── UsageError                  bad options or environment: exit 2
│   ├── OptionsError            an invalid RenderOptions value
│   │   └── PropsError          props that do not match the composition's props schema
│   ├── SourceError             the composition cannot be found or loaded
│   └── ToolNotFoundError       Chromium or FFmpeg is missing
└── RenderError                 the render started and failed: exit 1
    ├── BrowserError            Chromium failed to start, crashed or went away
    │   ├── CdpError            the DevTools protocol failed
    │   │   ├── CdpCommandError     a command was answered with an error
    │   │   └── CdpConnectionClosed the connection closed (pending commands fail with it)
    │   └── CaptureStalledError a beginFrame capture never answered (a starved or hung
    │                           compositor: retried on a fresh browser)
    ├── PageError               the composition threw an uncaught exception
    ├── FrameTimeoutError       a frame (or the page load) did not become ready in time
    ├── EncoderError            FFmpeg failed
    ├── AssetError              a file the composition uses (script, stylesheet, image, font,
    │   │                       media) failed to load or cannot be decoded
    │   └── MediaError          a media source the page plays cannot be read or decoded
    ├── PreflightError          --strict: the preflight warned (before anything rendered)
    └── WorkerError             one chunk failed: names chunk, frames, frame and (where
                                known) the worker; ``__cause__`` is the original error
```

Two questions are asked of an error, here beside the tree so that the answers are in one place
(of a :class:`WorkerError`, they are asked of its ``__cause__``):

* :func:`is_retryable`, *may a fresh browser pass?* Yes for the crash class: ``BrowserError``
  and ``CdpError``, ``CdpConnectionClosed``, ``CaptureStalledError`` (``retryable = True``);
  never for
  ``CdpCommandError`` (Chromium answered, so it would answer the same) nor any other class.
  The executors retry such a chunk (``retries`` times), unless the render is already stopping.
* :func:`is_deterministic`, *would a rerun only fail the same way?* Yes for ``PageError``,
  ``FrameTimeoutError``, ``AssetError`` (and ``MediaError``) and every ``UsageError`` but
  ``ClusterError`` (a cluster that cannot render as it is: fixed, a rerun resumes): the
  render's job folder is then
  removed. Crashes, ``EncoderError`` (a full disk), other ``RenderError`` s and interruptions are
  not: the job folder is kept, and a rerun resumes.

Errors of the layers below (Trio, FFmpeg's exit, Dask) are mapped to these where they cross into
ours (``raise OurError(...) from exc``); an error raised while rendering a chunk becomes its
:class:`WorkerError` in one place, :meth:`WorkerError.for_job`.
"""

from __future__ import annotations

import logging
import warnings
from typing import Protocol

__all__ = [
    "AssetError",
    "BrowserError",
    "CaptureStalledError",
    "CdpCommandError",
    "CdpConnectionClosed",
    "CdpError",
    "ClusterError",
    "EncoderError",
    "FrameTimeoutError",
    "HeliosError",
    "MediaError",
    "OptionsError",
    "PageError",
    "PreflightError",
    "PropsError",
    "RenderError",
    "SourceError",
    "ToolNotFoundError",
    "UsageError",
    "WorkerError",
    "is_deterministic",
    "is_retryable",
]

logger = logging.getLogger(__name__)


def _rebuild(
    cls: type[HeliosError], args: tuple[object, ...], state: dict[str, object]
) -> HeliosError:
    """Unpickle a :class:`HeliosError` without calling its (subclass-specific) ``__init__``."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    cause = state.get("cause")
    if isinstance(cause, BaseException):
        error.__cause__ = cause
    return error


def _comparable(state: dict[str, object]) -> dict[str, object]:
    # Errors other than ours compare by identity; after a round trip they are equal when
    # their type and arguments are.
    return {
        key: (type(value), value.args)
        if isinstance(value, BaseException) and not isinstance(value, HeliosError)
        else value
        for key, value in state.items()
    }


class HeliosError(Exception):
    """Base class of every error helios_render raises on purpose.

    Every subclass pickles and unpickles to an equal error (errors cross process boundaries
    when chunks render in other processes or on other machines): equality is by type,
    message and attributes.
    """

    exit_code: int = 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, HeliosError)
        return self.args == other.args and _comparable(self.__dict__) == _comparable(
            other.__dict__
        )

    def __hash__(self) -> int:
        return hash((type(self), self.args))


class UsageError(HeliosError):
    """The options or the environment are wrong; nothing was rendered."""

    exit_code = 2


class ClusterError(UsageError):
    """The cluster cannot render as it is: its scheduler cannot be reached, it has no usable
    worker, its workers differ (versions, fonts, capture path), or TLS or Dask is missing.
    Fixed, the same command resumes: the job folder is kept."""


class OptionsError(UsageError, ValueError):
    """A :class:`~helios_render.RenderOptions` value is invalid."""


class PropsError(OptionsError):
    """Props do not match the composition's props schema (or the schema is not valid JSON
    Schema): one line naming the row, where there is one, and the prop."""


class SourceError(UsageError):
    """The composition could not be found or loaded (missing file, unreachable URL)."""


class ToolNotFoundError(UsageError):
    """Chromium or FFmpeg could not be found or does not run."""


class RenderError(HeliosError):
    """The render started and failed."""


class BrowserError(RenderError):
    """Chromium failed to start, crashed, or the connection to it was lost."""

    #: Crash-class failures may succeed on a fresh browser.
    retryable = True


class CdpError(BrowserError):
    """A DevTools protocol failure."""


class CdpCommandError(CdpError):
    """Chromium answered a command with an error.

    Attributes:
        method: The CDP method, e.g. ``"Page.navigate"``.
        code: The protocol error code.
        detail: The protocol error message.
    """

    retryable = False

    def __init__(self, method: str, code: int, detail: str) -> None:
        super().__init__(f"CDP command {method} failed: {detail} (code {code})")
        self.method = method
        self.code = code
        self.detail = detail

    def __repr__(self) -> str:
        return f"CdpCommandError(method={self.method!r}, code={self.code}, detail={self.detail!r})"


class CdpConnectionClosed(CdpError):
    """The DevTools connection closed; every pending and later command fails with this."""


class CaptureStalledError(BrowserError):
    """``HeadlessExperimental.beginFrame`` did not answer within the timeout.

    The page's seek had finished: what did not answer is the compositor, which a starved
    machine (a load of 15 on 2 cores) can hold for longer than the timeout. Not a fault of
    the page, so it is retried on a fresh browser like a crash, and counted as a retry.
    """


class PageError(RenderError):
    """The composition threw an uncaught exception (its message and stack are included)."""


class FrameTimeoutError(RenderError):
    """A frame, or the page load, did not become ready within the timeout."""


class EncoderError(RenderError):
    """FFmpeg failed; the message ends with the tail of its log."""


class AssetError(RenderError):
    """A file the composition uses (a script, stylesheet, image, font, media or text track)
    failed to load, or cannot be decoded.

    The render started and failed, so the command line exits with 1, like every failure of
    what the composition does; exit 2 is kept for what stops a render from starting (the
    options, the SOURCE page itself, a missing Chromium or FFmpeg).
    """


class MediaError(AssetError):
    """A media source the page plays (or ``--audio``) is missing or cannot be decoded."""


class PreflightError(RenderError):
    """``--strict``: the preflight found what may make frames differ between runs or machines;
    nothing was rendered (``helios-render inspect`` lists every warning)."""


class ChunkLike(Protocol):
    """What :meth:`WorkerError.for_job` reads of a job: a
    :class:`~helios_render._model.job.ChunkJob`, which this leaf module does not import (the
    values import the errors)."""

    @property
    def index(self) -> int: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


class WorkerError(RenderError):
    """One chunk of a render failed; ``__cause__`` holds the original error.

    Its message names the chunk, its frames, the frame and, where known, the worker that ran
    it: ``chunk 7 (frames 420..479) failed at frame 431 on worker 1: ...``.

    Attributes:
        chunk_index: Index of the chunk that failed (its place in the render's plan).
        chunk: ``(first_frame, end_frame)`` of the chunk, end exclusive.
        frame: The frame being rendered when it failed, or ``None`` before the first frame.
        failed_at: ``trio.current_time()`` when the worker raised, before its cleanup.
        worker: The worker that ran the chunk, where known: the slot of a local render
            (``0`` to ``workers - 1``) or a Dask worker's address; else ``None``.
        worker_id: Deprecated alias of :attr:`chunk_index` (it always was the chunk's index,
            not a worker's); warns with :class:`DeprecationWarning`.
    """

    def __init__(
        self,
        chunk_index: int,
        chunk: tuple[int, int],
        frame: int | None,
        cause: BaseException,
        failed_at: float | None = None,
        worker: int | str | None = None,
    ) -> None:
        where = "before its first frame" if frame is None else f"at frame {frame}"
        by = "" if worker is None else f" on worker {worker}"
        super().__init__(
            f"chunk {chunk_index} (frames {chunk[0]}..{chunk[1] - 1}) failed {where}{by}: {cause}"
        )
        self.chunk_index = chunk_index
        self.chunk = chunk
        self.frame = frame
        #: The original error (also ``__cause__``; kept as an attribute so that it pickles).
        self.cause = cause
        #: ``trio.current_time()`` when the error was raised in the worker, if known.
        self.failed_at = failed_at
        self.worker = worker
        # A usage problem found by a worker (unreachable URL, unknown codec) is still a usage
        # problem for the command line.
        self.exit_code = cause.exit_code if isinstance(cause, HeliosError) else 1
        self.__cause__ = cause

    @classmethod
    def for_job(
        cls,
        job: ChunkLike,
        exc: BaseException,
        frame: int | None = None,
        *,
        failed_at: float | None = None,
        worker: int | str | None = None,
    ) -> WorkerError:
        """``exc``, raised while rendering ``job``, as the job's error: the one place a
        :class:`WorkerError` is made. Raise it ``from`` its cause.

        A :class:`WorkerError` already is one and is returned as it is, except that a
        ``worker`` not yet named is added (a copy with the same chunk, frame and cause).

        Args:
            job: The chunk's job (``index``, ``start``, ``end``).
            exc: What was raised; an error not of ours is logged (DEBUG, with its traceback).
            frame: The frame being rendered, or ``None`` before the first (or not known).
            failed_at: ``trio.current_time()`` when it was raised, if known.
            worker: The worker that ran the chunk, if known.
        """
        if isinstance(exc, WorkerError):
            if worker is None or exc.worker is not None:
                return exc
            return cls(exc.chunk_index, exc.chunk, exc.frame, exc.cause, exc.failed_at, worker)
        if not isinstance(exc, HeliosError):
            logger.debug("unexpected error in chunk %d", job.index, exc_info=exc)
        return cls(job.index, (job.start, job.end), frame, exc, failed_at, worker)

    @property
    def worker_id(self) -> int:
        """Deprecated: the chunk's index; use :attr:`chunk_index`."""
        warnings.warn(
            "WorkerError.worker_id is the chunk's index and is deprecated: use "
            "WorkerError.chunk_index (WorkerError.worker names the worker, where known)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.chunk_index

    def __reduce__(self) -> tuple[object, ...]:
        state = dict(self.__dict__)
        cause = state.get("cause")
        if isinstance(cause, BaseException) and not _picklable(cause):
            # An arbitrary error from a page or library may not survive pickling: the copy
            # keeps its type and message, which is what a user reads.
            state["cause"] = RenderError(f"{type(cause).__name__}: {cause}")
        return (_rebuild, (type(self), self.args, state))


def _unwrap(error: BaseException) -> BaseException:
    if isinstance(error, WorkerError) and error.__cause__ is not None:
        return error.__cause__
    return error


def is_retryable(error: BaseException) -> bool:
    """Crash-class failures (browser or page crashed, target closed, connection lost) may pass
    on a fresh browser; deterministic ones (page errors, timeouts, bad options) never do. Of a
    :class:`WorkerError`, its cause is judged. See the module docstring."""
    error = _unwrap(error)
    return isinstance(error, BrowserError) and error.retryable


def is_deterministic(error: BaseException) -> bool:
    """Whether a rerun would only fail the same way (the page threw, a frame never became
    ready, a media source cannot be decoded, bad options): then the job folder is removed.
    Crashes, encoder failures (a full disk) and interruptions keep it, so the rerun resumes.
    Of a :class:`WorkerError`, its cause is judged. See the module docstring."""
    cause = _unwrap(error)
    if isinstance(cause, ClusterError):
        return False  # the cluster, not the render: fixed, a rerun resumes
    return isinstance(cause, (PageError, FrameTimeoutError, AssetError, UsageError))


def _picklable(error: BaseException) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True
