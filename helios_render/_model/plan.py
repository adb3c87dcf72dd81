"""The pure plan of a render: frames, chunks, chunk jobs, its sound, and the digest that keys a
job folder.

Nothing here does I/O. :func:`plan_render` turns validated :class:`RenderOptions` and the facts
gathered about the machine (an :class:`Environment`: tool paths and versions, the capture path,
how to reach the source and a digest of its contents, the checked soundtrack) into a
:class:`RenderPlan`, which carries everything the stitch needs too (the tools, the
:class:`~helios_render._model.audio_plan.AudioPlan`), so that it never sees the options.

Contracts:

* Frame counts and times are integers and Fractions; frame *k* is at exactly ``k / fps``.
* Chunks are contiguous, non-empty, cover the range exactly once, and their boundaries depend
  on the frame range and ``chunk_frames`` only, never on the concurrency, so a render resumed
  with another concurrency reuses the finished chunks.
* The digest covers every setting that changes pixels (and the tool versions that could);
  settings that do not (timeout, retries, concurrency, progress, the sound: it is mixed at the
  stitch from each chunk's media records) leave it unchanged.
* A :class:`ChunkJob` is a frozen, picklable value: everything a worker needs, on this machine
  or another, to render its chunk.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from .audio_plan import AudioPlan, Soundtrack
from .codecs import audio_codec_for, image_sequence_target
from .job import Chunk, ChunkJob, EncoderSettings, FolderSource, PageConfig, SourceRef, UrlSource
from .options import RenderOptions

__all__ = [
    "DEFAULT_CHUNK_FRAMES",
    "Environment",
    "RenderPlan",
    "default_chunk_frames",
    "default_concurrency",
    "plan_chunks",
    "plan_render",
]

#: Most frames in a chunk by default: an interruption loses at most this much work.
DEFAULT_CHUNK_FRAMES = 60
#: Short renders are still cut into this many chunks (of at least
#: :data:`MIN_DEFAULT_CHUNK_FRAMES`) by default, so that up to this many workers share them.
DEFAULT_MIN_CHUNKS = 8
#: A chunk costs an encoder start; below this many frames one costs more than it saves.
MIN_DEFAULT_CHUNK_FRAMES = 10
#: Memory one worker (Chromium at 1080p plus FFmpeg) needs, used to cap the default concurrency.
WORKER_MEMORY_BYTES = 1536 * 1024 * 1024
#: Never start more workers than this by default.
MAX_DEFAULT_CONCURRENCY = 8
#: Bumped when the chunk files or the digest's inputs change meaning.
DIGEST_FORMAT = 3


def default_chunk_frames(frames: int) -> int:
    """Chunk size when the user gives none: at most :data:`DEFAULT_CHUNK_FRAMES`, and small
    enough that a short render still has up to :data:`DEFAULT_MIN_CHUNKS` chunks of at least
    :data:`MIN_DEFAULT_CHUNK_FRAMES` frames. Depends on the frame count only."""
    chunks = max(
        -(-frames // DEFAULT_CHUNK_FRAMES),
        min(DEFAULT_MIN_CHUNKS, frames // MIN_DEFAULT_CHUNK_FRAMES),
        1,
    )
    return -(-frames // chunks)


def plan_chunks(start: int, frames: int, chunk_frames: int) -> list[Chunk]:
    """Split ``[start, start + frames)`` into ``ceil(frames / chunk_frames)`` contiguous
    chunks whose sizes differ by at most one frame (the larger first), none larger than
    ``chunk_frames``.
    """
    if frames < 1:
        raise ValueError("frames must be at least 1")
    if chunk_frames < 1:
        raise ValueError("chunk_frames must be at least 1")
    count = -(-frames // chunk_frames)
    base, extra = divmod(frames, count)
    chunks = []
    cursor = start
    for index in range(count):
        size = base + (1 if index < extra else 0)
        chunks.append(Chunk(index, cursor, cursor + size))
        cursor += size
    return chunks


def default_concurrency(cpu_count: int | None = None, memory_bytes: int | None = None) -> int:
    """Workers to use when the user does not say: one per CPU, capped by memory (one per
    :data:`WORKER_MEMORY_BYTES`) and :data:`MAX_DEFAULT_CONCURRENCY`, at least 1.

    A worker alternates between waiting on Chromium (seek, capture) and feeding FFmpeg, so it
    keeps about one CPU busy on average, not two: on a 2-CPU machine 2 workers rendered 1.2x
    faster than 1 (benchmarks/bench_render.py).
    """
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            memory_bytes = WORKER_MEMORY_BYTES * MAX_DEFAULT_CONCURRENCY
    by_memory = memory_bytes // WORKER_MEMORY_BYTES
    return int(max(1, min(cpus, by_memory, MAX_DEFAULT_CONCURRENCY)))


def encoder_threads(concurrency: int, cpu_count: int | None = None) -> int:
    """Threads for each worker's encoder when ``concurrency`` workers share this machine:
    its share of the CPUs, at least 1.

    Chromium and the other workers' encoders want the same CPUs; x264 left to pick for
    itself starts threads for every CPU in each FFmpeg. On 2 CPUs, one thread per encoder
    with 2 workers used 16 % less encoder CPU than x264's own choice for the same frames,
    and two with 1 worker 8 % less, and finished sooner.
    """
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, cpus // max(1, concurrency))


@dataclass(frozen=True, slots=True)
class Environment:
    """What :func:`plan_render` needs to know about the machine, gathered beforehand."""

    browser: Path
    browser_version: str
    ffmpeg: Path
    ffmpeg_version: str
    #: Whether frames are captured with ``HeadlessExperimental.beginFrame``.
    begin_frame: bool
    source: SourceRef
    #: Digest of the source's contents; ``None`` when they cannot be known (a URL).
    source_digest: str | None
    default_concurrency: int = 1
    #: The FFmpeg encoder chosen for the codec (the first of its encoders this FFmpeg has);
    #: ``None`` means the codec's first.
    video_encoder: str | None = None
    #: The ffprobe beside FFmpeg; ``None`` when not looked for (a still needs none).
    ffprobe: Path | None = None
    #: ``--audio``, its file found (``None`` without one).
    soundtrack: Soundtrack | None = None
    #: The font families the composition's text asks for, when the preflight ran (else none).
    font_families: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RenderPlan:
    """A whole render, decided before anything runs."""

    output: Path
    fps: Fraction
    start_frame: int
    frames: int
    chunks: tuple[Chunk, ...]
    jobs: tuple[ChunkJob, ...]
    concurrency: int
    retries: int
    digest: str
    #: Whether a job folder with the same digest may be resumed without being asked (the
    #: source's contents are part of the digest).
    resumable: bool
    width: int
    height: int
    #: The FFmpeg that encodes, joins and mixes.
    ffmpeg: Path
    #: The ffprobe that counts frames; ``None`` in a plan for a still.
    ffprobe: Path | None
    #: The output's sound.
    audio: AudioPlan
    #: The codec's name in the codec table (aliases resolved).
    codec: str = "h264"
    #: For an image sequence: the file-name pattern of the frames inside ``output`` (a
    #: folder); ``None`` for a video file.
    frame_pattern: str | None = None

    @property
    def duration(self) -> Fraction:
        """Exact length of the output in seconds."""
        return Fraction(self.frames) / self.fps


def _digest(options: RenderOptions, env: Environment, chunk_frames: int) -> str:
    from .._version import __version__

    source: object = (
        {"url": env.source.url}
        if isinstance(env.source, UrlSource)
        else {"entry": env.source.entry}
    )
    settings = {
        "format": DIGEST_FORMAT,
        "helios_render": __version__,
        "source": source,
        "source_digest": env.source_digest,
        "width": options.frame_width,
        "height": options.frame_height,
        "fps": str(options.exact_fps),
        "start_frame": options.start_frame,
        "frames": options.frame_count,
        "chunk_frames": chunk_frames,
        "codec": options.codec_entry.name,
        "encoder": env.video_encoder or options.codec_entry.encoders[0],
        "crf": options.effective_crf,
        "preset": options.effective_preset,
        "prores_profile": options.effective_prores_profile,
        "transparent": options.transparent,
        "image_format": options.effective_image_format,
        "quality": options.quality,
        "props": options.props,
        "seed": options.seed,
        "timezone": options.timezone,
        "locale": options.locale,
        "begin_frame": env.begin_frame,
        "browser": env.browser_version,
        "ffmpeg": env.ffmpeg_version,
        "output_suffix": options.target_path.suffix.lower(),
    }
    if options.exact_scale != 1:
        settings["scale"] = str(options.exact_scale)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def plan_render(options: RenderOptions, env: Environment) -> RenderPlan:
    """The plan of a render: chunks, their jobs, the worker count, the job digest and the
    sound."""
    frames = options.frame_count
    chunk_frames = options.chunk_frames or default_chunk_frames(frames)
    chunks = plan_chunks(options.start_frame, frames, chunk_frames)
    digest = _digest(options, env, chunk_frames)
    page = PageConfig(
        url="",
        width=options.frame_width,
        height=options.frame_height,
        fps=options.exact_fps,
        props=options.props,
        seed=options.seed,
        timeout=options.timeout,
        ignore_page_errors=options.ignore_page_errors,
        transparent=options.transparent,
        allow_missing_assets=options.allow_missing_assets,
        scale=float(options.exact_scale),
        skip_static=options.skip_static,
        timezone=options.timezone,
        locale=options.locale,
        font_families=env.font_families,
    )
    codec = options.codec_entry
    encoder = EncoderSettings(
        fps=options.exact_fps,
        width=options.output_width,
        height=options.output_height,
        codec=codec.name,
        crf=options.effective_crf,
        preset=options.effective_preset,
        image_format=options.effective_image_format,
        encoder=env.video_encoder or codec.encoders[0],
        transparent=options.transparent,
        prores_profile=options.effective_prores_profile,
    )
    frame_pattern = None
    if codec.finish == "png":
        frame_pattern = image_sequence_target(options.output_path)[1]
    jobs = tuple(
        ChunkJob(
            chunk=chunk,
            source=env.source,
            page=page,
            encoder=encoder,
            quality=options.quality,
            begin_frame=env.begin_frame,
            digest=digest,
            browser=os.fspath(env.browser),
            ffmpeg=os.fspath(env.ffmpeg),
        )
        for chunk in chunks
    )
    concurrency = options.concurrency or env.default_concurrency
    audio = AudioPlan(
        codec=audio_codec_for(options.target_path.suffix, options.audio_codec),
        bitrate=options.audio_bitrate,
        soundtrack=env.soundtrack,
        muted=options.muted,
        media_root=env.source.root if isinstance(env.source, FolderSource) else None,
    )
    return RenderPlan(
        output=options.target_path,
        fps=options.exact_fps,
        start_frame=options.start_frame,
        frames=frames,
        chunks=tuple(chunks),
        jobs=jobs,
        concurrency=max(1, min(concurrency, len(chunks))),
        retries=options.retries,
        digest=digest,
        resumable=env.source_digest is not None,
        width=options.output_width,
        height=options.output_height,
        ffmpeg=env.ffmpeg,
        ffprobe=env.ffprobe,
        audio=audio,
        codec=codec.name,
        frame_pattern=frame_pattern,
    )
