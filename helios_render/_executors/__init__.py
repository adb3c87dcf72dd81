"""Where chunk jobs run: :class:`LocalExecutor` on this machine and :class:`DaskExecutor` on a
Dask cluster (which imports Dask only when one is made), behind one :class:`Executor`
interface (``run(jobs, hooks)``, with a :class:`RunHooks`)."""

from ._base import Executor as Executor
from ._base import RunHooks as RunHooks
from ._base import Supervision as Supervision
from ._base import is_retryable as is_retryable
from .dask import DaskExecutor as DaskExecutor
from .local import LocalExecutor as LocalExecutor

__all__ = [
    "DaskExecutor", "Executor", "LocalExecutor", "RunHooks", "Supervision", "is_retryable",
]
