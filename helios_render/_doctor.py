"""``helios-render doctor``: what was found, which versions, what is missing and how to fix it."""

from __future__ import annotations

from typing import TextIO

import trio

from ._chromium.browser import browser_version, find_browser, probe_begin_frame
from ._exceptions import HeliosError
from ._ffmpeg.ffmpeg import ffmpeg_encoders, ffmpeg_version, find_ffmpeg
from ._model.codecs import CODECS

__all__ = ["run_cluster_doctor", "run_doctor"]


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


def run_cluster_doctor(
    address: str, out: TextIO, err: TextIO,
    tls: tuple[str | None, str | None, str | None] = (None, None, None),
) -> int:
    """Print each Dask worker's helios-render, Chromium, FFmpeg, beginFrame and resources;
    0 when every worker can render with the same versions, 2 otherwise. ``tls`` is
    ``(ca_file, cert, key)`` for a ``tls://`` scheduler."""
    from ._executors._dask_cluster import (
        ClusterTLS,
        check_versions,
        cluster_report,
        require_tls_settings,
    )

    ca_file, cert, key = tls
    if (ca_file is None) != (cert is None):
        print("helios-render: error: TLS needs --tls-ca-file and --tls-cert together",
              file=err)
        return 2
    try:
        certificates = ClusterTLS(ca_file, cert, key) if ca_file and cert else None
        require_tls_settings(address, certificates)
        facts, scheduler = cluster_report(address, certificates)
    except (HeliosError, ValueError) as exc:
        print(f"helios-render: error: {exc}", file=err)
        return 2
    problems = []
    for worker in sorted(facts):
        item = facts[worker]
        if "unreachable" in item:
            print(f"worker {worker}: NOT ANSWERING - {item['unreachable']}", file=out)
            problems.append(f"worker {worker} {item['unreachable']}")
            continue
        resources = ", ".join(f"{k}={v:g}" for k, v in sorted(item["resources"].items()))
        print(f"worker {worker} on {item['host']} (python {item['python']}):", file=out)
        print(f"  helios-render: {item['helios_render']}", file=out)
        chromium = item.get("chromium") or f"MISSING - {item.get('chromium_error')}"
        ffmpeg = item.get("ffmpeg") or f"MISSING - {item.get('ffmpeg_error')}"
        print(f"  chromium:   {chromium}", file=out)
        if "begin_frame" in item:
            print(f"  beginFrame: {'yes' if item['begin_frame'] else 'no (screenshots)'}", file=out)
        print(f"  ffmpeg:     {ffmpeg}", file=out)
        print(f"  resources:  {resources or 'none (start workers with --resources chromium=1)'}",
              file=out)
        delivery = item.get("delivery")
        arrived = "ok (a bundle sent to it arrives)"
        print(f"  delivery:   {'FAILED - ' + str(delivery) if delivery else arrived}", file=out)
        if delivery:
            problems.append(f"worker {worker}: a bundle sent to it did not arrive ({delivery})")
    _print_ports(scheduler, facts, out)
    try:
        check_versions(facts, allow_mixed=False)
    except HeliosError as exc:
        problems.append(str(exc))
    if problems:
        print(f"not ready: {'; '.join(problems)}", file=out)
        return 2
    print(f"ready to render on {len(facts)} workers", file=out)
    return 0


def _print_ports(scheduler: str, facts: dict[str, dict[str, object]], out: TextIO) -> None:
    """Which connections a render makes, so that a firewall can let them through."""
    print("ports a render needs open:", file=out)
    print(f"  this machine and every worker -> the scheduler {scheduler}", file=out)
    for worker in sorted(facts):
        nanny = facts[worker].get("nanny")
        extra = f" and its nanny {nanny} (--nanny-port)" if nanny else ""
        print(f"  the scheduler -> worker {worker} (--worker-port){extra}", file=out)
    print("  (workers never connect to each other; see 'Ports' in docs/cluster.md)", file=out)
