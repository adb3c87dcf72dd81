"""helios_render: render HTML/CSS/JS compositions to frame-exact video.

Headless Chromium driven over our own CDP client, FFmpeg for encoding, and Trio to run
concurrent workers under one nursery.
"""

import importlib
from typing import TYPE_CHECKING, Any

from ._exceptions import AssetError as AssetError
from ._exceptions import BrowserError as BrowserError
from ._exceptions import CaptureStalledError as CaptureStalledError
from ._exceptions import CdpCommandError as CdpCommandError
from ._exceptions import CdpConnectionClosed as CdpConnectionClosed
from ._exceptions import CdpError as CdpError
from ._exceptions import ClusterError as ClusterError
from ._exceptions import EncoderError as EncoderError
from ._exceptions import FrameTimeoutError as FrameTimeoutError
from ._exceptions import HeliosError as HeliosError
from ._exceptions import MediaError as MediaError
from ._exceptions import OptionsError as OptionsError
from ._exceptions import PageError as PageError
from ._exceptions import PreflightError as PreflightError
from ._exceptions import PropsError as PropsError
from ._exceptions import RenderError as RenderError
from ._exceptions import SourceError as SourceError
from ._exceptions import ToolNotFoundError as ToolNotFoundError
from ._exceptions import UsageError as UsageError
from ._exceptions import WorkerError as WorkerError
from ._model.options import RenderOptions as RenderOptions
from ._model.progress import ProgressAggregator as ProgressAggregator
from ._model.progress import RenderProgress as RenderProgress
from ._model.progress import WorkerProgress as WorkerProgress
from ._version import __version__ as __version__

if TYPE_CHECKING:  # loaded on first use (see __getattr__), so the values load no Trio
    from ._batch import BatchError as BatchError
    from ._batch import BatchResult as BatchResult
    from ._batch import RowResult as RowResult
    from ._batch import render_batch as render_batch
    from ._batch import render_batch_sync as render_batch_sync
    from ._executors import DaskExecutor as DaskExecutor
    from ._executors import LocalExecutor as LocalExecutor
    from ._preview import Preview as Preview
    from ._preview import open_preview as open_preview
    from ._preview import preview_sync as preview_sync
    from ._props import validate_props as validate_props
    from ._render import PoolStatistics as PoolStatistics
    from ._render import RenderPool as RenderPool
    from ._render import RenderResult as RenderResult
    from ._render import open_pool as open_pool
    from ._render import render as render
    from ._render import render_still as render_still
    from ._render import render_sync as render_sync

#: Public names whose modules load Trio, CDP and FFmpeg: imported when first asked for, so
#: that ``import helios_render`` (and a Dask worker unpickling a value) stays light.
_LAZY = {
    "BatchError": "._batch",
    "BatchResult": "._batch",
    "RowResult": "._batch",
    "render_batch": "._batch",
    "render_batch_sync": "._batch",
    "DaskExecutor": "._executors",
    "LocalExecutor": "._executors",
    "PoolStatistics": "._render",
    "RenderPool": "._render",
    "RenderResult": "._render",
    "open_pool": "._render",
    "Preview": "._preview",
    "open_preview": "._preview",
    "preview_sync": "._preview",
    "render": "._render",
    "render_still": "._render",
    "render_sync": "._render",
    "validate_props": "._props",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "AssetError",
    "BatchError",
    "BatchResult",
    "BrowserError",
    "CaptureStalledError",
    "CdpCommandError",
    "CdpConnectionClosed",
    "CdpError",
    "ClusterError",
    "DaskExecutor",
    "EncoderError",
    "FrameTimeoutError",
    "HeliosError",
    "LocalExecutor",
    "MediaError",
    "OptionsError",
    "PageError",
    "PoolStatistics",
    "PreflightError",
    "Preview",
    "ProgressAggregator",
    "PropsError",
    "RenderError",
    "RenderOptions",
    "RenderPool",
    "RenderProgress",
    "RenderResult",
    "RowResult",
    "SourceError",
    "ToolNotFoundError",
    "UsageError",
    "WorkerError",
    "WorkerProgress",
    "open_pool",
    "open_preview",
    "preview_sync",
    "render",
    "render_batch",
    "render_batch_sync",
    "render_still",
    "render_sync",
    "validate_props",
]
