"""The ``helios-render`` command line.

Exit codes: 0 done, 1 render failed, 2 bad usage or environment, 130 interrupted (SIGINT),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import errno
import json
import logging
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import trio

from ._cli_batch import add_batch_parser
from ._cli_progress import ProgressPrinter, _silence
from ._exceptions import HeliosError, OptionsError, UsageError
from ._model.codecs import CODECS, PRORES_PROFILES
from ._model.options import DEFAULT_HEIGHT, DEFAULT_WIDTH, RenderOptions
from ._nursery import collapse_group, leaves, task_nursery
from ._output.jobs import describe_kept
from ._render import RenderResult, render, render_still

__all__ = [
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

logger = logging.getLogger(__name__)


class CommandLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: what is wrong, and where to look.

    argparse prints the whole usage block before an error; ours prints
    ``helios-render: error: MESSAGE (did you mean --width? see helios-render render --help)``.
    """

    #: The ``--help`` to point at; :func:`main` sets it to the command's when one was given.
    help_hint: str | None = None

    def error(self, message: str) -> NoReturn:
        hints = [f"did you mean {match}?" for match in _close_matches(self, message)]
        hints.append(f"see {self.help_hint or self.prog} --help")
        self.exit(EXIT_USAGE, f"helios-render: error: {message} ({' '.join(hints)})\n")


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """``parser`` and its subcommands' parsers."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _close_matches(parser: argparse.ArgumentParser, message: str) -> list[str]:
    """Options or commands close to the misspelt ones that ``message`` quotes."""
    known: set[str] = set()
    for each in _parsers(parser):
        for action in each._actions:
            known.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                known.update(action.choices)
    quoted = re.search(r"invalid choice: '([^']*)'", message)
    if quoted:
        words = [quoted.group(1)]
    elif message.startswith("unrecognized arguments:"):
        words = [w for w in message.split(":", 1)[1].split() if w.startswith("-")]
    else:
        return []
    matches: list[str] = []
    for word in words:
        name = word.split("=", 1)[0]
        matches += difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return [match for match in matches if match not in words]


#: Every option's default lives on RenderOptions; the parser leaves absent options out.
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RenderOptions) if f.init}
_ABSENT = argparse.SUPPRESS


def _add_page_options(parser: argparse.ArgumentParser, *, output: bool = True) -> None:
    d = _DEFAULTS
    parser.add_argument("source", help="composition: an HTML file or an http(s) URL")
    if output:
        parser.add_argument("output", help="file to write")
    parser.add_argument("--width", type=int, default=_ABSENT,
                        help=f"frame width (default: the page's helios:size, else "
                        f"{DEFAULT_WIDTH})")
    parser.add_argument("--height", type=int, default=_ABSENT,
                        help=f"frame height (default: the page's helios:size, else "
                        f"{DEFAULT_HEIGHT})")
    parser.add_argument("--fps", default=_ABSENT,
                        help="frames per second, e.g. 30 or 30000/1001 (default: a Helios "
                        "composition's own fps, else 30)")
    parser.add_argument(
        "--props", default=None, help="JSON the page reads as window.__HELIOS_PROPS__"
    )
    parser.add_argument("--strict-props", action="store_true", default=_ABSENT,
                        help="refuse props the composition's props schema does not declare")
    parser.add_argument("--browser", default=_ABSENT, help="path of Chromium (default: find one)")
    parser.add_argument("--timeout", type=float, default=_ABSENT,
                        help="seconds for the page to load and for each frame to become ready "
                        f"(default {d['timeout']:g})")
    parser.add_argument("--seed", type=int, default=_ABSENT, help="seed of Math.random")
    parser.add_argument(
        "--capture",
        default=_ABSENT,
        choices=("auto", "screenshot", "beginframe"),
        help="capture path (default auto: beginFrame when the browser has it, else screenshots)",
    )
    parser.add_argument("--ignore-page-errors", action="store_true", default=_ABSENT,
                        help="log uncaught errors of the page instead of failing")
    parser.add_argument("--root", default=_ABSENT, metavar="DIR",
                        help="folder to serve a local SOURCE from (default: the nearest folder "
                        "holding what the page loads, within its project)")
    parser.add_argument("--allow-missing-assets", action="store_true", default=_ABSENT,
                        help="render even when a script, stylesheet, font, image or media "
                        "fails to load (each failure is logged)")
    parser.add_argument("--scale", type=float, default=_ABSENT, metavar="F",
                        help="device scale factor, 1 to 4: the page lays out at --width x "
                        "--height CSS pixels and the frames are F times larger (default 1)")
    parser.add_argument("--timezone", default=_ABSENT, metavar="ZONE",
                        help=f"IANA time zone the page sees, on every machine (default "
                        f"{d['timezone']})")
    parser.add_argument("--locale", default=_ABSENT, metavar="TAG",
                        help=f"locale the page sees, on every machine (default {d['locale']})")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-vv: DevTools traffic)")


def _crf_help() -> str:
    """Each codec's default and range of ``--crf``, from the codec table."""
    return "; ".join(
        f"{c.name} {c.quality.default} ({c.quality.low}-{c.quality.high})"
        for c in CODECS.values()
        if c.quality is not None
    )


def _preset_help() -> str:
    """Each codec's default ``--preset`` and its choices, from the codec table."""
    families: dict[tuple[str, ...], list[str]] = {}
    for codec in CODECS.values():
        if codec.speed is not None:
            families.setdefault(codec.speed.names, []).append(
                f"{codec.name} {codec.speed.default}"
            )
    return "; ".join(
        f"{', '.join(defaults)} (of {'|'.join(names)})" for names, defaults in families.items()
    )


def build_parser() -> CommandLineParser:
    """The argument parser of ``helios-render``."""
    d = _DEFAULTS
    parser = CommandLineParser(
        prog="helios-render",
        description="Render an HTML/CSS/JS composition to a frame-exact video.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("render", help="render a composition to a video")
    _add_page_options(run)
    length = run.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, default=_ABSENT,
                        help="number of frames to render (default: the page's own length: a "
                        "Helios composition's duration, a helios:duration meta, or the end of "
                        "its last finite animation; see docs/inspect.md)")
    length.add_argument("--duration", default=_ABSENT,
                        help="seconds to render (rounded to whole frames)")
    run.add_argument("--start-frame", type=int, default=_ABSENT, help="first frame (default 0)")
    run.add_argument("--concurrency", type=int, default=_ABSENT,
                     help="parallel workers (default: one per CPU, capped by memory)")
    run.add_argument("--chunk-frames", type=int, default=_ABSENT,
                     help="most frames per chunk (default: at most 60; an interrupted render "
                     "resumes from its finished chunks)")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_true", default=_ABSENT,
                        help="reuse the finished chunks of an interrupted render (the default "
                        "for a local file; needed for a URL)")
    resume.add_argument("--no-resume", dest="resume", action="store_false", default=_ABSENT,
                        help="start over, discarding the finished chunks of an earlier run")
    run.add_argument("--codec", default=_ABSENT, metavar="|".join(CODECS),
                     help=f"output format (default {d['codec']}; see docs/formats.md)")
    run.add_argument("--crf", type=int, default=_ABSENT,
                     help=f"constant quality, lower is better (default per codec: {_crf_help()})")
    run.add_argument("--preset", default=_ABSENT,
                     help=f"encoder speed (default per codec: {_preset_help()})")
    run.add_argument("--prores-profile", default=_ABSENT,
                     metavar="|".join(PRORES_PROFILES),
                     help="ProRes profile (default hq; 4444 with --transparent)")
    run.add_argument("--transparent", action="store_true", default=_ABSENT,
                     help="transparent page background, kept as alpha (vp9, vp8, prores "
                     "4444, png)")
    run.add_argument("--image-format", default=_ABSENT, choices=("jpeg", "png"),
                     help="frame format out of the browser (default jpeg; png, which is "
                     "exact, for gif, png and --transparent)")
    run.add_argument("--quality", type=int, default=_ABSENT,
                     help=f"JPEG quality (default {d['quality']})")
    run.add_argument("--ffmpeg", default=_ABSENT, help="path of FFmpeg (default: find one)")
    run.add_argument("--retries", type=int, default=_ABSENT,
                     help=f"restarts of a chunk after a browser crash (default {d['retries']})")
    sound = run.add_argument_group("audio")
    sound.add_argument("--audio", default=_ABSENT, metavar="FILE",
                       help="an audio file mixed under the page's own sound")
    sound.add_argument("--audio-offset", type=float, default=_ABSENT, metavar="SECONDS",
                       help="where --audio starts in the output (negative cuts its start)")
    sound.add_argument("--audio-volume", type=float, default=_ABSENT, metavar="V",
                       help="gain of --audio (default 1.0)")
    sound.add_argument("--muted", action="store_true", default=_ABSENT,
                       help="write no audio at all")
    sound.add_argument("--audio-codec", default=_ABSENT, choices=("aac", "opus", "pcm"),
                       help="audio codec (default: AAC for MP4/MOV/MKV, Opus for WebM; "
                       "pcm: lossless, MOV/MKV)")
    sound.add_argument("--audio-bitrate", default=_ABSENT, metavar="RATE",
                       help="audio bit rate, e.g. 192k (default: 192k AAC, 128k Opus)")
    run.add_argument("--cluster", default=_ABSENT, metavar="local:N|tcp://HOST:PORT",
                     help="render on a Dask cluster: N worker processes here, or a running "
                     'scheduler (needs: pip install "helios-render[dask]")')
    run.add_argument("--allow-mixed-versions", action="store_true", default=_ABSENT,
                     help="on a cluster, render even when workers have different Chromium or "
                     "FFmpeg versions")
    run.add_argument("--stall-timeout", type=float, default=_ABSENT, metavar="SECONDS",
                     help="on a cluster, seconds a worker may go without progress before its "
                     "chunks go to the others (default 4 times --timeout)")
    _add_tls_options(run)
    run.add_argument("--no-skip-static", dest="skip_static", action="store_false",
                     default=_ABSENT,
                     help="capture every frame, even those that nothing on the page can have "
                     "changed (by default their image is reused: the same frames, faster)")
    run.add_argument("--progress", default="auto", choices=("auto", "bar", "lines", "json", "none"),
                     help="progress display (default auto: a bar on a terminal)")
    preflight = run.add_mutually_exclusive_group()
    preflight.add_argument("--preflight", dest="preflight", action="store_true", default=_ABSENT,
                           help="inspect the page first and print what may make frames differ "
                           "between runs or machines (default: on for --cluster)")
    preflight.add_argument("--no-preflight", dest="preflight", action="store_false",
                           default=_ABSENT, help="do not inspect the page first")
    run.add_argument("--strict", action="store_true", default=_ABSENT,
                     help="fail (exit 1) before rendering when the preflight warns")
    add_batch_parser(commands, run)

    still = commands.add_parser("still", help="render one frame to a PNG")
    _add_page_options(still)
    still.add_argument("--frame", type=int, required=True, help="the frame to render")

    _add_preview_parser(commands)
    inspect = commands.add_parser(
        "inspect", help="load a composition once and report its size, fps, length, props "
        "schema, media, fonts and what may make its frames differ between machines"
    )
    _add_page_options(inspect, output=False)
    inspect.add_argument("--frames", type=int, default=_ABSENT,
                         help="the length to report instead of the page's own")
    inspect.add_argument("--json", action="store_true",
                         help="print one JSON object (documented in docs/inspect.md)")
    inspect.add_argument("--strict", action="store_true",
                         help="also exit 1 when the page has no length of its own (for CI: a "
                              "render of it would need --frames or --duration)")

    doctor = commands.add_parser("doctor", help="check Chromium and FFmpeg and say what is missing")
    doctor.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="check every worker of a Dask cluster instead (tcp://HOST:PORT)")
    _add_tls_options(doctor, default=None)
    return parser


def _add_preview_parser(commands: Any) -> None:
    """``helios-render preview``: the page options of a render, and where to listen."""
    preview = commands.add_parser(
        "preview", help="scrub a composition in a browser, at the frames a render makes"
    )
    _add_page_options(preview, output=False)
    length = preview.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, default=_ABSENT,
                        help="frames of the composition (default: a Helios composition's own)")
    length.add_argument("--duration", default=_ABSENT, help="seconds of the composition")
    preview.add_argument("--output", default=None,
                         help="where Render writes (default: beside SOURCE, as NAME.mp4)")
    preview.add_argument("--port", type=int, default=0,
                         help="port of the control page (default 0: any free port)")
    preview.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1; another one warns)")
    preview.add_argument("--no-open", action="store_true",
                         help="do not open the page in a browser")
    preview.add_argument("--progress", default="auto",
                         choices=("auto", "bar", "lines", "json", "none"),
                         help="json: also say where it listens as a JSON line")


def _add_tls_options(parser: argparse.ArgumentParser, default: Any = _ABSENT) -> None:
    """``--tls-ca-file``, ``--tls-cert``, ``--tls-key``: certificates for a ``tls://``
    cluster."""
    tls = parser.add_argument_group("TLS for a tls:// cluster (see docs/cluster.md)")
    tls.add_argument("--tls-ca-file", default=default, metavar="PEM",
                     help="the CA certificate that signed the scheduler's and workers'")
    tls.add_argument("--tls-cert", default=default, metavar="PEM",
                     help="this client's certificate")
    tls.add_argument("--tls-key", default=default, metavar="PEM",
                     help="this client's private key (unless --tls-cert holds it)")


def _parse_props(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text("utf-8")
        except OSError as exc:
            raise OptionsError(f"cannot read --props file {text[1:]}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise OptionsError(f"--props is not valid JSON: {exc}") from exc


#: Command-line names that are not RenderOptions fields.
_NOT_OPTIONS = frozenset(
    {"command", "verbose", "progress", "frame", "props", "json", "port", "host", "no_open"}
)


def _options_from(args: argparse.Namespace) -> RenderOptions:
    given = {k: v for k, v in vars(args).items() if k not in _NOT_OPTIONS}
    given["props"] = _parse_props(args.props)
    if args.command == "still":
        return RenderOptions(frames=1, image_format="png", **given)
    if args.command == "preview":
        from ._preview.service import check_preview_source, default_output

        check_preview_source(str(args.source))
        if given.get("output") is None:
            given["output"] = default_output(str(args.source))
    if args.command == "inspect":
        given.pop("strict", None)
        return RenderOptions(output=_INSPECT_OUTPUT, **given)
    return RenderOptions(**given)


#: ``inspect`` writes nothing; its options need an output all the same.
_INSPECT_OUTPUT = "inspect.mp4"


def _run_inspect(args: argparse.Namespace) -> int:
    """``helios-render inspect``: 0 nothing to warn about, 1 warnings (with --strict also a
    page without a length of its own), 2 bad usage or a page that cannot load."""
    from ._inspect import inspect_composition

    printer = ProgressPrinter("none", sys.stderr, sys.stdout)
    try:
        options = _options_from(args)
        inspection, terminated = trio.run(_run_cancellable, lambda: inspect_composition(options))
    except BaseException as exc:
        code = _report_failure(exc, printer)
        # A page that cannot load is not a failed inspection: it is what to fix first.
        return EXIT_USAGE if code == EXIT_FAILED else code
    if terminated:
        printer.error("terminated; the browser was stopped", EXIT_TERMINATED)
        return EXIT_TERMINATED
    if args.json:
        print(json.dumps(inspection.to_json(), indent=2, sort_keys=False))
    else:
        print("\n".join(inspection.describe()))
    unbounded = inspection.timing.frames is None
    return EXIT_FAILED if inspection.warnings or (args.strict and unbounded) else EXIT_OK


@dataclasses.dataclass(slots=True)
class _Termination:
    """Whether SIGTERM stopped the job."""

    received: bool = False


async def _watch_sigterm(
    cancel: trio.CancelScope,
    termination: _Termination,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.open_signal_receiver(signal.SIGTERM) as signals:
        # Started only once the handler is installed: a SIGTERM from now on cancels the job
        # (with cleanup) instead of killing the process with the default action.
        task_status.started()
        async for _ in signals:
            termination.received = True
            cancel.cancel()
            return


async def _run_cancellable(job: Callable[[], Any]) -> tuple[Any, bool]:
    """Run ``job``; SIGTERM cancels it (after cleanup) and is reported as ``True``."""
    termination = _Termination()
    result: Any = None
    async with task_nursery() as nursery:
        await nursery.start(_watch_sigterm, nursery.cancel_scope, termination)
        try:
            result = await job()
        finally:
            nursery.cancel_scope.cancel()
    return result, termination.received


async def _serve_preview(options: RenderOptions, args: argparse.Namespace) -> None:
    """Serve the preview until Ctrl+C or SIGTERM; the first line on stdout is its URL."""
    from ._preview import open_preview

    async with open_preview(
        options, host=args.host, port=args.port, open_browser=not args.no_open
    ) as preview:
        print(f"preview: {preview.url}", flush=True)
        if args.progress == "json":
            print(json.dumps({"event": "listening", "url": preview.url}), flush=True)
        await trio.sleep_forever()


def _report_failure(exc: BaseException, printer: ProgressPrinter) -> int:
    """Map what ``trio.run`` raised to one message and an exit code; re-raise the unexpected.

    Ctrl+C can come out of nested nurseries as a group holding KeyboardInterrupt.
    """
    interrupted = isinstance(exc, KeyboardInterrupt) or (
        isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
    )
    if interrupted:
        printer.error("interrupted; every browser and encoder was stopped", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    if isinstance(exc, BaseExceptionGroup):
        # Never a raw group to the user: its first error of ours is the story (rule 5).
        exc = collapse_group(exc, at_top=True)
    if isinstance(exc, HeliosError):
        printer.error(str(exc), exc.exit_code)
        return exc.exit_code
    if isinstance(exc, Exception):
        logger.info("unexpected error", exc_info=exc)
        what = "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in leaves(exc)[:3])
        printer.error(
            f"unexpected {what} (a bug: rerun with -v for the traceback, and report it)",
            EXIT_FAILED,
        )
        return EXIT_FAILED
    raise exc


def _say_kept(options: RenderOptions, error: BaseException | None) -> None:
    """The last line after a render that stopped early: how to resume or discard its work."""
    if isinstance(error, BaseExceptionGroup):
        error = collapse_group(error)
    hint = describe_kept(error, options.target_path)
    if hint:
        print(f"helios-render: {hint}", file=sys.stderr, flush=True)


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        # ``helios-render --help | head -n 1``, ``helios-render doctor | head -n 1``.
        _silence(sys.stdout)
        return EXIT_OK
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        _silence(sys.stdout)
        print(f"helios-render: error: cannot write to stdout: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED


def _main(argv: list[str]) -> int:
    parser = build_parser()
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in ("render", "still", "doctor", "batch", "inspect", "preview"):
        parser.help_hint = f"helios-render {command}"
    args = parser.parse_args(argv)
    if args.command == "doctor":
        from ._doctor import run_cluster_doctor, run_doctor

        if args.cluster is not None:
            return run_cluster_doctor(
                args.cluster, sys.stdout, sys.stderr,
                tls=(args.tls_ca_file, args.tls_cert, args.tls_key),
            )
        return run_doctor(sys.stdout)
    _configure_logging(args.verbose)
    if args.command == "inspect":
        return _run_inspect(args)
    printer = ProgressPrinter(getattr(args, "progress", "none"), sys.stderr, sys.stdout)
    if args.command == "batch":
        return _run_batch(args, printer)
    try:
        options = _options_from(args)
    except UsageError as exc:
        printer.error(str(exc), exc.exit_code)
        return exc.exit_code

    async def job() -> Any:
        if args.command == "still":
            return await render_still(options, args.frame)
        if args.command == "preview":
            return await _serve_preview(options, args)
        return await render(options, on_progress=printer)

    try:
        result, terminated = trio.run(_run_cancellable, job)
    except BaseException as exc:
        code = _report_failure(exc, printer)
        _say_kept(options, exc)
        return code
    if terminated:
        printer.error("terminated; every browser and encoder was stopped", EXIT_TERMINATED)
        _say_kept(options, None)
        return EXIT_TERMINATED
    if isinstance(result, RenderResult):
        printer.done(result)
    elif args.command == "still":
        printer.wrote(result)
    return EXIT_OK


def _run_batch(args: argparse.Namespace, printer: ProgressPrinter) -> int:
    """``helios-render batch``: 0 every row done, 1 a row failed or was invalid, 2 nothing
    rendered (bad usage), 130/143 interrupted (every browser stopped; a rerun resumes)."""
    from ._cli_batch import batch_job, exit_code_of

    try:
        props = _parse_props(args.props)
    except UsageError as exc:
        printer.error(str(exc), exc.exit_code)
        return exc.exit_code
    job, shown = batch_job(args, props, printer)
    try:
        result, terminated = trio.run(_run_cancellable, job)
    except BaseException as exc:
        return _report_failure(exc, printer)
    if terminated:
        printer.error(
            "terminated; every browser and encoder was stopped (run the same command to "
            "resume)", EXIT_TERMINATED,
        )
        return EXIT_TERMINATED
    code = exit_code_of(result)
    shown.done(result, code)
    return code
