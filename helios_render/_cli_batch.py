"""``helios-render batch SOURCE ROWS --output TEMPLATE [render options]``: its parser (the
``render`` command's options, so that a flag added to ``render`` is a batch flag too), its
progress display and its exit codes (0 every row done, 1 a row failed or was invalid, 2 bad
usage and nothing rendered)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

from ._cli_progress import ProgressPrinter, _format_seconds
from ._model.batch_progress import BatchState
from ._render import open_pool

if TYPE_CHECKING:
    from ._batch import BatchResult

__all__ = ["BatchPrinter", "add_batch_parser", "batch_job"]

#: Command-line names of ``batch`` that are not RenderOptions fields for every row.
NOT_SETTINGS = frozenset({
    "command", "verbose", "progress", "props", "source", "rows", "output_template",
    "fail_fast", "strict_props", "concurrency",
})


def add_batch_parser(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    render: argparse.ArgumentParser,
) -> argparse.ArgumentParser:
    """The ``batch`` command: ``SOURCE ROWS --output TEMPLATE``, every option of ``render``
    (``--props`` gives defaults under every row), ``--fail-fast``."""
    batch: argparse.ArgumentParser = commands.add_parser(
        "batch", help="render one video per row of a .csv, .jsonl or .json file"
    )
    for action in render._actions:
        if action.dest in ("help", "output"):
            continue
        batch._add_action(action)
        if action.dest == "source":
            batch.add_argument(
                "rows", metavar="ROWS",
                help="rows of props: .csv (a header of prop names), .jsonl or .json",
            )
    batch.add_argument(
        "--output", "-o", dest="output_template", required=True, metavar="TEMPLATE",
        help="each row's output, e.g. 'out/{index:04d}-{name}.mp4' (index from 0, any prop "
        "by name; folders are created)",
    )
    batch.add_argument(
        "--fail-fast", action="store_true", default=False,
        help="an invalid row stops the batch before anything renders (exit 2); the first "
        "failed row stops every other (exit 1)",
    )
    return batch


class BatchPrinter:
    """Shows a batch: a bar (frames and rows), a line per row, or JSON per line (progress,
    ``row-start``, ``row-done``, ``row-error``, and a final ``done`` with every row)."""

    def __init__(self, printer: ProgressPrinter) -> None:
        self._printer = printer
        self.mode = printer.mode
        self._last_line_at = -1.0
        self._started = time.monotonic()

    def _write(self, stream: TextIO, text: str) -> None:
        self._printer._write(stream, text)

    @staticmethod
    def _summary(state: BatchState) -> str:
        fps = f"{state.fps:5.1f} fps" if state.fps else "  --- fps"
        failed = f", {state.rows_failed} failed" if state.rows_failed else ""
        skipped = f", {state.rows_skipped} skipped" if state.rows_skipped else ""
        ended = state.rows_done + state.rows_skipped + state.rows_failed
        return (
            f"rows {ended}/{state.rows_total}{skipped}{failed}  {state.progress * 100:5.1f}%  "
            f"{state.frames_done}/{state.frames_total} frames  {fps}  "
            f"ETA {_format_seconds(state.eta)}"
        )

    def progress(self, state: BatchState) -> None:
        if self.mode == "json":
            self._write(self._printer._json, json.dumps(state.as_json()) + "\n")
        elif self.mode == "bar":
            width = 30
            filled = int(state.progress * width)
            bar = "#" * filled + "-" * (width - filled)
            self._write(self._printer._stream, f"\r[{bar}] {self._summary(state)}\x1b[K")
            self._printer._bar_shown = True
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line_at >= 5 or state.progress == 1.0:
                self._last_line_at = now
                self._write(self._printer._stream, self._summary(state) + "\n")

    def event(self, event: dict[str, Any]) -> None:
        if self.mode == "json":
            self._write(self._printer._json, json.dumps(event) + "\n")
            if event["event"] != "row-error":
                return
        if event["event"] == "row-error":
            self._printer.finish()
            self._write(self._printer._stream, f"helios-render: {event['message']}\n")
        elif event["event"] == "row-done" and self.mode == "lines":
            how = "complete (skipped)" if event.get("skipped") else "done"
            self._write(
                self._printer._stream, f"row {event['row']} {how}: {event['output']}\n"
            )

    def done(self, result: BatchResult, exit_code: int) -> None:
        self._printer.finish()
        statuses = [row.status for row in result.rows]
        counts = {name: statuses.count(name) for name in ("done", "skipped", "failed", "invalid")}
        elapsed = time.monotonic() - self._started
        if self.mode == "json":
            event = {
                "event": "done",
                "rows": [row.as_json() for row in result.rows],
                "rows_total": len(result.rows),
                **{f"rows_{name}": count for name, count in counts.items()},
                "browsers_launched": result.browsers_launched,
                "elapsed": round(elapsed, 3),
                "exit_code": exit_code,
            }
            self._write(self._printer._json, json.dumps(event) + "\n")
        elif self.mode != "none":
            extra = "".join(
                f", {counts[name]} {name}" for name in ("skipped", "failed", "invalid")
                if counts[name]
            )
            self._write(
                self._printer._stream,
                f"batch: {counts['done'] + counts['skipped']} of {len(result.rows)} rows "
                f"complete ({counts['done']} rendered{extra}) in {elapsed:.1f} s\n",
            )


def batch_job(
    args: argparse.Namespace, props: Any, printer: ProgressPrinter
) -> tuple[Callable[[], Awaitable[BatchResult]], BatchPrinter]:
    """The batch as an async job for the command line's runner, and its printer."""
    # Imported here: the batch and its props checks (jsonschema) cost every other command
    # about 0.05 s of start-up.
    from ._batch import BatchResult, render_batch

    shown = BatchPrinter(printer)
    settings = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS}

    async def job() -> BatchResult:
        result = BatchResult()
        async with open_pool(getattr(args, "concurrency", None)) as pool:
            try:
                async with render_batch(
                    args.source, args.rows, args.output_template, props=props,
                    strict_props=getattr(args, "strict_props", False),
                    fail_fast=args.fail_fast, on_progress=shown.progress,
                    on_event=shown.event, pool=pool, **settings,
                ) as rows:
                    async for row in rows:
                        result.rows.append(row)
            finally:
                result.browsers_launched = pool.statistics().browsers_launched
        result.rows.sort(key=lambda row: row.index)
        return result

    return job, shown


def exit_code_of(result: BatchResult) -> int:
    """0 when every row is done or skipped, else 1."""
    return 0 if result.ok else 1

