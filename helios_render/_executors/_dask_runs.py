"""Which worker of a cluster renders which chunk next: each goes through a run of consecutive
chunks in ascending order, as a local worker does, so its page never goes back (an rAF page
would otherwise be loaded again and replay every frame before the chunk).

Dask orders separately submitted tasks by its own rules (a worker given 30 chunks at once
started them 0, 29, 28, ...; work stealing moves queued tasks between workers). So the order
is made explicit here, and Dask is never given a choice: every chunk task is pinned to one
worker (``allow_other_workers=False``), and a worker holds at most :data:`WINDOW` of them
(the one it renders and the next, which starts the moment the first ends). A chunk is still
one task: its result, retries and resume stay per chunk.

A worker that leaves the cluster, or stalls (nothing heard from it for the stall timeout), is
dropped: the chunks it held and the rest of its run become an *orphan run*, taken in order by
the first worker that has finished its own. A chunk retried after a crash is an orphan run of
its own. Pure bookkeeping (no Dask, no clock of its own: ``now`` is given), used by
:class:`~helios_render._executors.dask.DaskExecutor`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from .._model.job import ChunkJob, assign_runs

__all__ = ["WINDOW", "Dropped", "RunBook"]

#: Chunk tasks a worker holds at once: the one it renders and the next (no gap between them).
WINDOW = 2


@dataclass(slots=True)
class _Worker:
    run: deque[ChunkJob] = field(default_factory=deque)
    #: Chunks submitted to it and not settled, in the order they were submitted.
    held: list[int] = field(default_factory=list)
    #: ``now`` when it was last heard of (a progress event, a finished chunk, or the moment
    #: it was given work while holding none).
    heard: float = 0.0


@dataclass(frozen=True, slots=True)
class Dropped:
    """A worker taken out of the render: the chunks it held (to cancel), in order."""

    worker: str
    held: tuple[int, ...]


class RunBook:
    """The runs of a cluster render.

    Args:
        jobs: The chunk jobs to render, in ascending order.
        workers: The workers' addresses; runs are assigned in this order.
        now: The time the render starts (the stall clock of every worker).
        window: Chunk tasks a worker holds at once.
    """

    def __init__(
        self, jobs: Sequence[ChunkJob], workers: Sequence[str], now: float, window: int = WINDOW
    ) -> None:
        if not workers:
            raise ValueError("a run book needs at least one worker")
        self.window = window
        self._jobs = {job.index: job for job in jobs}
        runs = assign_runs(list(jobs), len(workers)) if jobs else []
        self._workers: dict[str, _Worker] = {
            address: _Worker(deque(runs[i]) if i < len(runs) else deque(), heard=now)
            for i, address in enumerate(workers)
        }
        self._orphans: deque[deque[ChunkJob]] = deque()
        self._where: dict[int, str] = {}
        #: Why each dropped worker was dropped.
        self.gone: dict[str, str] = {}

    @property
    def live(self) -> list[str]:
        """The workers still given chunks."""
        return list(self._workers)

    def worker_of(self, index: int) -> str | None:
        """The worker holding chunk ``index`` (``None`` once it is settled)."""
        return self._where.get(index)

    def held(self, worker: str) -> tuple[int, ...]:
        """The chunks ``worker`` holds, in the order they were submitted."""
        state = self._workers.get(worker)
        return tuple(state.held) if state else ()

    @property
    def waiting(self) -> int:
        """Chunks no live worker holds yet."""
        return sum(len(w.run) for w in self._workers.values()) + sum(map(len, self._orphans))

    def first_waiting(self) -> ChunkJob:
        """The first chunk no live worker holds (for the message when none is left)."""
        waiting = [job for run in self._orphans for job in run]
        waiting += [job for state in self._workers.values() for job in state.run]
        return min(waiting, key=lambda job: job.index)

    def take(self, now: float) -> list[tuple[str, ChunkJob]]:
        """The chunks to submit now, each with the worker it is pinned to: every live worker
        is filled up to the window, from its own run, else from the first orphan run."""
        given: list[tuple[str, ChunkJob]] = []
        for address, state in self._workers.items():
            while len(state.held) < self.window:
                if not state.run:
                    if not self._orphans:
                        break
                    state.run = self._orphans.popleft()
                job = state.run.popleft()
                if not state.held:
                    state.heard = now  # its stall clock starts with its first chunk
                state.held.append(job.index)
                self._where[job.index] = address
                given.append((address, job))
        return given

    def heard(self, worker: str, now: float) -> None:
        """``worker`` reported progress."""
        state = self._workers.get(worker)
        if state is not None:
            state.heard = max(state.heard, now)

    def settled(self, index: int, now: float) -> str | None:
        """Chunk ``index`` finished or failed on its worker; return that worker."""
        address = self._where.pop(index, None)
        state = self._workers.get(address) if address else None
        if state is not None and index in state.held:
            state.held.remove(index)
            state.heard = max(state.heard, now)
        return address

    def retry(self, index: int) -> None:
        """Render chunk ``index`` again (after a crash): it becomes an orphan run of its own,
        ahead of the others."""
        self.settled(index, 0.0)
        self._orphans.appendleft(deque([self._jobs[index]]))

    def drop(self, worker: str, reason: str) -> Dropped | None:
        """Take ``worker`` out (it left the cluster, or stalled): the chunks it held and the
        rest of its run become one orphan run, in order. ``None`` if it was already out."""
        state = self._workers.pop(worker, None)
        if state is None:
            return None
        self.gone[worker] = reason
        for index in state.held:
            self._where.pop(index, None)
        rest = [self._jobs[i] for i in sorted(state.held)] + list(state.run)
        if rest:
            self._orphans.append(deque(rest))
        return Dropped(worker, tuple(state.held))

    def stalled(self, now: float, timeout: float) -> list[str]:
        """Workers holding chunks that have not been heard of for ``timeout`` seconds."""
        return [
            address
            for address, state in self._workers.items()
            if state.held and now - state.heard > timeout
        ]
