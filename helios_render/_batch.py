"""Batches: one render per row of a rows file, on one render pool, resumable.

``render_batch(source, rows, output_template, ...)`` reads the rows (a ``.csv`` with a header
of prop names, ``.jsonl`` with an object a line, ``.json`` with an array of objects, or any
sequence of dicts), and before anything renders:

* types each CSV cell by the composition's props schema (:func:`~helios_render._props.type_cell`),
  puts ``props`` (defaults) under every row and validates every row
  (:func:`~helios_render._props.validate_props`: defaults filled, one line naming the row);
* names each output from the template (``out/{index:04d}-{name}.mp4``: ``index`` counts rows
  from 0, any prop by name), creates its folder, and refuses an output that is another row's;
* plans every valid row (:meth:`~helios_render._render.RenderPool.prepare`): its job digest.

An invalid row is reported at once (:class:`RowResult` with ``status="invalid"``) and skipped;
with ``fail_fast`` it stops the batch before anything renders (:class:`BatchError`, exit 2).
Then the rows render on one :class:`~helios_render._render.RenderPool`, a few rows in flight
(the pool's workers take their chunks in row order; a row stitches while the next renders).

Resuming: the batch manifest (``.ROWS.helios-batch.json`` beside the rows file) records each
finished row's output, job digest, size and modification time. A rerun skips a row whose
output is still that file and whose digest is the same (``status="skipped"``); a half-done row
resumes from its own job folder as a render does; a changed row (another digest) renders again.

By default a failed row is reported and the others go on; with ``fail_fast`` the first failure
cancels every row (their browsers and encoders reaped) and is raised.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import os
import string
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import trio

from ._environment import probe_environment
from ._exceptions import HeliosError, OptionsError, PropsError, UsageError
from ._executors import Executor
from ._model.batch_progress import BatchProgress, BatchState
from ._model.options import RenderOptions
from ._model.plan import RenderPlan
from ._model.progress import RenderProgress
from ._nursery import background_nursery, task_nursery
from ._props import iter_properties, type_cell, validate_props
from ._props_source import props_schema
from ._render import RenderPool, RenderResult, open_pool

__all__ = [
    "BatchError",
    "BatchManifest",
    "BatchResult",
    "RowResult",
    "manifest_path",
    "output_for",
    "read_rows",
    "render_batch",
    "render_batch_sync",
]

logger = logging.getLogger(__name__)

RowStatus = Literal["done", "skipped", "failed", "invalid"]
#: ``on_event(event)``: a row started, ended or was refused (the ``--progress json`` events).
EventCallback = Callable[[dict[str, Any]], object]

MANIFEST_VERSION = 1


class BatchError(UsageError):
    """The batch cannot start: unreadable rows, a bad output template, or (with
    ``fail_fast``) an invalid row. Nothing was rendered."""


@dataclass(frozen=True, slots=True)
class SourceRow:
    """A row as read: its index (from 0), where it is in the file, its values."""

    index: int
    where: str
    values: dict[str, Any]
    #: Whether ``values`` are CSV text, to be typed by the schema.
    cells: bool = False


@dataclass(frozen=True, slots=True)
class RowResult:
    """How one row of a batch ended.

    Attributes:
        index: The row's index (from 0).
        output: Its output file (``None`` for a row whose name could not be made).
        status: ``done`` (rendered), ``skipped`` (complete from an earlier run with the same
            settings), ``failed`` (its render failed) or ``invalid`` (refused before
            rendering: its props, or its output name).
        error: What went wrong, in one line (``failed`` and ``invalid``).
        digest: The row's job digest (``None`` for an invalid row).
        result: The render's result (``done``).
    """

    index: int
    output: Path | None
    status: RowStatus
    error: str | None = None
    digest: str | None = None
    result: RenderResult | None = None

    def as_json(self) -> dict[str, Any]:
        """The row in the final ``done`` event of ``--progress json``."""
        entry: dict[str, Any] = {
            "row": self.index,
            "output": None if self.output is None else str(self.output),
            "status": self.status,
        }
        if self.error is not None:
            entry["error"] = self.error
        if self.result is not None:
            entry["frames"] = self.result.frames
            entry["frames_reused"] = self.result.frames_reused
            entry["elapsed"] = round(self.result.elapsed, 3)
        return entry


@dataclass(slots=True)
class BatchResult:
    """Every row's result, in row order, and what the pool did."""

    rows: list[RowResult] = field(default_factory=list)
    browsers_launched: int = 0

    @property
    def ok(self) -> bool:
        """Whether every row is done or skipped."""
        return all(row.status in ("done", "skipped") for row in self.rows)


# ---- reading rows ----------------------------------------------------------------------------


def read_rows(rows: str | os.PathLike[str] | Iterable[Mapping[str, Any]]) -> list[SourceRow]:
    """The rows of a ``.csv``, ``.jsonl`` or ``.json`` file, or of a sequence of dicts.

    Raises:
        BatchError: The file cannot be read, has another suffix, or holds something that is
            not rows (one line naming the file and the line).
    """
    if not isinstance(rows, str | os.PathLike):
        found = []
        for index, values in enumerate(rows):
            if not isinstance(values, Mapping):
                raise BatchError(f"row {index} is not a mapping of props: {values!r:.60}")
            found.append(SourceRow(index, f"row {index}", dict(values)))
        return found
    path = Path(rows)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise BatchError(f"cannot read rows from {path.name}: give a .csv, .jsonl or .json file")
    try:
        text = path.read_text("utf-8-sig")
    except OSError as exc:
        raise BatchError(f"cannot read rows file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise BatchError(f"rows file {path} is not UTF-8 text: {exc.reason}") from exc
    name = path.name
    if suffix == ".csv":
        return _csv_rows(text, name)
    if suffix == ".jsonl":
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            values = _json_value(line, f"{name} line {number}")
            if not isinstance(values, dict):
                raise BatchError(f"{name} line {number} is not a JSON object (one row a line)")
            found.append(SourceRow(len(found), f"line {number}", values))
        return found
    data = _json_value(text, name)
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BatchError(f"{name} must hold a JSON array of objects (one a row)")
    return [SourceRow(index, f"item {index}", item) for index, item in enumerate(data)]


def _json_value(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BatchError(f"{where} is not valid JSON: {exc}") from exc


def _csv_rows(text: str, name: str) -> list[SourceRow]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BatchError(f"{name} is empty: its first line names the props") from None
    except csv.Error as exc:
        raise BatchError(f"{name} line 1: {exc}") from exc
    header = [column.strip() for column in header]
    if not any(header) or "" in header:
        raise BatchError(f"{name} line 1 must name a prop in every column")
    if len(set(header)) != len(header):
        twice = sorted({column for column in header if header.count(column) > 1})
        raise BatchError(f"{name} line 1 names {', '.join(twice)} twice")
    found: list[SourceRow] = []
    try:
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            line = reader.line_num
            if len(cells) != len(header):
                raise BatchError(
                    f"{name} line {line} has {len(cells)} cells, the header {len(header)}"
                )
            values = dict(zip(header, cells, strict=True))
            found.append(SourceRow(len(found), f"line {line}", values, cells=True))
    except csv.Error as exc:
        raise BatchError(f"{name} line {reader.line_num}: {exc}") from exc
    return found


# ---- checking rows ---------------------------------------------------------------------------


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BatchError(f"the output template {template!r} is malformed: {exc}") from exc
    fields = []
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise BatchError(
                f"the output template {template!r} has an unnamed field: name each one "
                "({index:04d}, {name})"
            )
        fields.append(name)
    return fields


def output_for(template: str, index: int, props: Mapping[str, Any], label: str) -> Path:
    """The output path of a row: ``template`` formatted with ``index`` and the row's props.

    Raises:
        PropsError: The row lacks a prop the template names, or its value does not fit.
    """
    values: dict[str, Any] = dict(props)
    values["index"] = index
    try:
        name = template.format_map(values)
    except KeyError as exc:
        raise PropsError(
            f"{label}: the output template names {{{exc.args[0]}}}, which this row does not have"
        ) from None
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise PropsError(f"{label}: the output template does not fit its values: {exc}") from None
    if not name.strip() or "\0" in name:
        raise PropsError(f"{label}: its output name is empty")
    return Path(name).expanduser().absolute()


@dataclass(slots=True)
class _Row:
    source: SourceRow
    label: str
    options: RenderOptions | None = None
    output: Path | None = None
    plan: RenderPlan | None = None
    result: RowResult | None = None


def _label(row: SourceRow, rows_name: str | None) -> str:
    where = f" ({rows_name} {row.where})" if rows_name and row.where.startswith("line") else ""
    return f"row {row.index}{where}"


# ---- the manifest ----------------------------------------------------------------------------


class BatchManifest:
    """Which rows are complete, with which digest: ``.ROWS.helios-batch.json`` beside the rows
    file (rewritten atomically after each row)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: dict[str, dict[str, Any]] = {}
        if path is None:
            return
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict) and data.get("version") == MANIFEST_VERSION:
            rows = data.get("rows")
            if isinstance(rows, dict):
                self.rows = {str(k): v for k, v in rows.items() if isinstance(v, dict)}

    def complete(self, index: int, output: Path, digest: str) -> bool:
        """Whether row ``index`` finished with ``digest`` into ``output``, which is still the
        file it wrote (same size and modification time)."""
        entry = self.rows.get(str(index))
        if not entry or entry.get("digest") != digest or entry.get("output") != str(output):
            return False
        try:
            stat = output.stat()
        except OSError:
            return False
        return bool(
            entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns
        )

    def record(self, index: int, output: Path, digest: str) -> None:
        """Row ``index`` finished into ``output`` with ``digest`` (best effort: a manifest that
        cannot be written only costs a rerun)."""
        if self.path is None:
            return
        try:
            stat = output.stat()
        except OSError:
            return
        self.rows[str(index)] = {
            "output": str(output), "digest": digest, "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text(
                json.dumps({"version": MANIFEST_VERSION, "rows": self.rows}, indent=1), "utf-8"
            )
            temporary.replace(self.path)
        except OSError as exc:
            logger.warning("could not write the batch manifest %s: %s", self.path, exc.strerror)

    def forget(self, index: int) -> None:
        """Row ``index`` is being rendered again (its entry no longer holds)."""
        self.rows.pop(str(index), None)


def manifest_path(rows: str | os.PathLike[str]) -> Path:
    """The batch manifest of a rows file: ``.NAME.helios-batch.json`` beside it."""
    path = Path(rows).expanduser().absolute()
    return path.with_name(f".{path.name}.helios-batch.json")


# ---- the batch -------------------------------------------------------------------------------


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def _check_rows(
    pool: RenderPool,
    source: str | os.PathLike[str],
    found: list[SourceRow],
    template: str,
    settings: Mapping[str, Any],
    defaults: Mapping[str, Any] | None,
    strict: bool,
    rows_name: str | None,
) -> list[_Row]:
    """Every row validated, named and planned (see the module docstring); invalid rows carry
    their :class:`RowResult`."""
    template_fields = _template_fields(template)
    if defaults is not None and not isinstance(defaults, Mapping):
        raise BatchError("--props must be a JSON object in a batch (the defaults of every row)")
    rows = [_Row(row, _label(row, rows_name)) for row in found]
    if not rows:
        raise BatchError("the rows file holds no rows")
    # The schema, once: the options of the batch with a first output name.
    try:
        probe = RenderOptions(source=source, output=_probe_output(template, settings),
                              **settings)
    except OptionsError as exc:
        raise BatchError(str(exc)) from exc
    env = await probe_environment(probe, memo=pool._facts)
    schema = await props_schema(probe, env, ask_page=True)
    columns = dict(iter_properties(schema))
    seen: dict[Path, int] = {}
    for row in rows:
        values = row.source.values
        if row.source.cells:
            values = {name: type_cell(text, columns.get(name)) for name, text in values.items()}
        try:
            props = validate_props(schema, {**(defaults or {}), **values}, strict=strict,
                                   row=row.label)
            output = output_for(template, row.source.index, props, row.label)
            if output in seen:
                raise PropsError(
                    f"{row.label}: its output {output} is also row {seen[output]}'s: name the "
                    f"outputs apart (the template {template!r} uses {', '.join(template_fields)})"
                )
            seen[output] = row.source.index
            output.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(output.parent, os.W_OK):
                raise PropsError(f"{row.label}: cannot write into {output.parent}")
            row.options = RenderOptions(source=source, output=output, props=props, **settings)
            row.output = output
        except (HeliosError, OSError) as exc:
            message = _one_line(exc) if isinstance(exc, HeliosError) else (
                f"{row.label}: cannot create the folder of its output: {exc.strerror}"
            )
            row.result = RowResult(row.source.index, row.output, "invalid", message)
    return rows


def _probe_output(template: str, settings: Mapping[str, Any]) -> Path:
    """A name with the template's suffix in the temporary folder: the settings and the
    composition are checked with it before any row's folder is made."""
    suffix = Path(template).suffix or ".mp4"
    return Path(tempfile.gettempdir()).absolute() / f".helios-batch-probe{suffix}"


@asynccontextmanager
async def render_batch(
    source: str | os.PathLike[str],
    rows: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
    output_template: str,
    *,
    props: Mapping[str, Any] | None = None,
    strict_props: bool = False,
    fail_fast: bool = False,
    concurrency: int | None = None,
    executor: Executor | None = None,
    manifest: str | os.PathLike[str] | None = None,
    on_progress: Callable[[BatchState], object] | None = None,
    on_event: EventCallback | None = None,
    pool: RenderPool | None = None,
    **settings: Any,
) -> AsyncIterator[trio.MemoryReceiveChannel[RowResult]]:
    """Render one video per row; ``async for`` over the block's channel gets each row's
    :class:`RowResult` as it ends (invalid rows first, before anything renders)::

        async with helios_render.render_batch("card.html", "rows.csv",
                                              "out/{index:04d}-{name}.mp4",
                                              width=640, height=360, frames=60) as results:
            async for row in results:
                print(row.index, row.status, row.output)

    (A context manager around a channel, not an async generator: the rows render in tasks of
    its nursery, and a generator cannot own a nursery across ``yield`` in Trio.)

    Args:
        source: The composition.
        rows: A ``.csv``, ``.jsonl`` or ``.json`` file, or a sequence of dicts.
        output_template: Each row's output: ``{index}`` (from 0, e.g. ``{index:04d}``) and any
            prop by name; folders are created.
        props: Defaults under every row.
        strict_props: Refuse props the composition's schema does not declare.
        fail_fast: An invalid row stops the batch before anything renders
            (:class:`BatchError`); the first failed row cancels every other and is raised.
        concurrency: Workers of the batch's pool (default: one per CPU as memory allows).
        executor: Where chunks run (see :func:`~helios_render.open_pool`).
        manifest: The batch manifest (default ``.ROWS.helios-batch.json`` beside a rows
            file; none for a sequence of dicts, so nothing is skipped).
        on_progress: Called with each :class:`BatchState` (frames and rows).
        on_event: Called with each row event (``row-start``, ``row-done``, ``row-error``), a
            dict as ``--progress json`` prints it.
        pool: Render on this pool instead of a new one.
        **settings: :class:`~helios_render.RenderOptions` fields for every row (``width``,
            ``frames``, ``codec``...).

    Raises:
        BatchError: Nothing was rendered: unreadable rows, a bad template, an invalid row
            with ``fail_fast``.
        UsageError: Bad settings or environment.
        WorkerError: With ``fail_fast``, the first failed row's error.

    Cancellation:
        Every row is cancelled, its Chromium and FFmpeg reaped; finished chunks stay in each
        row's job folder and finished rows in the manifest, for a rerun.
    """
    send, receive = trio.open_memory_channel[RowResult](math.inf)
    async with contextlib.AsyncExitStack() as stack:
        if pool is None:
            pool = await stack.enter_async_context(
                open_pool(concurrency, executor=executor)
            )
        # Leaving the block early cancels the rows still rendering.
        nursery = await stack.enter_async_context(background_nursery())
        batch = _Batch(
            pool, source, rows, output_template, props, strict_props, fail_fast, manifest,
            on_progress, on_event, settings,
        )
        rows_ready = await batch.check()
        nursery.start_soon(batch.run, rows_ready, send)
        async with receive:
            yield receive


class _Batch:
    def __init__(
        self,
        pool: RenderPool,
        source: str | os.PathLike[str],
        rows: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
        template: str,
        defaults: Mapping[str, Any] | None,
        strict: bool,
        fail_fast: bool,
        manifest: str | os.PathLike[str] | None,
        on_progress: Callable[[BatchState], object] | None,
        on_event: EventCallback | None,
        settings: Mapping[str, Any],
    ) -> None:
        for name in ("source", "output", "props", "strict_props"):
            if name in settings:
                raise TypeError(f"render_batch() takes {name} as its own argument")
        self.pool = pool
        self.source = source
        self.rows = rows
        self.template = template
        self.defaults = defaults
        self.strict = strict
        self.fail_fast = fail_fast
        is_file = isinstance(rows, str | os.PathLike)
        path = Path(manifest) if manifest is not None else (
            manifest_path(rows) if is_file else None  # type: ignore[arg-type]
        )
        self.manifest = BatchManifest(path)
        self.rows_name = Path(rows).name if is_file else None  # type: ignore[arg-type]
        self.rows_path = (
            Path(rows).expanduser().absolute() if is_file else None  # type: ignore[arg-type]
        )
        self.on_progress = on_progress
        self.on_event = on_event or (lambda event: None)
        self.settings = dict(settings)
        self.result = BatchResult()
        #: With ``fail_fast``: the first row's failure, raised once every row stopped.
        self.first_failure: HeliosError | None = None

    async def check(self) -> list[_Row]:
        """Read, validate, name and plan every row; report the invalid ones. Nothing renders.

        Raises:
            BatchError: See :func:`render_batch`.
        """
        found = read_rows(self.rows)
        rows = await _check_rows(
            self.pool, self.source, found, self.template, self.settings, self.defaults,
            self.strict, self.rows_name,
        )
        invalid = [row for row in rows if row.result is not None]
        for row in invalid:
            assert row.result is not None
            self._event("row-error", row, message=row.result.error, invalid=True)
        if invalid and self.fail_fast:
            first = invalid[0].result
            assert first is not None and first.error is not None
            more = f" (and {len(invalid) - 1} more invalid rows)" if len(invalid) > 1 else ""
            raise BatchError(f"{first.error}{more}; nothing was rendered (--fail-fast)")
        # The batch's own files are not the composition's: left out of every row's digest,
        # so that a finished output or an edited rows file does not change the other rows.
        exclude = frozenset(row.output for row in rows if row.output is not None)
        if self.rows_path is not None:
            exclude |= {self.rows_path}
        for row in rows:
            if row.result is not None or row.options is None:
                continue
            try:
                row.plan = await self.pool.prepare(
                    row.options, check_props=False, exclude=exclude
                )
            except HeliosError as exc:
                if self.fail_fast or (isinstance(exc, UsageError) and not isinstance(
                    exc, PropsError
                )):
                    raise
                row.result = RowResult(
                    row.source.index, row.output, "failed", f"{row.label}: {_one_line(exc)}"
                )
                self._event("row-error", row, message=row.result.error, invalid=False)
        return rows

    def _event(self, kind: str, row: _Row, **extra: Any) -> None:
        event: dict[str, Any] = {
            "event": kind,
            "row": row.source.index,
            "output": None if row.output is None else str(row.output),
        }
        event.update(extra)
        self.on_event(event)

    async def run(self, rows: list[_Row], send: trio.MemorySendChannel[RowResult]) -> None:
        async with send:
            for row in rows:
                if row.result is not None:
                    self.result.rows.append(row.result)
                    await send.send(row.result)
            planned = [row for row in rows if row.result is None and row.plan is not None]
            progress = BatchProgress(
                {row.source.index: row.plan.frames for row in planned if row.plan},
                self.on_progress,
            )
            for row in rows:  # rows that ended before rendering count as processed
                if row.result is not None and row.plan is not None:
                    progress.row_ended(row.source.index, "failed")
            # A few rows in flight, started in row order: the pool's workers take their
            # chunks in that order, and a row stitches while the next one renders.
            workers = self.pool.concurrency or (planned[0].plan.concurrency if planned and
                                                 planned[0].plan else 1)
            in_flight = trio.Semaphore(workers + 1)
            async with task_nursery() as nursery:
                for row in planned:
                    assert row.plan is not None and row.output is not None
                    if self.manifest.complete(row.source.index, row.output, row.plan.digest):
                        result = RowResult(
                            row.source.index, row.output, "skipped", digest=row.plan.digest
                        )
                        progress.row_ended(row.source.index, "skipped")
                        self._event("row-done", row, skipped=True, digest=row.plan.digest)
                        self.result.rows.append(result)
                        await send.send(result)
                        continue
                    await in_flight.acquire()
                    nursery.start_soon(self._render_row, row, progress, send, in_flight,
                                       nursery.cancel_scope)
            self.result.rows.sort(key=lambda result: result.index)
            self.result.browsers_launched = self.pool.statistics().browsers_launched
        if self.first_failure is not None:
            raise self.first_failure

    async def _render_row(
        self,
        row: _Row,
        progress: BatchProgress,
        send: trio.MemorySendChannel[RowResult],
        in_flight: trio.Semaphore,
        batch_scope: trio.CancelScope,
    ) -> None:
        assert row.options is not None and row.plan is not None and row.output is not None
        index = row.source.index
        try:
            self.manifest.forget(index)
            progress.row_started(index)
            self._event("row-start", row, digest=row.plan.digest)

            def on_render(state: RenderProgress) -> None:
                progress.row_progress(index, state.progress)

            try:
                rendered = await self.pool.render(row.options, on_progress=on_render,
                                                  plan=row.plan)
            except HeliosError as exc:
                message = f"{row.label}: {_one_line(exc)}"
                progress.row_ended(index, "failed")
                self._event("row-error", row, message=message, invalid=False)
                result = RowResult(index, row.output, "failed", message, row.plan.digest)
                self.result.rows.append(result)
                await send.send(result)
                if self.fail_fast and self.first_failure is None:
                    # The first failure stops every row; it is raised once they stopped.
                    self.first_failure = exc
                    batch_scope.cancel()
                return
            self.manifest.record(index, row.output, row.plan.digest)
            progress.row_ended(index, "done")
            self._event(
                "row-done", row, skipped=False, digest=row.plan.digest,
                frames=rendered.frames, frames_reused=rendered.frames_reused,
                elapsed=round(rendered.elapsed, 3),
            )
            result = RowResult(index, row.output, "done", None, row.plan.digest, rendered)
            self.result.rows.append(result)
            await send.send(result)
        finally:
            in_flight.release()


def render_batch_sync(
    source: str | os.PathLike[str],
    rows: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
    output_template: str,
    **kwargs: Any,
) -> BatchResult:
    """Blocking :func:`render_batch` for scripts: every row's :class:`RowResult`, in row order
    (its own Trio loop)."""

    async def main() -> BatchResult:
        results = BatchResult()
        concurrency = kwargs.pop("concurrency", None)
        executor = kwargs.pop("executor", None)
        async with open_pool(concurrency, executor=executor) as pool:
            async with render_batch(
                source, rows, output_template, pool=pool, **kwargs
            ) as channel:
                async for row in channel:
                    results.rows.append(row)
            results.browsers_launched = pool.statistics().browsers_launched
        results.rows.sort(key=lambda row: row.index)
        return results

    return trio.run(main)

