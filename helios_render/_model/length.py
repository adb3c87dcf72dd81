"""The length, frame rate and size of a composition, from what the user gave and what the page
says of itself: pure rules, no I/O.

The page is asked once (``__helios.length()`` in ``js/runtime.js``, through
:func:`helios_render._timing.read_page_facts`) and answers with :class:`PageFacts`. Each of
size, fps and frames is then taken from the first that has it:

* size: the user (``--width``/``--height``), ``<meta name="helios:size" content="1280x720">``,
  the default 1920x1080;
* fps: the user, a Helios composition's own fps, ``<meta name="helios:fps">``, the default 30;
* frames: the user (``--frames``/``--duration``), a Helios composition's own duration,
  ``<meta name="helios:duration" content="4.5s">``, the end of the last finite animation the
  page started by the end of its load (``ceil(end * fps)`` frames, so the last frame is the
  first at or after the end), else nothing: an animation that never ends, a bare
  ``requestAnimationFrame`` loop or a page that animates nothing has no length of its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Literal

from .._exceptions import OptionsError
from .options import RenderOptions
from .time import frames_for_duration, parse_fps

__all__ = [
    "AnimationEnd",
    "PageFacts",
    "ResolvedTiming",
    "Source",
    "parse_declared_duration",
    "parse_declared_size",
    "resolve_timing",
    "with_timing",
]

#: Where a value came from, as ``inspect --json`` names it.
Source = Literal["user", "declared", "helios", "animations", "default"]

DEFAULT_FPS = Fraction(30)
DEFAULT_SIZE = (1920, 1080)
#: Ends closer than this to a frame boundary (ms) count as on it: float noise of the page.
_END_DENOMINATOR = 1000
ASK_FOR_LENGTH = "give --frames N or --duration SECONDS"


@dataclass(frozen=True, slots=True)
class AnimationEnd:
    """One animation the page started by the end of its load, and when it ends (virtual ms
    from frame 0); ``end`` is ``None`` for one that never ends."""

    kind: str
    name: str
    end: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "end": self.end}


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What a loaded page says of its own timing (see ``__helios.length()``)."""

    #: A Helios composition's own fps and duration (seconds), each ``None`` when not said.
    helios_fps: float | None = None
    helios_duration: float | None = None
    #: The ``content`` of ``<meta name="helios:duration|fps|size">``, as written.
    declared_duration: str | None = None
    declared_fps: str | None = None
    declared_size: str | None = None
    #: Finite animations, the last to end first (at most 20), and how many there were.
    ends: tuple[AnimationEnd, ...] = ()
    count: int = 0
    #: Animations that never end.
    unbounded: tuple[AnimationEnd, ...] = ()
    #: Whether a ``requestAnimationFrame`` callback was waiting at the end of the load.
    raf: bool = False

    @classmethod
    def from_page(
        cls, length: Any, helios_fps: float | None = None, helios_duration: float | None = None
    ) -> PageFacts:
        """The facts from the runtime's answer (a JSON value; anything unexpected is left out)."""
        data = length if isinstance(length, dict) else {}
        raw = data.get("declared")
        declared: dict[str, Any] = raw if isinstance(raw, dict) else {}

        def text(value: Any) -> str | None:
            return value.strip() if isinstance(value, str) else None

        def entries(values: Any) -> tuple[AnimationEnd, ...]:
            out = []
            for item in values if isinstance(values, list) else []:
                if not isinstance(item, dict):
                    continue
                end = item.get("end")
                out.append(
                    AnimationEnd(
                        str(item.get("kind", "")),
                        str(item.get("name", "")),
                        float(end) if isinstance(end, int | float) and math.isfinite(end) else None,
                    )
                )
            return tuple(out)

        ends = tuple(e for e in entries(data.get("found")) if e.end is not None)
        count = data.get("count")
        return cls(
            helios_fps=helios_fps,
            helios_duration=helios_duration,
            declared_duration=text(declared.get("duration")),
            declared_fps=text(declared.get("fps")),
            declared_size=text(declared.get("size")),
            ends=tuple(sorted(ends, key=lambda e: -(e.end or 0.0))),
            count=count if isinstance(count, int) else len(ends),
            unbounded=entries(data.get("unbounded")),
            raf=data.get("raf") is True,
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON value that :meth:`from_json` reads back (for the tool cache)."""
        return {
            "helios_fps": self.helios_fps,
            "helios_duration": self.helios_duration,
            "declared": {
                "duration": self.declared_duration,
                "fps": self.declared_fps,
                "size": self.declared_size,
            },
            "found": [e.to_json() for e in self.ends],
            "count": self.count,
            "unbounded": [e.to_json() for e in self.unbounded],
            "raf": self.raf,
        }

    @classmethod
    def from_json(cls, data: Any) -> PageFacts:
        data = data if isinstance(data, dict) else {}
        fps, duration = data.get("helios_fps"), data.get("helios_duration")
        return cls.from_page(
            data,
            float(fps) if isinstance(fps, int | float) else None,
            float(duration) if isinstance(duration, int | float) else None,
        )

    @property
    def last(self) -> AnimationEnd | None:
        """The finite animation that ends last."""
        return self.ends[0] if self.ends else None


@dataclass(frozen=True, slots=True)
class ResolvedTiming:
    """Size, fps and frames of a composition, and where each came from."""

    width: int
    height: int
    fps: Fraction
    #: ``None`` when the length is unknown (see :attr:`problem`).
    frames: int | None
    sources: dict[str, Source | None] = field(default_factory=dict)
    #: Why there is no length: one line naming the animation, asking for one.
    problem: str | None = None
    #: The animation whose end gave the length (source ``animations``).
    decided_by: AnimationEnd | None = None

    @property
    def duration(self) -> Fraction | None:
        """Seconds: ``frames / fps``."""
        return None if self.frames is None else Fraction(self.frames) / self.fps


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|f|frames?)?", re.IGNORECASE)
_SIZE = re.compile(r"(\d+)\s*[x,\s]\s*(\d+)", re.IGNORECASE)


def _meta(name: str, content: str) -> str:
    return f'<meta name="helios:{name}" content="{content}">'


def parse_declared_duration(text: str, fps: Fraction) -> int:
    """Frames in a page's ``helios:duration``: ``4.5s`` or ``4.5`` (seconds, rounded to whole
    frames as ``--duration`` is), ``1500ms``, ``90f`` or ``90 frames``.

    Raises:
        OptionsError: Not a positive duration.
    """
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise OptionsError(
            f"the page's {_meta('duration', text)} is not a duration: write e.g. 4.5s, "
            "1500ms or 90f"
        )
    number, unit = Fraction(match.group(1)), (match.group(2) or "s").lower()
    if unit.startswith("f"):
        if number.denominator != 1:
            raise OptionsError(f"the page's {_meta('duration', text)}: frames are whole")
        frames = int(number)
    else:
        frames = frames_for_duration(number / 1000 if unit == "ms" else number, fps)
    if frames < 1:
        raise OptionsError(f"the page's {_meta('duration', text)} is shorter than one frame")
    return frames


def parse_declared_size(text: str) -> tuple[int, int]:
    """``(width, height)`` of a page's ``helios:size`` (``1280x720``).

    Raises:
        OptionsError: Not two whole numbers.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise OptionsError(f"the page's {_meta('size', text)} is not a size: write e.g. 1280x720")
    return int(match.group(1)), int(match.group(2))


def _declared_fps(text: str) -> Fraction:
    try:
        return parse_fps(text)
    except ValueError as exc:
        raise OptionsError(f"the page's {_meta('fps', text)}: {exc}") from exc


def _animation_frames(facts: PageFacts, fps: Fraction) -> tuple[int | None, str | None]:
    """Frames to the end of the last finite animation, or ``None`` and why not."""
    if facts.unbounded:
        first = facts.unbounded[0]
        more = f" (and {len(facts.unbounded) - 1} more)" if len(facts.unbounded) > 1 else ""
        return None, (
            f"the page's {first.name} never ends{more}, so the page has no length of its "
            f"own: {ASK_FOR_LENGTH}"
        )
    last = facts.last
    if last is None or last.end is None or last.end <= 0:
        if facts.raf:
            return None, (
                "the page runs a requestAnimationFrame loop and no finite animation, so it has "
                f"no length of its own: {ASK_FOR_LENGTH}, or declare it with "
                '<meta name="helios:duration" content="4.5s">'
            )
        return None, (
            "the page starts no animation by the end of its load, so it has no length of its "
            f'own: {ASK_FOR_LENGTH}, or declare it with <meta name="helios:duration" '
            'content="4.5s">'
        )
    seconds = Fraction(last.end).limit_denominator(_END_DENOMINATOR) / 1000
    return max(1, math.ceil(seconds * fps)), None


def resolve_timing(
    facts: PageFacts,
    *,
    width: int | None = None,
    height: int | None = None,
    fps: Fraction | None = None,
    frames: int | None = None,
) -> ResolvedTiming:
    """Size, fps and frames: what the user gave (each ``None`` when not), else what the page
    says (see the module's docstring for the order).

    Raises:
        OptionsError: A declaration that cannot be read.
    """
    sources: dict[str, Source | None] = {}
    if width is not None or height is not None:
        size = (width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1])
        sources["size"] = "user"
    elif facts.declared_size:
        size = parse_declared_size(facts.declared_size)
        sources["size"] = "declared"
    else:
        size = DEFAULT_SIZE
        sources["size"] = "default"
    if fps is not None:
        rate, sources["fps"] = fps, "user"
    elif facts.helios_fps is not None:
        rate, sources["fps"] = parse_fps(facts.helios_fps), "helios"
    elif facts.declared_fps:
        rate, sources["fps"] = _declared_fps(facts.declared_fps), "declared"
    else:
        rate, sources["fps"] = DEFAULT_FPS, "default"
    problem = None
    decided_by = None
    if frames is not None:
        count: int | None = frames
        sources["frames"] = "user"
    elif facts.helios_duration is not None:
        seconds = Fraction(facts.helios_duration).limit_denominator(1_000_000)
        count, sources["frames"] = max(1, frames_for_duration(seconds, rate)), "helios"
    elif facts.declared_duration:
        count = parse_declared_duration(facts.declared_duration, rate)
        sources["frames"] = "declared"
    else:
        count, problem = _animation_frames(facts, rate)
        sources["frames"] = "animations" if count is not None else None
        decided_by = facts.last if count is not None else None
    return ResolvedTiming(
        width=size[0],
        height=size[1],
        fps=rate,
        frames=count,
        sources=sources,
        problem=problem,
        decided_by=decided_by,
    )


def with_timing(options: RenderOptions, timing: ResolvedTiming) -> RenderOptions:
    """``options`` (a RenderOptions) with the resolved fps, size and frames filled in where the
    user left them out.

    Raises:
        OptionsError: The length was left out and the page has none (``timing.problem``).
    """
    changes: dict[str, Any] = {}
    if options.fps is None:
        changes["fps"] = timing.fps
    if options.width is None and options.height is None and timing.sources.get("size") == (
        "declared"
    ):
        changes["width"], changes["height"] = timing.width, timing.height
    if options.frames is None and options.duration is None:
        if timing.frames is None:
            raise OptionsError(timing.problem or f"the page has no length: {ASK_FOR_LENGTH}")
        changes["frames"] = timing.frames
    return replace(options, **changes) if changes else options
