"""The exceptions helios_render raises.

Every error a user can meet is a :class:`HeliosError` and says what went wrong and what to do.
``exit_code`` is what the command line exits with for it.

```
HeliosError
├── UsageError                  bad options or environment: exit 2
│   ├── OptionsError            an invalid RenderOptions value
│   ├── SourceError             the composition cannot be found or loaded
│   └── ToolNotFoundError       Chromium or FFmpeg is missing
└── RenderError                 the render started and failed: exit 1
    ├── BrowserError            Chromium failed to start, crashed or went away
    │   └── CdpError            the DevTools protocol failed
    │       ├── CdpCommandError     a command was answered with an error
    │       └── CdpConnectionClosed the connection closed (pending commands fail with it)
    ├── PageError               the composition threw an uncaught exception
    ├── FrameTimeoutError       a frame (or the page load) did not become ready in time
    ├── EncoderError            FFmpeg failed
    ├── MediaError              a media source the page plays cannot be read or decoded
    └── WorkerError             one worker failed: names worker, chunk and frame;
                                ``__cause__`` is the original error
```
"""

from __future__ import annotations

__all__ = [
    "BrowserError",
    "CdpCommandError",
    "CdpConnectionClosed",
    "CdpError",
    "EncoderError",
    "FrameTimeoutError",
    "HeliosError",
    "MediaError",
    "OptionsError",
    "PageError",
    "RenderError",
    "SourceError",
    "ToolNotFoundError",
    "UsageError",
    "WorkerError",
]


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


class OptionsError(UsageError, ValueError):
    """A :class:`~helios_render.RenderOptions` value is invalid."""


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


class PageError(RenderError):
    """The composition threw an uncaught exception (its message and stack are included)."""


class FrameTimeoutError(RenderError):
    """A frame, or the page load, did not become ready within the timeout."""


class EncoderError(RenderError):
    """FFmpeg failed; the message ends with the tail of its log."""


class MediaError(RenderError):
    """A media source the page plays (or ``--audio``) is missing or cannot be decoded."""


class WorkerError(RenderError):
    """One worker of a render failed; ``__cause__`` holds the original error.

    Attributes:
        worker_id: Index of the worker that failed.
        chunk: ``(first_frame, end_frame)`` of the worker's chunk, end exclusive.
        frame: The frame being rendered when it failed, or ``None`` before the first frame.
        failed_at: ``trio.current_time()`` when the worker raised, before its cleanup.
    """

    def __init__(
        self,
        worker_id: int,
        chunk: tuple[int, int],
        frame: int | None,
        cause: BaseException,
        failed_at: float | None = None,
    ) -> None:
        where = "before its first frame" if frame is None else f"at frame {frame}"
        super().__init__(
            f"worker {worker_id} (frames {chunk[0]}..{chunk[1] - 1}) failed {where}: {cause}"
        )
        self.worker_id = worker_id
        self.chunk = chunk
        self.frame = frame
        #: The original error (also ``__cause__``; kept as an attribute so that it pickles).
        self.cause = cause
        #: ``trio.current_time()`` when the error was raised in the worker, if known.
        self.failed_at = failed_at
        # A usage problem found by a worker (unreachable URL, unknown codec) is still a usage
        # problem for the command line.
        self.exit_code = cause.exit_code if isinstance(cause, HeliosError) else 1
        self.__cause__ = cause

    def __reduce__(self) -> tuple[object, ...]:
        state = dict(self.__dict__)
        cause = state.get("cause")
        if isinstance(cause, BaseException) and not _picklable(cause):
            # An arbitrary error from a page or library may not survive pickling: the copy
            # keeps its type and message, which is what a user reads.
            state["cause"] = RenderError(f"{type(cause).__name__}: {cause}")
        return (_rebuild, (type(self), self.args, state))


def _picklable(error: BaseException) -> bool:
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True
