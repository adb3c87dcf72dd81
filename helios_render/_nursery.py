"""Small Trio helpers shared by the layers, and the one exception-group policy.

The policy (:func:`collapse_group`), used by every nursery of ours and by the command line:

1. A group of exactly one exception is unwrapped (its ``__cause__`` kept): a step that owns a
   nursery does not change the type of its caller's errors.
2. A group holding ``KeyboardInterrupt`` or ``trio.Cancelled`` is raised as it is: Ctrl+C must
   reach the top, and a cancellation belongs to the scope that asked for it.
3. Otherwise, when a supervisor recorded the failure that started it all (the first worker to
   fail), that error is raised: the others are consequences (siblings dying while cancelled)
   and are logged, not raised.
4. A group of two or more independent errors is raised as it is, never silently reduced.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

__all__ = [
    "background_nursery",
    "collapse_group",
    "task_nursery",
]


def collapse_group(
    group: BaseExceptionGroup[BaseException], first_failure: BaseException | None = None
) -> BaseException:
    """What to raise for ``group``, by the policy in this module's docstring."""
    if len(group.exceptions) == 1 and first_failure is None:
        lone = group.exceptions[0]
        return collapse_group(lone) if isinstance(lone, BaseExceptionGroup) else lone
    if group.subgroup((KeyboardInterrupt, trio.Cancelled)) is not None:
        return group
    return first_failure if first_failure is not None else group


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
