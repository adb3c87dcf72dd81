"""Small Trio helpers shared by the layers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import trio

__all__ = ["background_nursery", "task_nursery"]


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
        if len(group.exceptions) != 1:
            raise
        lone = group.exceptions[0]
        raise lone from lone.__cause__


def background_nursery() -> AbstractAsyncContextManager[trio.Nursery]:
    """:func:`task_nursery` for background services: tasks are cancelled when the body exits."""
    return task_nursery(cancel_on_exit=True)
