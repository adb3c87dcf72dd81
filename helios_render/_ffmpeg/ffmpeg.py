"""FFmpeg: find it, build its arguments (pure), feed an encoder on stdin, concatenate, count
frames with ffprobe.

Every FFmpeg and ffprobe is started with :func:`~helios_render._process.spawn` (never
``trio.run_process``: see :mod:`helios_render._process`), stopped and reaped on cancellation,
and its failures and timeouts reach the caller as :class:`EncoderError` quoting its log.

Chunks are written in their codec's chunk container (see :mod:`helios_render._model.codecs`):
MPEG-TS for
H.264/H.265, whose 90 kHz timestamps survive the concat demuxer exactly, where MP4 chunks (edit
lists, last-frame durations) put irregular timestamps at every seam; WebM, Matroska or MOV for
the others. The final file is one stream-copy concat of the chunks, so a render with one worker
and a render with many take the same path.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from fractions import Fraction
from pathlib import Path
from typing import Any

import trio

from .._exceptions import EncoderError, ToolNotFoundError
from .._model.codecs import (
    CODECS,
    DEFAULT_PRORES_PROFILE,
    OUTPUT_MUXERS,
    PRORES_ALPHA_PROFILES,
    PRORES_PROFILES,
    speed_args,
)
from .._model.job import EncoderSettings
from .._model.mp4 import count_mp4_frames
from .._model.mpegts import count_ts_frames
from .._process import ManagedProcess, log_tail, spawn
from .._toolcache import cached_facts
from . import matroska

__all__ = [
    "COLOUR_ARGS",
    "ENCODER_FINISH_TIMEOUT",
    "PROBE_TIMEOUT",
    "Encoder",
    "concat_args",
    "count_frames",
    "encoder_args",
    "ffprobe_for",
    "find_ffmpeg",
    "gif_args",
    "has_colorspace_filter",
    "image_sequence_args",
    "open_encoder",
    "pad_transport_stream",
    "palette_args",
    "run_ffmpeg",
    "timed_input",
]

logger = logging.getLogger(__name__)

#: Seconds FFmpeg gets to finish writing after EOF on stdin before it is killed.
ENCODER_FINISH_TIMEOUT = 60.0
#: Seconds FFmpeg gets to exit after EOF when the render is being torn down (its file is
#: discarded then, so there is no reason to wait long).
ENCODER_ABORT_GRACE = 0.3


def find_ffmpeg(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Locate FFmpeg: ``explicit`` (``--ffmpeg``), ``$HELIOS_FFMPEG``, then ``PATH``.

    Raises:
        ToolNotFoundError: Not found; the message says what to install.
    """
    candidates = ((explicit, "--ffmpeg"), (os.environ.get("HELIOS_FFMPEG"), "HELIOS_FFMPEG"))
    for value, origin in candidates:
        if value:
            path = Path(value)
            if not path.is_file() or not os.access(path, os.X_OK):
                raise ToolNotFoundError(
                    f"FFmpeg not found at {path} (from {origin}): give the path of an ffmpeg "
                    "executable, or install it (Debian/Ubuntu: apt-get install ffmpeg)"
                )
            return path
    found = shutil.which("ffmpeg")
    if found is None:
        raise ToolNotFoundError(
            "FFmpeg not found on PATH: install it (Debian/Ubuntu: apt-get install ffmpeg), "
            "or pass --ffmpeg PATH or set HELIOS_FFMPEG"
        )
    return Path(found)


def ffprobe_for(ffmpeg: Path) -> Path:
    """The ffprobe beside ``ffmpeg``, else the one on ``PATH``."""
    sibling = ffmpeg.with_name("ffprobe")
    if sibling.is_file():
        return sibling
    found = shutil.which("ffprobe")
    if found is None:
        raise ToolNotFoundError("ffprobe not found: it ships with FFmpeg (apt-get install ffmpeg)")
    return Path(found)


def _ask_ffmpeg(ffmpeg: Path) -> dict[str, Any]:
    """``ffmpeg -encoders`` and ``ffmpeg -filters``: its banner's first line (the version),
    the encoders, and whether it has the ``colorspace`` filter (see :data:`JPEG_COLOUR`)."""
    answers = []
    for flag in ("-encoders", "-filters"):
        try:
            done = subprocess.run(
                [os.fspath(ffmpeg), flag], capture_output=True, timeout=20, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolNotFoundError(f"FFmpeg at {ffmpeg} does not run: {exc}") from exc
        answers.append(done)
    banner = answers[0].stderr.decode("utf-8", "replace").splitlines()
    names = []
    for line in answers[0].stdout.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.append(parts[1])
    filters = answers[1].stdout.decode("utf-8", "replace").splitlines()
    return {
        "version": banner[0] if banner else "unknown",
        "encoders": sorted(names),
        "colorspace": any(line.split()[1:2] == ["colorspace"] for line in filters),
    }


def _ffmpeg_facts(ffmpeg: Path) -> dict[str, Any]:
    # "ffmpeg-2": the answers gained "colorspace"; older entries are asked again.
    facts: dict[str, Any] = cached_facts(ffmpeg, "ffmpeg-2", lambda: _ask_ffmpeg(ffmpeg))
    return facts


_colorspace_known: dict[str, bool] = {}


def has_colorspace_filter(ffmpeg: Path) -> bool:
    """Whether this FFmpeg has the ``colorspace`` filter (see :data:`JPEG_COLOUR`), asked with
    its other facts; kept per process too, since a wrapper script's facts are not cached. An
    FFmpeg that does not answer (interrupted, say) gets ``scale`` this time and is asked
    again next time."""
    key = os.fspath(ffmpeg)
    if key not in _colorspace_known:
        try:
            _colorspace_known[key] = bool(_ffmpeg_facts(ffmpeg)["colorspace"])
        except ToolNotFoundError:
            return False
    return _colorspace_known[key]


def ffmpeg_encoders(ffmpeg: Path) -> set[str]:
    """Names of the encoders this FFmpeg build has (remembered per executable file).

    Raises:
        ToolNotFoundError: FFmpeg does not run.
    """
    return set(_ffmpeg_facts(ffmpeg)["encoders"])


def ffmpeg_version(ffmpeg: Path) -> str:
    """First line of ``ffmpeg -version`` (remembered per executable file)."""
    try:
        return str(_ffmpeg_facts(ffmpeg)["version"])
    except ToolNotFoundError as exc:
        return f"unknown ({exc.__cause__ or exc})"


def _quiet(ffmpeg: Path) -> list[str]:
    """FFmpeg with errors only in its log, overwriting its output (a temporary name)."""
    return [os.fspath(ffmpeg), "-hide_banner", "-loglevel", "error", "-y"]


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


#: BT.709, limited range: how every YUV output is tagged, in the stream and on the frames
#: (``prores_ks`` ignores ``-colorspace`` and takes the frames' tags).
COLOUR_ARGS = (
    "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
    "-color_range", "tv",
)
_TAG_FRAMES = "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
#: Chromium's JPEGs are BT.601 full-range YUV 4:2:0 of sRGB pictures (BT.709 primaries and
#: transfer). Only the matrix and the range change, and the ``colorspace`` filter does that
#: in YUV at 8 bits, skipping the transfer and primaries (``fast``, exact here: they are the
#: same). It is nearer the exact values than ``scale`` (measured on ten colours: at most
#: 0.73 of a code value off against 1.51) and costs less than half its CPU (1080p: 1.1 ms
#: against 7 ms a frame). ``format=yuvj420p`` holds the input at 4:2:0 full range.
JPEG_COLOUR = (
    "format=yuvj420p,"
    "colorspace=all=bt709:iall=bt601-6-625:irange=pc:range=tv:fast=1:format=yuv420p"
)


def timed_input(settings: EncoderSettings) -> bool:
    """Whether the encoder reads its images as timed Matroska blocks (JPEG captures into a
    codec that encodes them), so that a repeated image is never sent: see
    :mod:`~helios_render._ffmpeg.matroska`. PNG captures and PNG-copying formats read an
    image per frame."""
    return settings.image_format == "jpeg" and not settings.table.copies_png


def encoder_args(
    ffmpeg: Path,
    settings: EncoderSettings,
    output: Path,
    segments: Sequence[int] = (),
    first_index: int = 0,
    threads: int | None = None,
    colorspace_filter: bool = False,
) -> list[str]:
    """Arguments for an FFmpeg that reads JPEG or PNG images on stdin and writes one chunk
    of ``settings.codec`` in the codec's chunk container, starting with a keyframe.

    With ``segments`` (the frame counts of consecutive chunks; MPEG-TS chunks only) it writes
    each of them to its own file: ``output`` is then a pattern such as ``chunk-%05d.ts``,
    numbered from ``first_index``. Every chunk starts with a forced IDR frame and has its
    timestamps from zero, as a chunk encoded alone does, so each file stands on its own.

    For GIF and PNG sequences the chunk is the browser's PNGs stream-copied into Matroska.

    ``threads`` bounds the encoder's threads (``None``: the encoder's own choice).
    ``colorspace_filter``: this FFmpeg has it (:func:`has_colorspace_filter`); JPEGs into a
    4:2:0 output then change colours with it (:data:`JPEG_COLOUR`) instead of ``scale``.
    """
    codec = settings.table
    timed = timed_input(settings)
    args = [
        *_quiet(ffmpeg),
        # No probing of the input: the codec and rate are given, and a probe holds back the
        # first 5 MB of frames (50 at 1080p) before anything is encoded. (An analyzeduration
        # of 0 would not help: FFmpeg reads 0 as its default.)
        "-probesize", "32",
        *(["-f", "matroska"] if timed else ["-f", "image2pipe", "-framerate", _rate(settings.fps)]),
        "-c:v",
        "mjpeg" if settings.image_format == "jpeg" else "png",
        "-i",
        "pipe:0",
        "-an",
    ]
    if codec.copies_png:
        return [*args, "-c:v", "copy", "-f", codec.chunk_format, os.fspath(output)]
    encoder = settings.chosen_encoder
    alpha = settings.transparent and codec.alpha_pix_fmt is not None
    pix_fmt = codec.alpha_pix_fmt if alpha and codec.alpha_pix_fmt else codec.pix_fmt
    profile = settings.prores_profile or DEFAULT_PRORES_PROFILE
    if codec.name == "prores" and profile in PRORES_ALPHA_PROFILES and not alpha:
        pix_fmt = "yuv444p10le"  # 4444 without alpha: full chroma, no alpha plane
    # Timed input leaves a static frame's repeats out: `fps` fills them in with the picture
    # before, already converted (see _ffmpeg/matroska.py).
    fill = f",fps={_rate(settings.fps)}:eof_action=pass" if timed else ""
    size = f"scale={settings.width}:{settings.height}"  # a no-op at the captured size
    if colorspace_filter and settings.image_format == "jpeg" and pix_fmt == "yuv420p":
        colour = f"{size},{JPEG_COLOUR}"
    else:
        colour = f"{size}:out_color_matrix=bt709:out_range=tv,format={pix_fmt}"
    args += [
        "-vf",
        f"{colour},{_TAG_FRAMES}{fill}",
        "-c:v",
        encoder,
    ]
    if threads is not None:
        args += ["-threads", str(threads)]
    if codec.quality is not None:
        crf = codec.quality.default if settings.crf is None else settings.crf
        args += [codec.quality.flag, str(crf), *codec.quality.extra]
    if codec.speed is not None:
        args += speed_args(codec, encoder, settings.preset or codec.speed.default)
    if codec.name == "prores":
        args += ["-profile:v", str(PRORES_PROFILES[profile])]
    if alpha:
        args += codec.alpha_args
    args += [*codec.extra_args.get(encoder, ()), *COLOUR_ARGS]
    if len(segments) > 1:
        if codec.chunk_format != "mpegts":
            raise ValueError(f"{codec.name} chunks are not MPEG-TS: one encoder per chunk")
        splits = list(itertools.accumulate(segments))[:-1]
        return [
            *args,
            # An IDR, not an open-GOP I frame: nothing after it refers to the chunk before.
            "-forced-idr", "1",
            "-force_key_frames", "expr:" + "+".join(f"eq(n,{split})" for split in splits),
            "-f", "segment",
            "-segment_frames", ",".join(str(split) for split in splits),
            "-segment_format", "mpegts",
            "-segment_format_options", "mpegts_copyts=1",
            "-reset_timestamps", "1",
            "-segment_start_number", str(first_index),
            os.fspath(output),
        ]
    if codec.chunk_format == "mpegts":
        args += ["-f", "mpegts", "-mpegts_copyts", "1"]
    else:
        args += ["-f", codec.chunk_format]
    return [*args, os.fspath(output)]


#: FFmpeg's MPEG-TS probe needs more packets than a chunk of a few flat frames holds; shorter
#: chunks are padded with null packets (PID 0x1FFF, ignored by every demuxer) up to this size.
MIN_CHUNK_BYTES = 64 * 1024
_TS_NULL_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * 184


def pad_transport_stream(path: Path, minimum: int = MIN_CHUNK_BYTES) -> None:
    """Append MPEG-TS null packets to ``path`` until it is at least ``minimum`` bytes."""
    size = path.stat().st_size
    if size >= minimum:
        return
    packets = -(-(minimum - size) // len(_TS_NULL_PACKET))
    with path.open("ab") as handle:
        handle.write(_TS_NULL_PACKET * packets)


def concat_args(
    ffmpeg: Path, list_file: Path, output: Path, codec: str = "h264", muxer: str | None = None
) -> list[str]:
    """Arguments that join the chunks named in ``list_file`` by stream copy into ``output``,
    in ``muxer`` (default: the muxer of the output's suffix). H.265 is tagged ``hvc1`` here,
    in MP4/MOV, where Apple players need it (on the MPEG-TS chunk encoder it does nothing)."""
    container = muxer or OUTPUT_MUXERS.get(output.suffix.lower(), "mp4")
    args = [
        *_quiet(ffmpeg),
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        os.fspath(list_file),
        "-map",
        "0:v",
        "-c",
        "copy",
    ]
    tag = CODECS[codec].mp4_tag
    if container in ("mp4", "mov"):
        if tag:
            args += ["-tag:v", tag]
        args += ["-movflags", "+faststart"]
    args += ["-f", container, os.fspath(output)]
    return args


def palette_args(ffmpeg: Path, joined: Path, palette: Path) -> list[str]:
    """First GIF pass: one palette for the whole video, weighted to what moves
    (``stats_mode=diff``)."""
    return [
        *_quiet(ffmpeg), "-i", os.fspath(joined), "-map", "0:v",
        "-vf", "palettegen=stats_mode=diff", "-frames:v", "1", "-f", "image2",
        os.fspath(palette),
    ]


def gif_args(ffmpeg: Path, joined: Path, palette: Path, output: Path) -> list[str]:
    """Second GIF pass: every frame mapped to the palette, looping forever (the NETSCAPE
    loop extension), one GIF frame per frame (no frame dropped or repeated)."""
    return [
        *_quiet(ffmpeg), "-i", os.fspath(joined), "-i", os.fspath(palette),
        "-lavfi", "[0:v][1:v]paletteuse=diff_mode=rectangle", "-fps_mode", "passthrough",
        "-c:v", "gif", "-loop", "0", "-f", "gif", os.fspath(output),
    ]


def image_sequence_args(
    ffmpeg: Path, joined: Path, folder: Path, pattern: str, start_number: int
) -> list[str]:
    """The PNG frames of ``joined`` (stream copy, no re-encode) as ``folder/pattern``,
    numbered from ``start_number``."""
    return [
        *_quiet(ffmpeg), "-i", os.fspath(joined), "-map", "0:v", "-c:v", "copy",
        "-fps_mode", "passthrough", "-f", "image2", "-start_number", str(start_number),
        os.fspath(folder / pattern),
    ]


def _status_hint(status: int | None, log: Path) -> str:
    """What an FFmpeg exit status and log say, for a user: disk full, killed, the log tail."""
    hint = ""
    tail = log_tail(log)
    if status == -signal.SIGXFSZ or "No space left" in tail or "File too large" in tail:
        hint = " (file size limit exceeded or disk full: free space or write elsewhere)"
    elif status is not None and status < 0:
        hint = f" (killed by signal {signal.Signals(-status).name})"
    return hint + (f":\n{tail}" if tail else "")


class Encoder:
    """An FFmpeg process fed images on stdin. Create it with :func:`open_encoder`.

    With ``timed`` (the settings of an encoder whose arguments read timed Matroska, see
    :func:`timed_input`), each image goes as a block at its frame's time, and a repeat (an
    image the caller says is the one before) is not sent: FFmpeg repeats the picture. The
    last frame given is always sent, at :meth:`finish` if it was a repeat."""

    def __init__(
        self,
        process: ManagedProcess,
        stdin: trio.lowlevel.FdStream,
        log: Path,
        timed: EncoderSettings | None = None,
    ) -> None:
        self.process = process
        self._stdin = stdin
        self._log = log
        self._timed = timed
        self._last: bytes | None = None  # the last image sent (timed)
        self._repeats = 0  # frames after it not sent yet (timed)
        #: Frames given (sent or repeated), and repeats FFmpeg filled in.
        self.frames_written = 0
        self.frames_repeated = 0

    def error(self, what: str) -> EncoderError:
        """An :class:`EncoderError` quoting the tail of FFmpeg's log."""
        return EncoderError(f"FFmpeg {what}{_status_hint(self.process.returncode, self._log)}")

    async def write(self, image: bytes, *, repeat: bool = False) -> None:
        """Hand one frame's image to FFmpeg; waits while FFmpeg is busy (bounded
        backpressure). ``repeat``: it is the image of the frame before (a static frame).

        Raises:
            EncoderError: FFmpeg has exited (its log tail is in the message).
        """
        timed = self._timed
        if timed is None:
            await self._send(image)
        elif repeat and self._last is not None:
            self._repeats += 1
            self.frames_repeated += 1
        else:
            if self.frames_written == 0:
                await self._send(matroska.header(timed.width, timed.height, timed.fps))
            await self._send_block(self.frames_written, image)
        self.frames_written += 1

    async def _send_block(self, index: int, image: bytes) -> None:
        assert self._timed is not None
        await self._send(matroska.block_header(index, self._timed.fps, len(image)))
        await self._send(image)
        self._last, self._repeats = image, 0

    async def _send(self, data: bytes) -> None:
        try:
            await self._stdin.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            status = await self._reap_after_failure()
            raise self.error(f"stopped reading frames (exit status {status})") from exc

    async def _reap_after_failure(self) -> int | None:
        with trio.move_on_after(ENCODER_ABORT_GRACE):
            return await self.process.wait()
        return None

    async def finish(self) -> None:
        """Send EOF and wait for FFmpeg to write its file.

        Raises:
            EncoderError: FFmpeg failed or did not finish within :data:`ENCODER_FINISH_TIMEOUT`.
        """
        if self._repeats > 0 and self._last is not None:
            # The last frame goes as a block, so the picture fills every frame up to it.
            self.frames_repeated -= 1
            await self._send_block(self.frames_written - 1, self._last)
        if self._timed is not None:
            logger.debug(
                "encoder pid=%s: %d frames, %d of them repeats left to FFmpeg",
                self.process.pid, self.frames_written, self.frames_repeated,
            )
        await self._stdin.aclose()
        with trio.move_on_after(ENCODER_FINISH_TIMEOUT):
            status = await self.process.wait()
            if status != 0:
                raise self.error(f"failed with exit status {status}")
            return
        raise self.error(f"did not finish within {ENCODER_FINISH_TIMEOUT:g} s")

    async def abort(self) -> None:
        """EOF first (so FFmpeg can close its file), then a short grace, then kill; reap.

        Cancellation:
            Shielded: FFmpeg is always reaped before this returns.
        """
        with trio.CancelScope(shield=True):
            await self._stdin.aclose()
            with trio.move_on_after(ENCODER_ABORT_GRACE):
                await self.process.wait()
            await self.process.terminate(ENCODER_ABORT_GRACE)


@asynccontextmanager
async def open_encoder(
    args: Sequence[str], log: Path, settings: EncoderSettings | None = None
) -> AsyncIterator[Encoder]:
    """Start an encoder; the caller writes images and then calls :meth:`Encoder.finish`.
    ``settings``: those ``args`` were made from (:func:`encoder_args`), which say whether
    it reads timed Matroska (:func:`timed_input`); without them, an image per frame.

    Cancellation:
        If the block exits without a successful :meth:`Encoder.finish` (error, cancellation),
        FFmpeg gets EOF, a short grace period, then SIGKILL, and is reaped.
    """
    try:
        process = spawn(args, name="ffmpeg", stdin=subprocess.PIPE, log_path=log)
    except OSError as exc:
        raise ToolNotFoundError(f"could not start FFmpeg at {args[0]}: {exc}") from exc
    assert process.popen.stdin is not None
    stdin = trio.lowlevel.FdStream(os.dup(process.popen.stdin.fileno()))
    process.popen.stdin.close()
    timed = settings if settings is not None and timed_input(settings) else None
    encoder = Encoder(process, stdin, log, timed)
    try:
        yield encoder
    finally:
        if process.returncode is None:
            await encoder.abort()


async def run_ffmpeg(args: Sequence[str], log: Path, *, what: str) -> None:
    """Run a short FFmpeg job (concat) to completion.

    Raises:
        EncoderError: It failed; the message quotes its log.

    Cancellation:
        FFmpeg is terminated and reaped.
    """
    process = spawn(args, name="ffmpeg", log_path=log)
    try:
        status = await process.wait()
    finally:
        if process.returncode is None:
            await process.terminate(ENCODER_ABORT_GRACE)
    if status != 0:
        raise EncoderError(
            f"FFmpeg failed to {what} (exit status {status}){_status_hint(status, log)}"
        )


#: Seconds ffprobe may take to count a file's frames.
PROBE_TIMEOUT = 60.0


async def count_frames(ffprobe: Path, path: Path) -> int:
    """Video packets (= frames) in ``path``, counted without decoding: in-process for an
    MPEG-TS chunk (see :mod:`helios_render._model.mpegts`) and an MP4 or MOV as FFmpeg
    writes them (:mod:`helios_render._model.mp4`), else by ffprobe, whose answer and
    log are written beside ``path`` and removed.

    Raises:
        EncoderError: ffprobe could not be started, could not read the file, or did not
            answer within :data:`PROBE_TIMEOUT` (it is stopped and reaped then).

    Cancellation:
        ffprobe is terminated and reaped.
    """
    if path.suffix == ".ts" or path.name.endswith(".ts.received"):
        frames = await trio.to_thread.run_sync(count_ts_frames, path)
        if frames is not None:
            return frames
    if path.suffix.lower() in (".mp4", ".mov"):
        frames = await trio.to_thread.run_sync(count_mp4_frames, path)
        if frames is not None:
            return frames
    answer = path.with_name(f".{path.name}.frames.csv")
    log = path.with_name(f".{path.name}.frames.log")
    args = [
        os.fspath(ffprobe), "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", "-o", os.fspath(answer),
        os.fspath(path),
    ]  # fmt: skip
    try:
        try:
            process = spawn(args, name="ffprobe", log_path=log)
        except OSError as exc:
            raise EncoderError(f"could not start ffprobe at {ffprobe}: {exc}") from exc
        try:
            with trio.move_on_after(PROBE_TIMEOUT) as waited:
                status = await process.wait()
        finally:
            if process.returncode is None:
                await process.terminate(ENCODER_ABORT_GRACE)
        if waited.cancelled_caught:
            raise EncoderError(
                f"ffprobe did not answer within {PROBE_TIMEOUT:g} s reading {path.name} (in "
                f"{path.parent}): check that the disk is not stalled, then rerun to resume"
            )
        try:
            lines = answer.read_text("utf-8", "replace").split()
        except OSError:
            lines = []
        # MPEG-TS lists the stream once per program too: the counts agree; take the first.
        text = next((line.strip(",") for line in lines if line.strip(",").isdigit()), "")
        if status != 0 or not text:
            detail = log_tail(log).strip()[-300:]
            raise EncoderError(f"cannot read {path.name} back with ffprobe: {detail or text}")
        return int(text)
    finally:
        answer.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
