"""Which font file this machine draws a font family with: Chromium on Linux asks fontconfig,
so ``fc-match`` says the same. A cluster compares these files between its workers for the
families a composition's text asks for, as it compares tool versions."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

__all__ = ["FC_MATCH_TIMEOUT", "font_files"]

#: Seconds ``fc-match`` gets for each family.
FC_MATCH_TIMEOUT = 10.0


def font_files(families: Iterable[str]) -> dict[str, str | None]:
    """``{family: the file fontconfig picks for it}``; ``None`` for each when this machine has
    no fontconfig (``fc-match`` missing) or it would not say."""
    names = list(dict.fromkeys(families))
    tool = shutil.which("fc-match")
    found: dict[str, str | None] = {}
    for family in names:
        if tool is None:
            found[family] = None
            continue
        try:
            result = subprocess.run(
                [tool, "--format=%{file}", family],
                capture_output=True, timeout=FC_MATCH_TIMEOUT, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            found[family] = None
            continue
        text = result.stdout.decode("utf-8", "replace").strip()
        found[family] = text if result.returncode == 0 and text else None
    return found
