"""``helios-render doctor``: what was found, which versions, what is missing and how to fix it."""

from __future__ import annotations

from typing import TextIO

import trio

from ._browser import browser_version, find_browser
from ._capture import probe_begin_frame
from ._codecs import CODECS
from ._exceptions import HeliosError
from ._ffmpeg import ffmpeg_encoders, ffmpeg_version, find_ffmpeg

__all__ = ["run_doctor"]


def run_doctor(out: TextIO) -> int:
    """Print a report of the environment; 0 when a render can run, 2 when something is missing."""
    ok = True
    try:
        browser = find_browser()
    except HeliosError as exc:
        ok = False
        print(f"chromium:   MISSING - {exc}", file=out)
    else:
        print(f"chromium:   {browser} ({browser_version(browser)})", file=out)
        try:
            begin_frame = trio.run(probe_begin_frame, browser)
        except HeliosError as exc:
            ok = False
            print(f"            does not start: {exc}", file=out)
        else:
            print(
                "beginFrame: "
                + ("yes (fast deterministic capture)" if begin_frame else
                   "no (screenshots; a chrome-headless-shell build is faster: see "
                   "'Fast capture path' in the README)"),
                file=out,
            )
    try:
        ffmpeg = find_ffmpeg()
    except HeliosError as exc:
        ok = False
        print(f"ffmpeg:     MISSING - {exc}", file=out)
    else:
        print(f"ffmpeg:     {ffmpeg} ({ffmpeg_version(ffmpeg)})", file=out)
        encoders = ffmpeg_encoders(ffmpeg)
        for codec in CODECS.values():
            found = [encoder for encoder in codec.encoders if encoder in encoders]
            if found:
                state = f"yes ({found[0]})"
            else:
                state = f"no (needs {' or '.join(codec.encoders)}: install a full FFmpeg build)"
            alpha = ", alpha" if codec.alpha else ""
            print(f"  --codec {codec.name:<7} {codec.label}{alpha}: {state}", file=out)
        if CODECS["h264"].encoders[0] not in encoders:
            ok = False
    print("ready to render" if ok else "not ready: install what is missing above", file=out)
    return 0 if ok else 2
