"""Count the video frames of a joined MP4 or MOV in-process, without an ffprobe.

A render checks that its joined video holds exactly its frames before it publishes it. An
ffprobe for that costs about 0.1 s of wall time at the end of every render, after the last
frame (it links all of libav* before it reads a byte). The MP4 muxer writes a sample table
for each track: the sample count of the video track's ``stsz`` (or ``stz2``) box is its
packets, which is what ``ffprobe -count_packets`` counts.

Only the layout FFmpeg's muxer writes for our outputs is read: one video track, not
fragmented, with no edit list or one that shows the media from its start. Anything else
answers ``None`` and the caller asks ffprobe.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["count_mp4_frames"]

#: A moov larger than this is not read in-process (ffprobe reads it).
MAX_MOOV_BYTES = 64 * 1024 * 1024


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:
            if at + 16 > end:
                return
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:
            size = end - at
        if size < header or at + size > end:
            return
        yield kind, at + header, at + size
        at += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, body, stop in _boxes(data, start, end):
        if found == kind:
            return body, stop
    return None


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for kind in kinds:
        if span is None:
            return None
        span = _child(data, span[0], span[1], kind)
    return span


def _read_moov(handle: BinaryIO, size: int) -> bytes | None:
    """The ``moov`` box's body, found by walking the top-level boxes; ``None`` for a
    fragmented file (``moof``) or one without a ``moov``."""
    at = 0
    moov = None
    while at + 8 <= size:
        handle.seek(at)
        header = handle.read(16)
        if len(header) < 8:
            return None
        box, kind = struct.unpack_from(">I4s", header)
        length = 8
        if box == 1:
            if len(header) < 16:
                return None
            (box,) = struct.unpack_from(">Q", header, 8)
            length = 16
        elif box == 0:
            box = size - at
        if box < length:
            return None
        if kind == b"moof":
            return None
        if kind == b"moov":
            if box - length > MAX_MOOV_BYTES:
                return None
            handle.seek(at + length)
            moov = handle.read(box - length)
        at += box
    return moov


def _shows_from_first_frame(moov: bytes, elst: int, stbl: tuple[int, int]) -> bool:
    """Whether the edit list is one edit that starts at the first frame's presentation time
    (its composition offset, with B-frames): then no packet is left out."""
    version = moov[elst]
    (entries,) = struct.unpack_from(">I", moov, elst + 4)
    if version == 1:
        (media,) = struct.unpack_from(">q", moov, elst + 16)
    else:
        (media,) = struct.unpack_from(">i", moov, elst + 12)
    first = 0
    ctts = _child(moov, stbl[0], stbl[1], b"ctts")
    if ctts is not None and struct.unpack_from(">I", moov, ctts[0] + 4)[0] > 0:
        signed = ">i" if moov[ctts[0]] == 1 else ">I"
        (first,) = struct.unpack_from(signed, moov, ctts[0] + 12)
    return bool(entries == 1 and media == first)


def _video_samples(moov: bytes) -> int | None:
    counts = []
    for kind, body, end in _boxes(moov):
        if kind == b"mvex":
            return None  # fragmented
        if kind != b"trak":
            continue
        hdlr = _path(moov, body, end, b"mdia", b"hdlr")
        if hdlr is None or hdlr[1] - hdlr[0] < 12:
            return None
        if moov[hdlr[0] + 8 : hdlr[0] + 12] != b"vide":
            continue
        stbl = _path(moov, body, end, b"mdia", b"minf", b"stbl")
        if stbl is None:
            return None
        elst = _path(moov, body, end, b"edts", b"elst")
        if elst is not None and not _shows_from_first_frame(moov, elst[0], stbl):
            return None
        sizes = _child(moov, stbl[0], stbl[1], b"stsz")
        offset = 8  # version and flags, then the sample size (stsz) or the field size (stz2)
        if sizes is None:
            sizes = _child(moov, stbl[0], stbl[1], b"stz2")
        if sizes is None or sizes[1] - sizes[0] < offset + 4:
            return None
        counts.append(struct.unpack_from(">I", moov, sizes[0] + offset)[0])
    return counts[0] if len(counts) == 1 else None


def count_mp4_frames(path: Path) -> int | None:
    """The video packets of the MP4 or MOV at ``path``, or ``None`` when it is not laid out
    as FFmpeg's muxer writes ours (ask ffprobe then)."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            moov = _read_moov(handle, size)
    except OSError:
        return None
    if moov is None:
        return None
    try:
        return _video_samples(moov)
    except struct.error:
        return None
