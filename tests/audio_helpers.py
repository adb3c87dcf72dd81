"""Tones made at test time, PCM decoded from outputs, and a pure-Python Goertzel."""

from __future__ import annotations

import math
import subprocess
from array import array
from pathlib import Path

RATE = 48000
#: FFmpeg's sine source has an amplitude of 1/8 of full scale.
SINE_AMPLITUDE = 1 / 8


def make_tone(
    path: Path, frequency: float, seconds: float, *, channels: int = 1, video: bool = False
) -> Path:
    """A sine tone of ``frequency`` Hz, made by FFmpeg's ``sine`` source."""
    args = ["ffmpeg", "-v", "error", "-y"]
    if video:
        args += ["-f", "lavfi", "-i", f"color=c=blue:s=64x36:r=30:d={seconds}"]
    args += ["-f", "lavfi", "-i", f"sine=frequency={frequency}:r={RATE}:duration={seconds}"]
    args += ["-af", "pan=stereo|c0=c0|c1=c0"] if channels == 2 else ["-ac", "1"]
    if video:
        args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"]
    subprocess.run([*args, str(path)], check=True)
    return path


def make_silent_video(path: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         f"color=c=red:s=64x36:r=30:d={seconds}", "-c:v", "libx264", "-pix_fmt", "yuv420p",
         str(path)],
        check=True,
    )
    return path


def decode_pcm(path: Path) -> tuple[list[float], list[float]]:
    """The audio of ``path`` as two float channels at 48 kHz."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "2",
         "-ar", str(RATE), "-"],
        capture_output=True, check=True,
    ).stdout
    samples = array("f")
    samples.frombytes(raw)
    return list(samples[0::2]), list(samples[1::2])


def goertzel(samples: list[float], frequency: float, start: int, length: int) -> float:
    """Amplitude of ``frequency`` in ``samples[start:start+length]`` (whole cycles best)."""
    omega = 2 * math.pi * frequency / RATE
    coefficient = 2 * math.cos(omega)
    s1 = s2 = 0.0
    for x in samples[start : start + length]:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / length


def rms(samples: list[float], start: int, length: int) -> float:
    window = samples[start : start + length]
    return math.sqrt(sum(x * x for x in window) / max(1, len(window)))


def onset(samples: list[float], after: int = 0, threshold: float = 0.5 * SINE_AMPLITUDE) -> int:
    """First sample at or after ``after`` whose level reaches ``threshold``."""
    for index in range(after, len(samples)):
        if abs(samples[index]) >= threshold:
            return index
    return -1


def ms(samples: int) -> float:
    return samples * 1000 / RATE


def decode_mono(path: Path) -> list[float]:
    """The first channel of ``path`` as floats, unmixed (``-ac 2`` would lower mono by 3 dB)."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-map", "0:a:0", "-af", "pan=mono|c0=c0",
         "-f", "f32le", "-ar", str(RATE), "-"],
        capture_output=True, check=True,
    ).stdout
    samples = array("f")
    samples.frombytes(raw)
    return list(samples)


def make_two_tones(path: Path, first: float, first_seconds: float, second: float) -> Path:
    """``first`` Hz for ``first_seconds``, then ``second`` Hz for a second, mono."""
    graph = (
        f"sine=f={first}:r={RATE}:d={first_seconds}[a];sine=f={second}:r={RATE}:d=1[b];"
        "[a][b]concat=n=2:v=0:a=1"
    )
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", graph, "-ac", "1", str(path)],
        check=True,
    )
    return path


def streams(path: Path) -> str:
    """ffprobe's compact listing of the streams of ``path``."""
    return subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,sample_rate,"
         "channels", "-of", "compact", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout
