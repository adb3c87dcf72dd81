"""A Matroska stream of JPEG images with their frame times, for FFmpeg's stdin.

Static frames (issue 23) reuse the image of the frame before. Handed to FFmpeg as images on
a pipe, each repeat was decoded and colour-converted again: about 12 ms of FFmpeg's CPU per
1080p repeat, most of what the frame cost. Written as Matroska blocks with timestamps, a
repeat is simply not written: FFmpeg's ``fps`` filter, after the colour conversion, repeats
the converted picture (a reference, not a copy) for the frame times between two blocks.

Only what FFmpeg's demuxer needs is written: the EBML header, a Segment of unknown size (a
live stream), Info (timestamps in microseconds), one video track (``V_MJPEG``), and one
Cluster per image holding one SimpleBlock.

Pure: bytes in, bytes out (see :class:`~helios_render._ffmpeg.ffmpeg.Encoder`).
"""

from __future__ import annotations

from fractions import Fraction

__all__ = ["TIMESTAMP_SCALE_NS", "block_header", "header", "timestamp_us"]

#: Nanoseconds per timestamp unit: microseconds, so a frame time is off by at most 0.5 us.
TIMESTAMP_SCALE_NS = 1000

_UNKNOWN_SIZE = b"\x01\xff\xff\xff\xff\xff\xff\xff"


def _size(length: int) -> bytes:
    """``length`` as an 8-byte EBML variable-size integer (any size up to 2^56 - 2)."""
    return b"\x01" + length.to_bytes(7, "big")


def _uint(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def _element(element_id: int, payload: bytes) -> bytes:
    name = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    return name + _size(len(payload)) + payload


def header(width: int, height: int, fps: Fraction) -> bytes:
    """The stream's start: EBML header, Segment (open), Info, Tracks."""
    ebml = _element(0x1A45DFA3, b"".join([
        _element(0x4286, _uint(1)),  # EBMLVersion
        _element(0x42F7, _uint(1)),  # EBMLReadVersion
        _element(0x42F2, _uint(4)),  # EBMLMaxIDLength
        _element(0x42F3, _uint(8)),  # EBMLMaxSizeLength
        _element(0x4282, b"matroska"),  # DocType
        _element(0x4287, _uint(4)),  # DocTypeVersion
        _element(0x4285, _uint(2)),  # DocTypeReadVersion
    ]))
    info = _element(0x1549A966, b"".join([
        _element(0x2AD7B1, _uint(TIMESTAMP_SCALE_NS)),  # TimestampScale
        _element(0x4D80, b"helios-render"),  # MuxingApp
        _element(0x5741, b"helios-render"),  # WritingApp
    ]))
    video = _element(0xE0, _element(0xB0, _uint(width)) + _element(0xBA, _uint(height)))
    track = _element(0xAE, b"".join([
        _element(0xD7, _uint(1)),  # TrackNumber
        _element(0x73C5, _uint(1)),  # TrackUID
        _element(0x83, _uint(1)),  # TrackType: video
        _element(0x9C, _uint(0)),  # FlagLacing
        _element(0x23E383, _uint(round(1_000_000_000 / fps))),  # DefaultDuration (ns)
        _element(0x86, b"V_MJPEG"),  # CodecID
        video,
    ]))
    segment = (0x18538067).to_bytes(4, "big") + _UNKNOWN_SIZE
    return ebml + segment + info + _element(0x1654AE6B, track)


def timestamp_us(index: int, fps: Fraction) -> int:
    """Frame ``index``'s time in microseconds (rounded: exact to the frame at any rate)."""
    return round(Fraction(index * 1_000_000) / fps)


def block_header(index: int, fps: Fraction, length: int) -> bytes:
    """What goes before an image of ``length`` bytes: a Cluster at frame ``index``'s time
    holding one key SimpleBlock of that image (the image follows it on the wire)."""
    timestamp = _element(0xE7, _uint(timestamp_us(index, fps)))
    simple = 4 + length  # track 1, relative time 0, flags: keyframe
    block = (0xA3).to_bytes(1, "big") + _size(simple) + b"\x81\x00\x00\x80"
    cluster = (0x1F43B675).to_bytes(4, "big") + _size(len(timestamp) + len(block) + length)
    return cluster + timestamp + block
