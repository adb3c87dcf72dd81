"""The command line's one-line answers to mistyped commands and options, through the real
command line in a sandbox: no browser is started. (Renders through the CLI:
tests/integration/test_cli.py and test_hostile.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from helios_render.cli import _options_from, build_parser

from ..cli_sandbox import Sandbox, assert_one_error_line, open_sandbox
from ..conftest import COMPOSITIONS


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with open_sandbox(tmp_path) as box:
        yield box


# --- 7 and 8. mistyped options and values out of range --------------------------------------


@pytest.mark.parametrize(
    ("args", "expected", "parser_error"),
    [
        (["--frames", "abc"], "argument --frames: invalid int value: 'abc'", True),
        (["--frames", "3", "--widht", "320"], "did you mean --width?", True),
        (["--frames", "3", "--fps"], "argument --fps: expected one argument", True),
        (["--frames", "3", "--fps", "1e-9"], "fps must be from 0.01 to 240", False),
        (["--frames", "3", "--concurrency", "1000"], "concurrency must be from 1 to 64", False),
        (["--frames", "10000000000"], "frames must be at most 10,000,000", False),
        (["--duration", "1e9"], "frames must be at most 10,000,000", False),
    ],
)
def test_mistyped_options_and_values_out_of_range_get_one_line(
    sandbox: Sandbox, args: list[str], expected: str, parser_error: bool
) -> None:
    run = sandbox.run("render", str(COMPOSITIONS / "css_linear.html"), str(sandbox.output), *args)
    assert_one_error_line(run, 2, expected)
    assert run.stderr.count("\n") == 1, run.stderr  # no usage block
    if parser_error:
        assert run.stderr.rstrip().endswith("see helios-render render --help)")
    assert run.seconds < 20
    sandbox.check_left_as_found()


def test_a_misspelt_command_gets_a_close_match(sandbox: Sandbox) -> None:
    run = sandbox.run("rendr", "a.html", "out.mp4")
    assert_one_error_line(run, 2, "invalid choice: 'rendr'", "did you mean render?")
    sandbox.check_left_as_found()


def test_scale_and_no_skip_static_reach_the_options() -> None:
    args = build_parser().parse_args(
        ["render", "a.html", "o.mp4", "--frames", "3", "--scale", "1.5", "--no-skip-static"]
    )
    options = _options_from(args)
    assert (options.exact_scale, options.skip_static) == (Fraction(3, 2), False)
    still = _options_from(build_parser().parse_args(
        ["still", "a.html", "o.png", "--frame", "2", "--scale", "2"]))
    assert still.output_width == 2 * still.frame_width
    assert _options_from(build_parser().parse_args(
        ["render", "a.html", "o.mp4", "--frames", "3"])).skip_static
