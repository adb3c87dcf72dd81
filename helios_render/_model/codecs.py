"""The codec table: what each ``--codec`` is made of. Pure data and pure lookups, no I/O.

For every codec: the FFmpeg encoders in order of preference, the pixel formats (opaque and
with alpha), the *chunk container* whose files join by stream copy, the output suffixes it
allows, its quality and speed options with their ranges and defaults, and how the joined
chunks become the output (``finish``).

Measured on FFmpeg 5.1 (Debian 12), 320x180, chunks of 10 frames joined with exact
``duration`` lines (see ``docs/formats.md``):

* H.264/H.265 in MPEG-TS join exactly (90 kHz timestamps). ``-tag:v hvc1`` does nothing on
  the MPEG-TS chunk encoder; it must be given to the concat into MP4/MOV.
* VP8/VP9 in WebM join exactly (to the millisecond of the container) and keep alpha
  (``alpha_mode`` and the BlockAdditional side data survive the stream copy).
* ProRes in MOV joins exactly with the ``duration`` lines. ``prores_ks`` ignores
  ``-colorspace``: the frames themselves are tagged (``setparams``).
* AV1 is not read back from MPEG-TS by FFmpeg 5.1: its chunks are Matroska.
* GIF and PNG sequences cannot be concatenated as such: chunks are the browser's PNG frames
  stream-copied into Matroska (no encode, lossless); the output is made after the join.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = [
    "AUDIO_CODECS",
    "CODECS",
    "CODEC_ALIASES",
    "CONTAINER_AUDIO",
    "DEFAULT_BITRATES",
    "DEFAULT_PRORES_PROFILE",
    "OUTPUT_MUXERS",
    "PRORES_ALPHA_PROFILES",
    "PRORES_PROFILES",
    "X26X_PRESETS",
    "Codec",
    "Quality",
    "Speed",
    "alpha_codecs",
    "audio_codec_for",
    "codec_named",
    "image_sequence_target",
    "speed_args",
]

Finish = Literal["concat", "gif", "png"]

#: x264 and x265 presets, fastest first.
X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)

#: ProRes profiles (``prores_ks -profile:v``) by name; the last two carry alpha.
PRORES_PROFILES: Mapping[str, int] = {
    "proxy": 0,
    "lt": 1,
    "standard": 2,
    "hq": 3,
    "4444": 4,
    "4444xq": 5,
}
PRORES_ALPHA_PROFILES = ("4444", "4444xq")
DEFAULT_PRORES_PROFILE = "hq"

#: FFmpeg muxer for each output suffix.
OUTPUT_MUXERS: Mapping[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".gif": "gif",
}


@dataclass(frozen=True, slots=True)
class Quality:
    """A constant-quality option: ``flag`` takes a whole number from ``low`` to ``high``
    (lower is better), ``default`` when the user gives none; ``extra`` follows it (libvpx
    and libaom need ``-b:v 0`` for pure constant quality)."""

    flag: str
    low: int
    high: int
    default: int
    extra: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Speed:
    """A speed option: preset names, fastest first, and the arguments each means for each
    encoder of the codec."""

    names: tuple[str, ...]
    default: str
    #: ``args[encoder][name]``: arguments for ``name`` with ``encoder``.
    args: Mapping[str, Mapping[str, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class Codec:
    """One ``--codec``."""

    name: str
    #: What it is, for ``doctor`` and errors.
    label: str
    #: FFmpeg encoders in order of preference; the first this FFmpeg has is used. For
    #: ``gif`` the encoder of the finishing step (chunks are stream copies).
    encoders: tuple[str, ...]
    #: Pixel format of opaque output.
    pix_fmt: str
    #: Pixel format with alpha; ``None``: the codec cannot carry alpha.
    alpha_pix_fmt: str | None
    #: FFmpeg muxer and file suffix of chunk files.
    chunk_format: str
    chunk_suffix: str
    #: Output suffixes allowed (empty for an image sequence: a folder or a pattern).
    suffixes: tuple[str, ...]
    #: How the joined chunks become the output.
    finish: Finish = "concat"
    quality: Quality | None = None
    speed: Speed | None = None
    #: The chunk encoder is a stream copy of the browser's PNGs (no pixel format conversion).
    copies_png: bool = False
    #: Extra encoder arguments when encoding with alpha.
    alpha_args: tuple[str, ...] = ()
    #: Extra encoder arguments, always.
    extra_args: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: MP4/MOV tag given on the concat (not on the chunk encoder, where it does nothing).
    mp4_tag: str | None = None

    @property
    def alpha(self) -> bool:
        """Whether the codec can carry an alpha channel."""
        return self.alpha_pix_fmt is not None

    @property
    def default_suffix(self) -> str:
        """The suffix to suggest for this codec."""
        return self.suffixes[0] if self.suffixes else "/"


_X26X_SPEED = {name: ("-preset", name) for name in X26X_PRESETS}
_VPX_SPEED = {
    "realtime": ("-deadline", "realtime", "-cpu-used", "8"),
    "good": ("-deadline", "good", "-cpu-used", "4"),
    "best": ("-deadline", "good", "-cpu-used", "1"),
}

CODECS: Mapping[str, Codec] = {
    codec.name: codec
    for codec in (
        Codec(
            name="h264",
            label="H.264",
            encoders=("libx264",),
            pix_fmt="yuv420p",
            alpha_pix_fmt=None,
            chunk_format="mpegts",
            chunk_suffix=".ts",
            suffixes=(".mp4", ".mov", ".mkv", ".m4v"),
            quality=Quality("-crf", 0, 51, 18),
            speed=Speed(X26X_PRESETS, "veryfast", {"libx264": _X26X_SPEED}),
        ),
        Codec(
            name="h265",
            label="H.265/HEVC",
            encoders=("libx265",),
            pix_fmt="yuv420p",
            alpha_pix_fmt=None,
            chunk_format="mpegts",
            chunk_suffix=".ts",
            suffixes=(".mp4", ".mov", ".mkv"),
            quality=Quality("-crf", 0, 51, 23),
            speed=Speed(X26X_PRESETS, "fast", {"libx265": _X26X_SPEED}),
            extra_args={"libx265": ("-x265-params", "log-level=error")},
            mp4_tag="hvc1",
        ),
        Codec(
            name="vp9",
            label="VP9",
            encoders=("libvpx-vp9",),
            pix_fmt="yuv420p",
            alpha_pix_fmt="yuva420p",
            chunk_format="webm",
            chunk_suffix=".webm",
            suffixes=(".webm", ".mkv"),
            quality=Quality("-crf", 0, 63, 30, ("-b:v", "0")),
            speed=Speed(("realtime", "good", "best"), "good", {"libvpx-vp9": _VPX_SPEED}),
            alpha_args=("-auto-alt-ref", "0"),
            extra_args={"libvpx-vp9": ("-row-mt", "1")},
        ),
        Codec(
            name="vp8",
            label="VP8",
            encoders=("libvpx",),
            pix_fmt="yuv420p",
            alpha_pix_fmt="yuva420p",
            chunk_format="webm",
            chunk_suffix=".webm",
            suffixes=(".webm", ".mkv"),
            # VP8's constant quality needs a bitrate ceiling; a high one leaves crf in charge.
            quality=Quality("-crf", 4, 63, 10, ("-b:v", "50M")),
            speed=Speed(("realtime", "good", "best"), "good", {"libvpx": _VPX_SPEED}),
            alpha_args=("-auto-alt-ref", "0"),
        ),
        Codec(
            name="prores",
            label="Apple ProRes",
            encoders=("prores_ks",),
            pix_fmt="yuv422p10le",
            alpha_pix_fmt="yuva444p10le",
            chunk_format="mov",
            chunk_suffix=".mov",
            suffixes=(".mov",),
            extra_args={"prores_ks": ("-vendor", "apl0")},
        ),
        Codec(
            name="av1",
            label="AV1",
            encoders=("libsvtav1", "libaom-av1"),
            pix_fmt="yuv420p",
            alpha_pix_fmt=None,
            chunk_format="matroska",
            chunk_suffix=".mkv",
            suffixes=(".mkv", ".webm"),
            quality=Quality("-crf", 0, 63, 35),
            speed=Speed(
                ("fast", "medium", "slow"),
                "medium",
                {
                    "libsvtav1": {
                        "fast": ("-preset", "10"),
                        "medium": ("-preset", "8"),
                        "slow": ("-preset", "5"),
                    },
                    "libaom-av1": {
                        "fast": ("-usage", "realtime", "-cpu-used", "8"),
                        "medium": ("-cpu-used", "6"),
                        "slow": ("-cpu-used", "4"),
                    },
                },
            ),
            extra_args={"libaom-av1": ("-b:v", "0", "-row-mt", "1")},
        ),
        Codec(
            name="gif",
            label="animated GIF",
            encoders=("gif",),
            pix_fmt="rgb24",
            alpha_pix_fmt=None,
            chunk_format="matroska",
            chunk_suffix=".mkv",
            suffixes=(".gif",),
            finish="gif",
            copies_png=True,
        ),
        Codec(
            name="png",
            label="PNG image sequence",
            encoders=("png",),
            pix_fmt="rgb24",
            alpha_pix_fmt="rgba",
            chunk_format="matroska",
            chunk_suffix=".mkv",
            suffixes=(),
            finish="png",
            copies_png=True,
        ),
    )
}

#: Other names accepted for a codec.
CODEC_ALIASES: Mapping[str, str] = {"hevc": "h265"}


def codec_named(name: str) -> Codec | None:
    """The codec called ``name`` (or one of its aliases), else ``None``."""
    return CODECS.get(CODEC_ALIASES.get(name, name))


def alpha_codecs() -> tuple[str, ...]:
    """Names of the codecs that can carry alpha, in table order."""
    return tuple(name for name, codec in CODECS.items() if codec.alpha)


def speed_args(codec: Codec, encoder: str, preset: str) -> tuple[str, ...]:
    """The arguments of ``preset`` for ``encoder`` (none for a codec without presets)."""
    if codec.speed is None:
        return ()
    return tuple(codec.speed.args[encoder][preset])


_PATTERN = re.compile(r"%0?(\d*)d")


def image_sequence_target(output: Path) -> tuple[Path, str]:
    """The folder and file-name pattern of an image sequence written to ``output``: a
    folder (frames ``00000.png``, ...) or a pattern with one ``%05d`` in its file name
    (``frames/shot-%05d.png``).

    Raises:
        ValueError: A pattern that is not one ``%d`` (``%05d``) in a ``.png`` name, or a
            ``%`` in a folder name.
    """
    name = output.name
    if "%" in os.fspath(output.parent):
        raise ValueError(f"{output}: only the file name may hold a %05d pattern")
    if "%" not in name:
        if output.suffix.lower() == ".png":
            raise ValueError(
                f"{name}: --codec png writes a folder of frames; give a folder "
                f"({output.with_suffix('').name}) or a pattern ({output.stem}-%05d.png)"
            )
        return output, "%05d.png"
    if len(_PATTERN.findall(name)) != 1 or name.count("%") != 1:
        raise ValueError(
            f"{name}: an image sequence pattern holds exactly one %d, like frame-%05d.png"
        )
    if not name.lower().endswith(".png"):
        raise ValueError(f"{name}: the frames of --codec png are .png files (frame-%05d.png)")
    return output.parent, name


#: Audio codecs users give, mapped to FFmpeg encoders, and their default bit rates.
#: ``pcm`` (16-bit, lossless) is for editing and for exact tests.
AUDIO_CODECS: dict[str, str] = {"aac": "aac", "opus": "libopus", "pcm": "pcm_s16le"}


DEFAULT_BITRATES: dict[str, str] = {"aac": "192k", "opus": "128k"}


#: Which audio codecs each output container takes; the first is its default.
CONTAINER_AUDIO: dict[str, tuple[str, ...]] = {
    ".mp4": ("aac", "opus"),
    ".m4v": ("aac",),
    ".mov": ("aac", "pcm"),
    ".mkv": ("aac", "opus", "pcm"),
    ".webm": ("opus",),
}


def audio_codec_for(suffix: str, requested: str | None = None) -> str | None:
    """The audio codec for an output of this suffix: ``requested`` if the container takes it,
    else its default; ``None`` for outputs without sound (GIF, image sequences).

    Raises:
        ValueError: ``requested`` is unknown, or the container cannot hold it.
    """
    allowed = CONTAINER_AUDIO.get(suffix.lower())
    if requested is not None and requested not in AUDIO_CODECS:
        raise ValueError(
            f"unknown audio codec {requested!r}: choose one of {', '.join(AUDIO_CODECS)}"
        )
    if allowed is None:
        return None
    if requested is None:
        return allowed[0]
    if requested not in allowed:
        raise ValueError(
            f"a {suffix} file cannot hold {requested} audio: use {' or '.join(allowed)}"
        )
    return requested
