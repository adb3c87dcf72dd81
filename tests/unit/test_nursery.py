"""The one exception-group policy (helios_render._nursery's numbered rules)."""

from __future__ import annotations

import pytest
import trio

from helios_render import BrowserError, PageError, SourceError
from helios_render._nursery import collapse_group, leaves, task_nursery


def test_rule_1_a_lone_error_is_unwrapped_even_when_nested() -> None:
    error = PageError("threw")
    assert collapse_group(ExceptionGroup("outer", [ExceptionGroup("inner", [error])])) is error


def test_rule_2_ctrl_c_reaches_the_top_as_a_group() -> None:
    group = BaseExceptionGroup("g", [KeyboardInterrupt(), PageError("threw")])
    assert collapse_group(group) is group
    assert collapse_group(group, at_top=True) is group
    assert collapse_group(group, PageError("first")) is group


def test_rule_3_the_first_failure_a_supervisor_recorded_is_the_story() -> None:
    first = PageError("first")
    group = ExceptionGroup("g", [BrowserError("sibling"), ValueError("sibling")])
    assert collapse_group(group, first) is first


def test_rule_4_an_error_that_explains_the_others_replaces_them_only_when_present() -> None:
    crashed = BrowserError("the page crashed")
    group = ExceptionGroup("g", [ValueError("command failed"), crashed])
    assert collapse_group(group, explained_by=crashed) is crashed
    elsewhere = BrowserError("not in the group")
    assert collapse_group(group, explained_by=elsewhere) is group
    interrupted = BaseExceptionGroup("g", [KeyboardInterrupt(), crashed])
    assert collapse_group(interrupted, explained_by=crashed) is interrupted


def test_rule_5_at_the_top_the_first_error_of_ours_is_shown() -> None:
    ours = SourceError("missing")
    group = BaseExceptionGroup("g", [ValueError("odd"), trio.Cancelled._create(), ours])
    assert collapse_group(group, at_top=True) is ours
    assert collapse_group(group) is group  # below the top a Cancelled is its scope's
    foreign = ExceptionGroup("g", [ValueError("a"), KeyError("b")])
    assert collapse_group(foreign, at_top=True) is foreign


def test_rule_6_independent_errors_stay_a_group() -> None:
    group = ExceptionGroup("g", [PageError("a"), BrowserError("b")])
    assert collapse_group(group) is group
    last = ValueError("c")
    assert leaves(ExceptionGroup("o", [group, last])) == [*group.exceptions, last]


async def test_a_task_nursery_raises_its_lone_error_unwrapped() -> None:
    with pytest.raises(PageError, match="threw"):
        async with task_nursery():
            raise PageError("threw")
