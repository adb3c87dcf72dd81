"""Where chunk jobs run: :class:`LocalExecutor` on this machine (a cluster executor implements
the same :class:`Executor` interface)."""

from ._base import Executor as Executor
from ._base import Supervision as Supervision
from ._base import is_retryable as is_retryable
from .local import LocalExecutor as LocalExecutor

__all__ = ["Executor", "LocalExecutor", "Supervision", "is_retryable"]
