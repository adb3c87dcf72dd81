"""BatchProgress: the progress of every row of a batch in, one honest batch progress out.

Each row reports its own render's progress (a fraction, as its
:class:`~helios_render._model.progress.ProgressAggregator` publishes it) and how it ended. The
aggregator weights each row by its frames and publishes a :class:`BatchState` that

* never decreases and stays in ``[0, 1]``;
* is exactly ``1.0`` when, and only when, every row has ended: done, skipped (complete from an
  earlier run), or failed (a failed row's frames count as processed: the batch is over for it);
* counts rows done, skipped, failed and running, with frames done and total, and the frame
  rate and ETA of the frames rendered in this run (skipped rows and reused chunks excluded);
* is published at most once per ``min_interval`` seconds, except that a row starting or
  ending, and completion, are always published at once.

Odd reports never raise: an unknown row is dropped, a fraction outside ``[0, 1]`` is clamped,
NaN is dropped, a row going backwards keeps its best value.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["BatchProgress", "BatchState", "RowEnd"]

RowEnd = Literal["done", "skipped", "failed"]
_BELOW_ONE = math.nextafter(1.0, 0.0)
#: Seconds of rendering before a frame rate (and so an ETA) is reported.
_RATE_WINDOW = 0.25


@dataclass(frozen=True, slots=True)
class BatchState:
    """One published state of a batch.

    Attributes:
        progress: In ``[0, 1]``, weighted by frames; 1.0 once every row has ended.
        frames_done: Frames done over every row (skipped rows and failed rows' remainders
            included).
        frames_total: Frames of every row to render or skip (invalid rows are not counted).
        rows_total: Rows in the batch (invalid ones not counted).
        rows_done: Rows rendered in this run.
        rows_skipped: Rows complete from an earlier run (same settings), not rendered.
        rows_failed: Rows whose render failed.
        rows_running: The rows rendering now.
        fps: Frames per second rendered in this run, if known.
        eta: Seconds left at that rate, if known.
        elapsed: Seconds since the aggregator was made.
    """

    progress: float
    frames_done: int
    frames_total: int
    rows_total: int
    rows_done: int
    rows_skipped: int
    rows_failed: int
    rows_running: tuple[int, ...]
    fps: float | None
    eta: float | None
    elapsed: float

    def as_json(self) -> dict[str, object]:
        """The ``--progress json`` form of this state."""
        return {
            "event": "progress",
            "progress": self.progress,
            "frames_done": self.frames_done,
            "frames_total": self.frames_total,
            "rows_total": self.rows_total,
            "rows_done": self.rows_done,
            "rows_skipped": self.rows_skipped,
            "rows_failed": self.rows_failed,
            "rows_running": list(self.rows_running),
            "fps": None if self.fps is None else round(self.fps, 2),
            "eta": None if self.eta is None else round(self.eta, 2),
            "elapsed": round(self.elapsed, 3),
        }


class BatchProgress:
    """Turns each row's progress and end into one monotonic, frame-weighted batch progress.

    Args:
        frames_per_row: Frames of each row to render or skip, by row index.
        on_progress: Called with each published :class:`BatchState`; may be ``None``.
        min_interval: Least seconds between two publications of plain progress.
        clock: Seconds, monotonic; injectable for tests.
    """

    def __init__(
        self,
        frames_per_row: Mapping[int, int],
        on_progress: Callable[[BatchState], object] | None = None,
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if any(frames < 1 for frames in frames_per_row.values()):
            raise ValueError("every row needs at least one frame")
        self._weights = dict(frames_per_row)
        self._total = sum(self._weights.values())
        self._best: dict[int, float] = dict.fromkeys(self._weights, 0.0)
        #: Each row's fraction when it started in this run (reused chunks, not rendered now).
        self._base: dict[int, float] = {}
        self._ended: dict[int, RowEnd] = {}
        self._running: set[int] = set()
        self._on_progress = on_progress
        self._min_interval = min_interval
        self._clock = clock
        self._created = clock()
        self._first_frame_at: float | None = None
        self._last_published_at: float | None = None
        self._value = 0.0 if self._weights else 1.0

    @property
    def progress(self) -> float:
        """The current batch progress (published or not)."""
        return self._value

    @property
    def finished(self) -> bool:
        """Whether every row has ended."""
        return len(self._ended) == len(self._weights)

    def row_started(self, row: int) -> None:
        """``row`` starts rendering (published at once)."""
        if row not in self._weights or row in self._ended:
            return
        self._running.add(row)
        self._publish(force=True)

    def row_progress(self, row: int, fraction: float) -> None:
        """``row``'s render is ``fraction`` done (its own aggregator's value)."""
        if row not in self._weights or row in self._ended or math.isnan(fraction):
            return
        fraction = min(1.0, max(0.0, fraction))
        if row not in self._base:
            # The first report of a row holds what an earlier run left (resumed chunks).
            self._base[row] = fraction
        elif self._first_frame_at is None and fraction > self._base[row]:
            self._first_frame_at = self._clock()
        if fraction > self._best[row]:
            self._best[row] = fraction
            self._update()
            self._publish()

    def row_ended(self, row: int, how: RowEnd) -> None:
        """``row`` is over: ``done`` (rendered), ``skipped`` or ``failed`` (published at
        once). A second end of the same row is ignored."""
        if row not in self._weights or row in self._ended:
            return
        self._ended[row] = how
        self._running.discard(row)
        if how == "skipped":
            self._base[row] = 1.0
        self._best[row] = 1.0
        self._update()
        self._publish(force=True)

    def _frames(self) -> float:
        return sum(self._weights[row] * best for row, best in self._best.items())

    def _update(self) -> None:
        if self.finished:
            value = 1.0
        else:
            value = min(self._frames() / self._total, _BELOW_ONE) if self._total else 0.0
        self._value = max(self._value, value)

    def _rendered_frames(self) -> float:
        """Frames rendered in this run: what each row gained since it started here (failed
        rows' remainders and skipped rows excluded)."""
        total = 0.0
        for row, best in self._best.items():
            if self._ended.get(row) in ("skipped", "failed"):
                continue
            total += self._weights[row] * max(0.0, best - self._base.get(row, best))
        return total

    def state(self) -> BatchState:
        """The current state."""
        now = self._clock()
        fps = eta = None
        if self._first_frame_at is not None and now - self._first_frame_at >= _RATE_WINDOW:
            fps = self._rendered_frames() / (now - self._first_frame_at)
            if fps > 0:
                left = self._total - self._frames()
                eta = max(0.0, left / fps)
        ended = list(self._ended.values())
        frames_done = self._total if self.finished else min(self._total, int(self._frames()))
        return BatchState(
            progress=self._value,
            frames_done=frames_done,
            frames_total=self._total,
            rows_total=len(self._weights),
            rows_done=ended.count("done"),
            rows_skipped=ended.count("skipped"),
            rows_failed=ended.count("failed"),
            rows_running=tuple(sorted(self._running)),
            fps=fps,
            eta=eta,
            elapsed=now - self._created,
        )

    def _publish(self, *, force: bool = False) -> None:
        if self._on_progress is None:
            return
        now = self._clock()
        if (
            not force
            and self._last_published_at is not None
            and now - self._last_published_at < self._min_interval
        ):
            return
        self._last_published_at = now
        self._on_progress(self.state())
