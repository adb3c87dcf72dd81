"""What a tool says about itself (its version, FFmpeg's encoders), remembered per executable;
and other answers that cost a browser launch (a composition's own timing), by key.

Asking costs a process each time: about 0.1-0.3 s for ``chromium --version``, ``ffmpeg
-encoders``, before every render. The answers are kept in
``~/.cache/helios-render/tools.json``, keyed by the executable's real path and its inode,
size, modification and change times, so that an upgrade (which writes a new file) asks again.
A shell-script wrapper (Debian's ``/usr/bin/chromium``) is never cached: the binary it starts
may change while the script stays the same.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["cached_facts", "recall", "remember"]

logger = logging.getLogger(__name__)

_memory: dict[str, Any] = {}


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "helios-render" / "tools.json"


def _key(executable: Path, what: str) -> str | None:
    try:
        real = executable.resolve()
        stat = real.stat()
        with real.open("rb") as handle:
            if handle.read(2) == b"#!":
                return None
    except OSError:
        return None
    return (
        f"{what}|{real}|{stat.st_ino}|{stat.st_size}|{stat.st_mtime_ns}|{stat.st_ctime_ns}"
    )


def _read() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


#: Most entries kept (oldest dropped first): compositions' timings accumulate.
MAX_ENTRIES = 500


def recall(key: str) -> Any:
    """What was remembered under ``key``, or ``None``."""
    if key in _memory:
        return _memory[key]
    value = _read().get(key)
    if value is not None:
        _memory[key] = value
    return value


def remember(key: str, value: Any) -> None:
    """Keep ``value`` (JSON-serializable, not ``None``) under ``key``, best effort."""
    _memory[key] = value
    path = _cache_file()
    try:
        entries = _read()
        entries.pop(key, None)
        entries[key] = value
        while len(entries) > MAX_ENTRIES:
            entries.pop(next(iter(entries)))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(entries, indent=1))
        os.replace(temporary, path)
    except OSError as exc:
        logger.debug("could not remember %s: %r", key, exc)


def cached_facts(executable: Path, what: str, ask: Callable[[], Any]) -> Any:
    """``ask()``'s answer (JSON-serializable) about ``executable``, from the cache when the
    same file was asked before; a ``None`` answer is not kept."""
    key = _key(executable, what)
    if key is None:
        return ask()
    known = recall(key)
    if known is not None:
        return known
    answer = ask()
    if answer is not None:
        remember(key, answer)
    return answer
