"""Stitching: the chunk files of a render into its output.

Steps, each a function, in order:

1. :func:`join_chunks`: one stream-copy concat of the chunks, with a ``duration`` line per
   chunk (``frames / fps``, exact) so that no container's rounding drifts at the seams; into
   the output's container (H.265 tagged ``hvc1`` in MP4/MOV here), or, for GIF and PNG
   sequences, into a lossless Matroska intermediate of the browser's PNGs;
2. :func:`check_frames`: the joined file's frame count, read back with ffprobe, must be the
   plan's, or nothing is renamed;
3. the finishing step of the codec: none for video files; :func:`make_gif` (two passes:
   ``palettegen=stats_mode=diff``, then ``paletteuse``); :func:`write_image_sequence` (the
   PNGs by stream copy into a new folder, numbered by composition frame);
4. :func:`page_audio`: what the page played (each chunk's media records, planned into one
   segment list) and ``--audio``, mixed once and muxed with the video stream-copied (video
   files only);
5. :func:`publish`: the atomic rename over the output (a folder is renamed only onto a name
   that does not exist), after the finished output's frame count is checked again.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from fractions import Fraction
from pathlib import Path

from .._exceptions import OptionsError, RenderError, UsageError
from .._ffmpeg.ffmpeg import (
    MIN_CHUNK_BYTES,
    concat_args,
    count_frames,
    gif_args,
    image_sequence_args,
    palette_args,
    run_ffmpeg,
)
from .._ffmpeg.mix import LocalMedia, mix_audio, resolve_media_url
from .._model.audio_plan import Soundtrack, plan_audio, soundtrack_segment
from .._model.codecs import CODECS, audio_codec_for
from .._model.job import FolderSource, MediaRecord, SourceRef
from .._model.options import RenderOptions
from .._model.plan import RenderPlan

__all__ = [
    "AudioStep",
    "check_frames",
    "concat_list",
    "join_chunks",
    "make_gif",
    "page_audio",
    "publish",
    "publish_folder",
    "soundtrack",
    "stitch",
    "write_image_sequence",
]

#: The audio step: mux sound into the joined video (first path), writing the second; ``False``
#: when nothing is heard (the video is used as it is).
AudioStep = Callable[[Path, Path], Awaitable[bool]]

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


def soundtrack(options: RenderOptions) -> Soundtrack | None:
    """``--audio``, checked before anything starts.

    Raises:
        OptionsError: The file does not exist.
    """
    if options.audio is None:
        return None
    path = Path(options.audio).expanduser().absolute()
    if not path.is_file():
        raise OptionsError(f"--audio file not found: {path} (give an audio file)")
    return Soundtrack(path, float(options.audio_offset), float(options.audio_volume))


def page_audio(
    options: RenderOptions,
    plan: RenderPlan,
    ffmpeg: Path,
    source: SourceRef,
    records: Sequence[Sequence[MediaRecord]],
    workdir: Path,
    on_mixing: Callable[[], object],
) -> AudioStep | None:
    """The audio step of a render, or ``None`` when the output has no sound (``--muted``, a
    format without audio)."""
    codec = audio_codec_for(plan.output.suffix, options.audio_codec)
    if options.muted or codec is None:
        return None
    segments = list(plan_audio(records, plan.fps, plan.start_frame))
    track = soundtrack(options)
    if track is not None:
        segment = soundtrack_segment(track, plan.frames, plan.fps)
        if segment is not None:
            segments.append(segment)
    if not segments:
        return None
    resolve = resolve_media_url
    if isinstance(source, FolderSource):
        resolve = LocalMedia("bundle:", Path(source.root).resolve()).resolve

    async def step(video: Path, mixed: Path) -> bool:
        on_mixing()
        return await mix_audio(
            ffmpeg, video, mixed, segments, frames=plan.frames, fps=plan.fps, codec=codec,
            bitrate=options.audio_bitrate, workdir=workdir, resolve=resolve,
        )

    return step


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
    ffmpeg: Path,
    ffprobe: Path,
    files: Sequence[Path],
    workdir: Path,
    *,
    audio: Callable[[], AudioStep | None] = lambda: None,
) -> None:
    """Join, check, finish, mix the sound and publish: the output exists only if every step
    passed. ``audio`` is asked for the audio step once the chunks are joined (video files)."""
    codec = CODECS[plan.codec]
    if codec.finish == "concat":
        joined = workdir / f"joined{plan.output.suffix}"
        mixed = workdir / f"mixed{plan.output.suffix}"
        try:
            await join_chunks(plan, ffmpeg, files, joined, workdir)
            await check_frames(plan, ffprobe, joined)
            step = audio()
            finished = mixed if step is not None and await step(joined, mixed) else joined
            publish(finished, plan.output)
        finally:
            joined.unlink(missing_ok=True)
            mixed.unlink(missing_ok=True)
        return
    joined = workdir / f"joined{codec.chunk_suffix}"
    finished = workdir / ("finished.gif" if codec.finish == "gif" else "frames")
    try:
        await join_chunks(plan, ffmpeg, files, joined, workdir, muxer=codec.chunk_format)
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
