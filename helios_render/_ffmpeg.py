"""FFmpeg: find it, build its arguments (pure), feed an encoder on stdin, concatenate, probe.

Chunks are written as MPEG-TS: its 90 kHz timestamps survive the concat demuxer exactly, where
MP4 chunks (edit lists, last-frame durations) put irregular timestamps at every seam. The final
file is one stream-copy concat of the chunks, so a render with one worker and a render with many
take the same path.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import trio

from ._exceptions import EncoderError, ToolNotFoundError
from ._process import ManagedProcess, log_tail, spawn

__all__ = [
    "CODECS",
    "ENCODER_FINISH_TIMEOUT",
    "Encoder",
    "EncoderSettings",
    "concat_args",
    "encoder_args",
    "ffprobe_for",
    "find_ffmpeg",
    "open_encoder",
    "pad_transport_stream",
    "run_ffmpeg",
]

logger = logging.getLogger(__name__)

#: Codec names users give, mapped to FFmpeg encoders.
CODECS: dict[str, str] = {"h264": "libx264", "h265": "libx265", "hevc": "libx265"}
#: Output containers we write, by file suffix.
CONTAINERS: dict[str, str] = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".m4v": "mp4"}
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


def ffmpeg_encoders(ffmpeg: Path) -> set[str]:
    """Names of the encoders this FFmpeg build has."""
    try:
        out = subprocess.run(
            [os.fspath(ffmpeg), "-hide_banner", "-encoders"],
            capture_output=True,
            timeout=20,
            check=True,
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolNotFoundError(f"FFmpeg at {ffmpeg} does not run: {exc}") from exc
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] in "VAS":
            names.add(parts[1])
    return names


def ffmpeg_version(ffmpeg: Path) -> str:
    """First line of ``ffmpeg -version``."""
    try:
        out = subprocess.run(
            [os.fspath(ffmpeg), "-version"], capture_output=True, timeout=20, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return out.decode("utf-8", "replace").splitlines()[0] if out else "unknown"


@dataclass(frozen=True, slots=True)
class EncoderSettings:
    """How every chunk of a render is encoded; identical for all chunks of one render."""

    fps: Fraction
    width: int
    height: int
    codec: str = "h264"
    crf: int = 18
    preset: str = "veryfast"
    image_format: str = "jpeg"


def _quiet(ffmpeg: Path) -> list[str]:
    """FFmpeg with errors only in its log, overwriting its output (a temporary name)."""
    return [os.fspath(ffmpeg), "-hide_banner", "-loglevel", "error", "-y"]


def _rate(fps: Fraction) -> str:
    return f"{fps.numerator}/{fps.denominator}"


def encoder_args(ffmpeg: Path, settings: EncoderSettings, output: Path) -> list[str]:
    """Arguments for an FFmpeg that reads JPEG or PNG images on stdin and writes an MPEG-TS
    chunk of ``settings.codec`` with a keyframe on its first frame."""
    encoder = CODECS[settings.codec]
    args = [
        *_quiet(ffmpeg),
        "-f",
        "image2pipe",
        "-framerate",
        _rate(settings.fps),
        "-c:v",
        "mjpeg" if settings.image_format == "jpeg" else "png",
        "-i",
        "pipe:0",
        "-an",
        "-vf",
        f"scale={settings.width}:{settings.height}:out_color_matrix=bt709:out_range=tv,"
        "format=yuv420p",
        "-c:v",
        encoder,
        "-crf",
        str(settings.crf),
        "-preset",
        settings.preset,
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        "-colorspace",
        "bt709",
        "-color_range",
        "tv",
    ]
    if encoder == "libx265":
        args += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    args += ["-f", "mpegts", "-mpegts_copyts", "1", os.fspath(output)]
    return args


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


def concat_args(ffmpeg: Path, list_file: Path, output: Path) -> list[str]:
    """Arguments that join the chunks named in ``list_file`` by stream copy into ``output``."""
    container = CONTAINERS.get(output.suffix.lower(), "mp4")
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
    if container in ("mp4", "mov"):
        args += ["-movflags", "+faststart"]
    args += ["-f", container, os.fspath(output)]
    return args


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
    """An FFmpeg process fed images on stdin. Create it with :func:`open_encoder`."""

    def __init__(self, process: ManagedProcess, stdin: trio.lowlevel.FdStream, log: Path) -> None:
        self.process = process
        self._stdin = stdin
        self._log = log
        self.frames_written = 0
        self.bytes_written = 0

    def error(self, what: str) -> EncoderError:
        """An :class:`EncoderError` quoting the tail of FFmpeg's log."""
        return EncoderError(f"FFmpeg {what}{_status_hint(self.process.returncode, self._log)}")

    async def write(self, image: bytes) -> None:
        """Hand one image to FFmpeg; waits while FFmpeg is busy (bounded backpressure).

        Raises:
            EncoderError: FFmpeg has exited (its log tail is in the message).
        """
        try:
            await self._stdin.send_all(image)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            status = await self._reap_after_failure()
            raise self.error(f"stopped reading frames (exit status {status})") from exc
        self.frames_written += 1
        self.bytes_written += len(image)

    async def _reap_after_failure(self) -> int | None:
        with trio.move_on_after(ENCODER_ABORT_GRACE):
            return await self.process.wait()
        return None

    async def finish(self) -> None:
        """Send EOF and wait for FFmpeg to write its file.

        Raises:
            EncoderError: FFmpeg failed or did not finish within :data:`ENCODER_FINISH_TIMEOUT`.
        """
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
async def open_encoder(args: Sequence[str], log: Path) -> AsyncIterator[Encoder]:
    """Start an encoder; the caller writes images and then calls :meth:`Encoder.finish`.

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
    encoder = Encoder(process, stdin, log)
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
