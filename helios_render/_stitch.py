"""Stitching: the chunk files of a render into its output.

Steps, each a function, in order:

1. :func:`join_chunks`: one stream-copy concat of the chunks, with a ``duration`` line per
   chunk (``frames / fps``, exact) so that no container's rounding drifts at the seams;
2. :func:`check_frames`: the joined file's frame count, read back with ffprobe, must be the
   plan's, or nothing is renamed;
3. the audio step (none yet: the output carries video only);
4. :func:`publish`: the atomic rename over the output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

from ._exceptions import RenderError
from ._ffmpeg import concat_args, run_ffmpeg
from ._jobs import count_frames
from ._plan import RenderPlan

__all__ = ["check_frames", "concat_list", "join_chunks", "publish", "stitch"]

logger = logging.getLogger(__name__)


def _seconds(value: Fraction) -> str:
    """``value`` in decimal seconds, to the nanosecond (the concat demuxer's resolution is
    microseconds; nanoseconds keep the rounding error far below it)."""
    nanoseconds = round(value * 1_000_000_000)
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


def concat_list(chunks: Sequence[tuple[Path, Fraction]]) -> str:
    """The text of a concat-demuxer list naming each chunk file with its exact duration."""
    lines = []
    for path, duration in chunks:
        quoted = os.fspath(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        lines.append(f"duration {_seconds(duration)}")
    return "\n".join(lines) + "\n"


async def join_chunks(
    plan: RenderPlan, ffmpeg: Path, files: Sequence[Path], joined: Path, workdir: Path
) -> None:
    """Concatenate ``files`` (the plan's chunks, in order) by stream copy into ``joined``."""
    durations = [Fraction(chunk.frames) / plan.fps for chunk in plan.chunks]
    list_file = workdir / "chunks.txt"
    list_file.write_text(concat_list(list(zip(files, durations, strict=True))))
    await run_ffmpeg(
        concat_args(ffmpeg, list_file, joined), workdir / "concat.log", what="join chunks"
    )


async def check_frames(plan: RenderPlan, ffprobe: Path, joined: Path) -> None:
    """Raise :class:`RenderError` unless ``joined`` holds exactly the plan's frames."""
    frames = await count_frames(ffprobe, joined)
    if frames != plan.frames:
        raise RenderError(
            f"the joined video holds {frames} frames, expected {plan.frames}: "
            "nothing was written (run again with -v and report it)"
        )


def publish(joined: Path, output: Path) -> None:
    """Rename the finished file over the output (atomic on one file system)."""
    os.replace(joined, output)


async def stitch(
    plan: RenderPlan, ffmpeg: Path, ffprobe: Path, files: Sequence[Path], workdir: Path
) -> None:
    """Join, check and publish: the output exists only if every step passed."""
    joined = workdir / f"joined{plan.output.suffix}"
    try:
        await join_chunks(plan, ffmpeg, files, joined, workdir)
        await check_frames(plan, ffprobe, joined)
        publish(joined, plan.output)
    finally:
        joined.unlink(missing_ok=True)
