"""Stitching: the chunk files of a render into its output.

:func:`stitch` gets data only: the plan (which carries the tools and the
:class:`~helios_render._model.audio_plan.AudioPlan`), the chunk files, what the page played in
each chunk, a work folder and a stage hook. Steps, each a function, in order:

1. :func:`join_chunks`: one stream-copy concat of the chunks, with a ``duration`` line per
   chunk (``frames / fps``, exact) so that no container's rounding drifts at the seams; into
   the output's container (H.265 tagged ``hvc1`` in MP4/MOV here), or, for GIF and PNG
   sequences, into a lossless Matroska intermediate of the browser's PNGs;
2. :func:`check_frames`: the joined file's frame count, read back with ffprobe, must be the
   plan's, or nothing is renamed;
3. the finishing step of the codec: none for video files; :func:`make_gif` (two passes:
   ``palettegen=stats_mode=diff``, then ``paletteuse``); :func:`write_image_sequence` (the
   PNGs by stream copy into a new folder, numbered by composition frame);
4. :func:`mix_sound`: what the page played (each chunk's media records, planned into one
   segment list) and ``--audio``, mixed once and muxed with the video stream-copied (video
   files with sound only);
5. :func:`publish`: the atomic rename over the output (a folder is renamed only onto a name
   that does not exist), after the finished output's frame count is checked again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

from .._exceptions import RenderError, UsageError
from .._ffmpeg.ffmpeg import (
    MIN_CHUNK_BYTES,
    concat_args,
    count_frames,
    gif_args,
    image_sequence_args,
    palette_args,
    run_ffmpeg,
)
from .._ffmpeg.mix import mix_audio
from .._model.codecs import CODECS
from .._model.job import MediaRecord
from .._model.plan import RenderPlan
from .._model.progress import Stage

__all__ = [
    "StageHook",
    "check_frames",
    "concat_list",
    "join_chunks",
    "make_gif",
    "mix_sound",
    "publish",
    "publish_folder",
    "stitch",
    "write_image_sequence",
]

#: Told the stage a render enters (``"stitching"``, ``"mixing audio"``), for progress.
StageHook = Callable[[Stage], object]

logger = logging.getLogger(__name__)


def _seconds(value: Fraction) -> str:
    """``value`` in decimal seconds, to the nanosecond (the concat demuxer's resolution is
    microseconds; nanoseconds keep the rounding error far below it)."""
    nanoseconds = round(value * 1_000_000_000)
    return f"{nanoseconds // 1_000_000_000}.{nanoseconds % 1_000_000_000:09d}"


#: How the concat demuxer opens each MPEG-TS chunk: our own encoder wrote it, with its
#: parameters at its start, so FFmpeg need not probe 5 MB of it; 64 KiB is the least a chunk
#: holds (see :data:`~helios_render._ffmpeg.ffmpeg.MIN_CHUNK_BYTES`). On 8 chunks of 1080p H.264
#: this halved the join (0.30 s to 0.15 s of CPU) and wrote a byte-identical file.
TS_CHUNK_OPTIONS = (("probesize", str(MIN_CHUNK_BYTES)),)


def concat_list(
    chunks: Sequence[tuple[Path, Fraction]], options: Sequence[tuple[str, str]] = ()
) -> str:
    """The text of a concat-demuxer list naming each chunk file with its exact duration,
    and the ``options`` it is opened with."""
    lines = []
    for path, duration in chunks:
        quoted = os.fspath(path).replace("'", "'\\''")
        lines.append(f"file '{quoted}'")
        lines.extend(f"option {key} {value}" for key, value in options)
        lines.append(f"duration {_seconds(duration)}")
    return "\n".join(lines) + "\n"


async def join_chunks(
    plan: RenderPlan,
    ffmpeg: Path,
    files: Sequence[Path],
    joined: Path,
    workdir: Path,
    muxer: str | None = None,
) -> None:
    """Concatenate ``files`` (the plan's chunks, in order) by stream copy into ``joined``
    (in ``muxer``, default the muxer of its suffix)."""
    durations = [Fraction(chunk.frames) / plan.fps for chunk in plan.chunks]
    list_file = workdir / "chunks.txt"
    ts = CODECS[plan.codec].chunk_format == "mpegts"
    list_file.write_text(
        concat_list(list(zip(files, durations, strict=True)), TS_CHUNK_OPTIONS if ts else ())
    )
    await run_ffmpeg(
        concat_args(ffmpeg, list_file, joined, plan.codec, muxer),
        workdir / "concat.log",
        what="join chunks",
    )


async def check_frames(plan: RenderPlan, ffprobe: Path, joined: Path) -> None:
    """Raise :class:`RenderError` unless ``joined`` holds exactly the plan's frames."""
    frames = await count_frames(ffprobe, joined)
    if frames != plan.frames:
        raise RenderError(
            f"the joined video holds {frames} frames, expected {plan.frames}: "
            "nothing was written (run again with -v and report it)"
        )


async def make_gif(ffmpeg: Path, joined: Path, output: Path, workdir: Path) -> None:
    """The GIF of ``joined`` (lossless PNG frames): a palette for the whole video, then the
    frames mapped to it."""
    palette = workdir / "palette.png"
    try:
        await run_ffmpeg(
            palette_args(ffmpeg, joined, palette), workdir / "palette.log", what="make the palette"
        )
        await run_ffmpeg(
            gif_args(ffmpeg, joined, palette, output), workdir / "gif.log", what="write the GIF"
        )
    finally:
        palette.unlink(missing_ok=True)


async def write_image_sequence(plan: RenderPlan, ffmpeg: Path, joined: Path, folder: Path) -> None:
    """The PNG frames of ``joined`` into ``folder`` (created here), named by ``plan``'s
    pattern and numbered by composition frame, and check that it holds exactly them.

    Raises:
        RenderError: The folder does not hold exactly the plan's frames.
    """
    assert plan.frame_pattern is not None
    folder.mkdir()
    await run_ffmpeg(
        image_sequence_args(ffmpeg, joined, folder, plan.frame_pattern, plan.start_frame),
        folder.parent / f"{folder.name}.log",
        what="write the PNG frames",
    )
    (folder.parent / f"{folder.name}.log").unlink(missing_ok=True)
    expected = {
        plan.frame_pattern % frame
        for frame in range(plan.start_frame, plan.start_frame + plan.frames)
    }
    found = {entry.name for entry in folder.iterdir()}
    if found != expected:
        raise RenderError(
            f"the image sequence holds {len(found)} files, expected the {plan.frames} frames "
            f"{min(expected)} to {max(expected)}: nothing was written (report it)"
        )


def publish(joined: Path, output: Path) -> None:
    """Rename the finished file over the output (atomic on one file system)."""
    os.replace(joined, output)


async def mix_sound(
    plan: RenderPlan,
    video: Path,
    mixed: Path,
    media_records: Sequence[Sequence[MediaRecord]],
    workdir: Path,
    on_stage: StageHook,
) -> bool:
    """Mix what the page played and the soundtrack, as ``plan.audio`` says, and mux it with
    ``video`` (stream-copied) into ``mixed``. Tells ``on_stage`` ``"mixing audio"`` when
    there is something to mix.

    Returns:
        Whether ``mixed`` was written; ``False`` when the output has no sound (``--muted``, a
        format without audio, nothing played, every source silent): ``video`` is the output.

    Raises:
        MediaError: A source is missing or cannot be decoded.
        EncoderError: FFmpeg failed to mix.
    """
    audio = plan.audio
    segments = audio.segments(media_records, plan.frames, plan.fps, plan.start_frame)
    if not segments:
        return False
    assert audio.codec is not None and plan.ffprobe is not None
    on_stage("mixing audio")
    return await mix_audio(
        plan.ffmpeg, plan.ffprobe, video, mixed, segments, frames=plan.frames, fps=plan.fps,
        codec=audio.codec, bitrate=audio.bitrate, workdir=workdir, media_root=audio.media_root,
    )


def publish_folder(folder: Path, output: Path) -> None:
    """Rename the finished folder to ``output``, which must not exist (atomic on one file
    system; an empty folder made meanwhile at ``output`` is never replaced).

    Raises:
        UsageError: Something appeared at ``output`` while rendering.
    """
    if output.exists() or output.is_symlink():
        raise UsageError(
            f"{output} appeared while rendering: the frames were not written; remove it and "
            "run again"
        )
    os.rename(folder, output)


async def stitch(
    plan: RenderPlan,
    chunk_files: Sequence[Path],
    media_records: Sequence[Sequence[MediaRecord]],
    workdir: Path,
    on_stage: StageHook = lambda stage: None,
) -> None:
    """Join, check, finish, mix the sound and publish: the output exists only if every step
    passed.

    Args:
        plan: The render's plan: its chunks, tools, codec and sound.
        chunk_files: Every chunk's file, in the plan's order.
        media_records: What the page played in each chunk (for the sound of a video file).
        workdir: A folder for the intermediate files and FFmpeg's logs.
        on_stage: Told each stage as it starts: ``"stitching"``, then ``"mixing audio"``
            when there is sound to mix.

    Raises:
        RenderError: The joined or finished output does not hold the plan's frames.
        EncoderError: FFmpeg failed.
        MediaError: A media source cannot be read.

    Cancellation:
        FFmpeg and ffprobe are stopped and reaped; the output is left as it was.
    """
    assert plan.ffprobe is not None, "a plan for a still has no stitch"
    ffmpeg, ffprobe = plan.ffmpeg, plan.ffprobe
    on_stage("stitching")
    codec = CODECS[plan.codec]
    if codec.finish == "concat":
        joined = workdir / f"joined{plan.output.suffix}"
        mixed = workdir / f"mixed{plan.output.suffix}"
        try:
            await join_chunks(plan, ffmpeg, chunk_files, joined, workdir)
            await check_frames(plan, ffprobe, joined)
            sound = await mix_sound(plan, joined, mixed, media_records, workdir, on_stage)
            publish(mixed if sound else joined, plan.output)
        finally:
            joined.unlink(missing_ok=True)
            mixed.unlink(missing_ok=True)
        return
    joined = workdir / f"joined{codec.chunk_suffix}"
    finished = workdir / ("finished.gif" if codec.finish == "gif" else "frames")
    try:
        await join_chunks(plan, ffmpeg, chunk_files, joined, workdir, muxer=codec.chunk_format)
        await check_frames(plan, ffprobe, joined)
        if codec.finish == "gif":
            await make_gif(ffmpeg, joined, finished, workdir)
            await check_frames(plan, ffprobe, finished)
            publish(finished, plan.output)
        else:
            await write_image_sequence(plan, ffmpeg, joined, finished)
            publish_folder(finished, plan.output)
    finally:
        joined.unlink(missing_ok=True)
        if finished.is_dir():
            shutil.rmtree(finished, ignore_errors=True)
        else:
            finished.unlink(missing_ok=True)
