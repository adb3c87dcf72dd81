"""Small Trio helpers shared by the layers, and the one exception-group policy.

The policy (:func:`collapse_group`), used by every nursery of ours, by the page and by the
command line; the first rule that applies decides:

1. A group of exactly one exception is unwrapped (its ``__cause__`` kept): a step that owns a
   nursery does not change the type of its caller's errors.
2. A group holding ``KeyboardInterrupt`` is raised as it is: Ctrl+C must reach the top. So is
   one holding ``trio.Cancelled``, except at the top (rule 5): a cancellation belongs to the
   scope that asked for it.
3. When a supervisor recorded the failure that started it all (the first worker to fail), that
   error is raised: the others are consequences (siblings dying while cancelled) and are
   logged, not raised.
4. When an error known to explain the others is in the group (the page's watcher saw the page
   crash or go away, and a command failed at the same moment because the page was gone), that
   error is raised; the group is logged at DEBUG.
5. At the top (the command line, after Ctrl+C was looked for), a group is never shown raw: its
   first error of ours (a :class:`~helios_render.HeliosError`) is raised and the others are
   logged at INFO (``-v``).
6. Otherwise, a group of two or more independent errors is raised as it is, never silently
   reduced.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

from ._exceptions import HeliosError

__all__ = [
    "background_nursery",
    "collapse_group",
    "leaves",
    "task_nursery",
]

logger = logging.getLogger(__name__)


def collapse_group(
    group: BaseExceptionGroup[BaseException],
    first_failure: BaseException | None = None,
    *,
    explained_by: BaseException | None = None,
    at_top: bool = False,
) -> BaseException:
    """What to raise for ``group``, by the numbered rules of this module's docstring.

    Args:
        group: What a nursery (or ``trio.run``) raised.
        first_failure: The failure a supervisor recorded first (rule 3).
        explained_by: An error that explains the others, when it is in the group (rule 4).
        at_top: Nobody above will catch a group: the command line (rule 5).
    """
    if len(group.exceptions) == 1 and first_failure is None:
        lone = group.exceptions[0]
        if isinstance(lone, BaseExceptionGroup):
            return collapse_group(lone, explained_by=explained_by, at_top=at_top)
        return lone
    stops = (KeyboardInterrupt,) if at_top else (KeyboardInterrupt, trio.Cancelled)
    if group.subgroup(stops) is not None:
        return group
    if first_failure is not None:
        return first_failure
    if explained_by is not None and group.subgroup(lambda exc: exc is explained_by) is not None:
        logger.debug("%r explains the others: %r", explained_by, group)
        return explained_by
    if at_top:
        ours = group.subgroup(HeliosError)
        if ours is not None:
            first, *others = leaves(ours)
            for other in others:
                logger.info("and also: %r", other)
            return first
    return group


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions in a (nested) group, in order; ``[exc]`` for one that is not a group."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


@asynccontextmanager
async def task_nursery(*, cancel_on_exit: bool = False) -> AsyncIterator[trio.Nursery]:
    """A nursery whose lone error comes out unwrapped.

    With strict exception groups, an error raised in a nursery block comes out wrapped in an
    ``ExceptionGroup``. A resource or a step that owns a nursery should not change the type of
    its caller's errors, so a group holding exactly one exception is unwrapped (its cause kept);
    a group of two or more is raised as it is, never silently reduced to one.

    Args:
        cancel_on_exit: Cancel the remaining tasks when the body exits (background services);
            otherwise wait for them, as a plain nursery does.

    Cancellation:
        As a plain nursery: a cancelled body cancels the tasks.
    """
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            finally:
                if cancel_on_exit:
                    nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        chosen = collapse_group(group)
        if chosen is group:
            raise
        raise chosen from chosen.__cause__


def background_nursery() -> AbstractAsyncContextManager[trio.Nursery]:
    """:func:`task_nursery` for background services: tasks are cancelled when the body exits."""
    return task_nursery(cancel_on_exit=True)
