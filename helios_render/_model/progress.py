"""ProgressAggregator: per-chunk progress in, one honest global progress out.

Workers send :class:`WorkerProgress` messages ``(chunk, p)`` on clones of one Trio memory
channel: ``chunk`` is the index of the chunk the worker renders (a worker renders several, one
after the other). The aggregator weights each chunk by its share of the frames and publishes a
:class:`RenderProgress` that

* never decreases and stays in ``[0, 1]``;
* equals ``sum(frames_i * p_i) / sum(frames_i)`` over the best ``p_i`` reported for each chunk;
* is exactly ``1.0`` when, and only when, every chunk has reported ``p == 1.0`` (a worker
  reports 1.0 only once the chunk is encoded and closed);
* is published at most once per ``min_interval`` seconds, except that the first update, a
  change of stage and completion are always published at once.

Odd reports never raise into the render: ``p`` above 1 counts as 1, below 0 as 0, NaN is
dropped; a chunk going backwards keeps its best value (a retried chunk does not make the
bar jump back); an unknown chunk index is dropped. Each is logged at DEBUG.

The names ``WorkerProgress.worker_id`` and ``RenderProgress.workers`` (they always were chunk
indexes and per-chunk values) are deprecated aliases of ``chunk`` and ``chunks``.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the aggregator only iterates the channel: Trio is not loaded for it
    import trio

__all__ = ["ProgressAggregator", "RenderProgress", "Stage", "WorkerProgress"]

logger = logging.getLogger(__name__)

Stage = Literal["launching", "replaying", "rendering", "stitching", "mixing audio", "done"]
_STAGES: tuple[Stage, ...] = (
    "launching", "replaying", "rendering", "stitching", "mixing audio", "done"
)
_BELOW_ONE = math.nextafter(1.0, 0.0)
#: Seconds of rendering before a frame rate (and so an ETA) is reported.
_RATE_WINDOW = 0.25


def _deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated (it is a chunk's, not a worker's): use {new}",
        DeprecationWarning,
        stacklevel=3,
    )


@dataclass(frozen=True, slots=True)
class WorkerProgress:
    """What a worker sends: the index of the chunk it renders and the fraction ``p`` of that
    chunk that is done; with ``replaying``, the fraction of the frames before the chunk that it
    has run so far (an rAF page runs frames 0..S-1 before a chunk that starts at S).

    ``worker_id`` is a deprecated alias of ``chunk``.
    """

    chunk: int
    progress: float
    replaying: bool = False

    @property
    def worker_id(self) -> int:
        """Deprecated: the chunk's index; use :attr:`chunk`."""
        _deprecated("WorkerProgress.worker_id", "WorkerProgress.chunk")
        return self.chunk


@dataclass(frozen=True, slots=True)
class RenderProgress:
    """One published state of a render.

    Attributes:
        progress: Global progress in ``[0, 1]``; 1.0 once every chunk is done.
        stage: ``launching``, ``replaying`` (workers run the frames before their chunks on an
            rAF page, before any frame is rendered), ``rendering``, ``stitching``, ``mixing
            audio`` (only when there is sound) or ``done``.
        frames_done: Frames rendered and handed to the encoder, over all workers.
        frames_total: Frames in the render.
        chunks: Each chunk's progress, by chunk index (``workers`` is a deprecated alias).
        fps: Frames per second since the first frame was reported, if known.
        eta: Seconds left at that rate, if known.
        elapsed: Seconds since the aggregator was created.
        retries: Chunks restarted on a fresh browser after a crash.
        frames_reused: Frames of chunks finished by an earlier, interrupted run (resumed from
            the job folder); counted in ``frames_done`` from the start.
        machines: On a cluster, the worker that renders (or rendered) each chunk, by chunk
            index; ``None`` where not known (every chunk of a local render).
        replaying: While workers replay the frames before their chunks, the fraction of those
            frames run so far (the slowest worker's); ``None`` when nobody replays.
        frames_skipped: Frames of the finished chunks whose image was the frame before's
            (static frames: nothing on the page could have changed), reused without a
            capture; counted in ``frames_done`` too.
    """

    progress: float
    stage: Stage
    frames_done: int
    frames_total: int
    chunks: tuple[float, ...]
    fps: float | None
    eta: float | None
    elapsed: float
    retries: int = 0
    frames_reused: int = 0
    machines: tuple[str | None, ...] = ()
    replaying: float | None = None
    frames_skipped: int = 0

    @property
    def workers(self) -> tuple[float, ...]:
        """Deprecated: each chunk's progress; use :attr:`chunks`."""
        _deprecated("RenderProgress.workers", "RenderProgress.chunks")
        return self.chunks

    def as_json(self) -> dict[str, object]:
        """The ``--progress json`` form of this state. ``workers`` (kept for the scripts that
        read it) and ``chunks`` hold the same list: each chunk's progress."""
        return {
            "event": "progress",
            "progress": self.progress,
            "stage": self.stage,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "fps": None if self.fps is None else round(self.fps, 2),
            "eta": None if self.eta is None else round(self.eta, 2),
            "elapsed": round(self.elapsed, 3),
            "workers": [round(p, 4) for p in self.chunks],
            "chunks": [round(p, 4) for p in self.chunks],
            "retries": self.retries,
            "frames_reused": self.frames_reused,
            "machines": list(self.machines),
            "replaying": None if self.replaying is None else round(self.replaying, 4),
            "frames_skipped": self.frames_skipped,
        }


class ProgressAggregator:
    """Turns ``(chunk, p)`` updates into one monotonic, frame-weighted progress.

    (The parameters named ``worker_id`` and ``frames_per_worker`` keep their names, for
    callers that pass them by keyword: they are chunk indexes and frames per chunk.)

    Args:
        frames_per_worker: Frames of each chunk, indexed by chunk index.
        on_progress: Called with each published :class:`RenderProgress`; may be ``None``.
        done: Chunks already finished before the render started: they count as
            1.0 from the start, and their frames as reused.
        min_interval: Least seconds between two publications of plain progress.
        clock: Seconds, monotonic; injectable for tests.
    """

    def __init__(
        self,
        frames_per_worker: Mapping[int, int] | list[int] | tuple[int, ...],
        on_progress: Callable[[RenderProgress], object] | None = None,
        *,
        done: Collection[int] = (),
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        weights = (
            dict(frames_per_worker)
            if isinstance(frames_per_worker, Mapping)
            else dict(enumerate(frames_per_worker))
        )
        if not weights or any(w < 1 for w in weights.values()):
            raise ValueError("every worker needs at least one frame")
        self._weights = weights
        self._ids = sorted(weights)
        self._total = sum(weights.values())
        self._best: dict[int, float] = dict.fromkeys(weights, 0.0)
        for worker_id in done:
            if worker_id in self._best:
                self._best[worker_id] = 1.0
        #: Frames of the chunks that were done before the render started.
        self.frames_reused = sum(weights[i] for i in set(done) if i in weights)
        self._on_progress = on_progress
        self._min_interval = min_interval
        self._clock = clock
        self._created = clock()
        self._first_frame_at: float | None = None
        self._frames_at_first: int = 0
        self._stage: Stage = "launching"
        #: Replay progress of the chunks whose workers are replaying now.
        self._replaying: dict[int, float] = {}
        self._value = self._compute()
        self._last_published_at: float | None = None
        self._last_published: RenderProgress | None = None
        self.retries = 0
        self._machines: dict[int, str] = {}
        #: Static frames of the finished chunks (see :meth:`count_skipped`).
        self.frames_skipped = 0

    @property
    def progress(self) -> float:
        """The current global progress (published or not)."""
        return self._value

    @property
    def frames_total(self) -> int:
        """Frames in the render."""
        return self._total

    @property
    def all_done(self) -> bool:
        """Whether every chunk has reported 1.0."""
        return all(p == 1.0 for p in self._best.values())

    @property
    def last_published(self) -> RenderProgress | None:
        """The last state handed to ``on_progress``."""
        return self._last_published

    def frames_done(self) -> int:
        """Frames done over all chunks, from each chunk's best report."""
        return sum(round(self._best[i] * self._weights[i]) for i in self._ids)

    def _compute(self) -> float:
        if self.all_done:
            return 1.0
        weighted = math.fsum(self._best[i] * self._weights[i] for i in self._ids) / self._total
        return min(max(weighted, 0.0), _BELOW_ONE)

    def snapshot(self) -> RenderProgress:
        """The current state as a :class:`RenderProgress`."""
        now = self._clock()
        done = self.frames_done()
        fps = eta = None
        if self._first_frame_at is not None and now - self._first_frame_at >= _RATE_WINDOW:
            rate = (done - self._frames_at_first) / (now - self._first_frame_at)
            if rate > 0:
                fps = rate
                eta = (self._total - done) / rate
        return RenderProgress(
            progress=self._value,
            stage=self._stage,
            frames_done=done,
            frames_total=self._total,
            chunks=tuple(self._best[i] for i in self._ids),
            fps=fps,
            eta=eta,
            elapsed=now - self._created,
            retries=self.retries,
            frames_reused=self.frames_reused,
            machines=tuple(self._machines.get(i) for i in self._ids),
            replaying=min(self._replaying.values()) if self._replaying else None,
            frames_skipped=self.frames_skipped,
        )

    def update(self, worker_id: int, p: float) -> RenderProgress | None:
        """Apply one report of chunk ``worker_id``; return the state if it is published now,
        else ``None``."""
        if worker_id not in self._best:
            logger.debug("progress of unknown chunk %r dropped", worker_id)
            return None
        if not isinstance(p, (int, float)) or math.isnan(p):
            logger.debug("progress %r of chunk %d dropped", p, worker_id)
            return None
        p = min(max(float(p), 0.0), 1.0)
        if p < self._best[worker_id]:
            logger.debug("chunk %d went back to %.4f; keeping its best", worker_id, p)
            return None
        self._best[worker_id] = p
        if p > 0.0 and self._first_frame_at is None:
            # The rate is measured from the first frame on, so that launch time does not
            # count, and only once a little time has passed (see snapshot()).
            self._first_frame_at = self._clock()
            self._frames_at_first = self.frames_done()
        self._value = max(self._value, self._compute())
        forced = self._value == 1.0
        if p > 0.0:
            self._replaying.pop(worker_id, None)
        if self._stage in ("launching", "replaying") and p > 0.0:
            self._stage = "rendering"
            forced = True
        return self._maybe_publish(forced)

    def replay(self, worker_id: int, p: float) -> RenderProgress | None:
        """The worker of chunk ``worker_id`` has run the fraction ``p`` of the frames before
        it (an rAF page builds its state frame by frame): the ``replaying`` stage while
        nothing is rendered yet, and the ``replaying`` field. It never changes ``progress``."""
        if worker_id not in self._best or not isinstance(p, (int, float)) or math.isnan(p):
            return None
        p = min(max(float(p), 0.0), 1.0)
        # Kept (at 1.0 once the replay is over) until the worker's first rendered frame.
        self._replaying[worker_id] = max(p, self._replaying.get(worker_id, 0.0))
        forced = False
        if self._stage == "launching":
            self._stage = "replaying"
            forced = True
        return self._maybe_publish(forced)

    def set_stage(self, stage: Stage) -> RenderProgress | None:
        """Move to a later stage and publish at once; an earlier stage is ignored."""
        if _STAGES.index(stage) <= _STAGES.index(self._stage):
            return None
        self._stage = stage
        return self._maybe_publish(True)

    def announce(self) -> RenderProgress | None:
        """Publish the current state now (the ``launching`` state, before any worker reports)."""
        return self._maybe_publish(True)

    def set_machine(self, worker_id: int, machine: str) -> None:
        """Record which machine renders chunk ``worker_id`` (shown from the next
        publication)."""
        if worker_id in self._best:
            self._machines[worker_id] = machine

    def count_skipped(self, frames: int) -> None:
        """Add the static frames of a finished chunk (shown from the next publication)."""
        if frames > 0:
            self.frames_skipped += frames

    def count_retry(self) -> RenderProgress | None:
        """Record that a chunk is being retried on a fresh browser, and publish it."""
        self.retries += 1
        return self._maybe_publish(True)

    def _maybe_publish(self, forced: bool) -> RenderProgress | None:
        now = self._clock()
        if (
            not forced
            and self._last_published_at is not None
            and now - self._last_published_at < self._min_interval
        ):
            return None
        state = self.snapshot()
        if not forced and self._last_published is not None and (
            state.progress == self._last_published.progress
            and state.replaying == self._last_published.replaying
        ):
            return None
        self._last_published_at = now
        self._last_published = state
        if self._on_progress is not None:
            self._on_progress(state)
        return state

    async def run(self, updates: trio.MemoryReceiveChannel[WorkerProgress]) -> None:
        """Consume updates until every sender is closed.

        Cancellation:
            Stops consuming; the channel is closed.
        """
        async with updates:
            async for message in updates:
                if message.replaying:
                    self.replay(message.chunk, message.progress)
                else:
                    self.update(message.chunk, message.progress)
