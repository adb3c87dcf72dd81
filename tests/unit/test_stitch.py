"""The stitch's pure pieces: the concat list FFmpeg reads."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from helios_render._output.stitch import concat_list


def test_concat_list_quotes_paths_and_gives_exact_durations() -> None:
    text = concat_list(
        [(Path("/tmp/a.ts"), Fraction(12, 30)), (Path("/tmp/it's.ts"), Fraction(11 * 1001, 30000))]
    )
    assert text == (
        "file '/tmp/a.ts'\nduration 0.400000000\n"
        "file '/tmp/it'\\''s.ts'\nduration 0.367033333\n"
    )
    with_options = concat_list([(Path("/tmp/a.ts"), Fraction(1))], [("probesize", "65536")])
    assert with_options == "file '/tmp/a.ts'\noption probesize 65536\nduration 1.000000000\n"
