"""helios_render: render HTML/CSS/JS compositions to frame-exact video.

Headless Chromium driven over our own CDP client, FFmpeg for encoding, and Trio to run
concurrent workers under one nursery.
"""

from ._exceptions import BrowserError as BrowserError
from ._exceptions import CdpCommandError as CdpCommandError
from ._exceptions import CdpConnectionClosed as CdpConnectionClosed
from ._exceptions import CdpError as CdpError
from ._exceptions import EncoderError as EncoderError
from ._exceptions import FrameTimeoutError as FrameTimeoutError
from ._exceptions import HeliosError as HeliosError
from ._exceptions import MediaError as MediaError
from ._exceptions import OptionsError as OptionsError
from ._exceptions import PageError as PageError
from ._exceptions import RenderError as RenderError
from ._exceptions import SourceError as SourceError
from ._exceptions import ToolNotFoundError as ToolNotFoundError
from ._exceptions import UsageError as UsageError
from ._exceptions import WorkerError as WorkerError
from ._executors import DaskExecutor as DaskExecutor
from ._executors import LocalExecutor as LocalExecutor
from ._options import RenderOptions as RenderOptions
from ._progress import ProgressAggregator as ProgressAggregator
from ._progress import RenderProgress as RenderProgress
from ._progress import WorkerProgress as WorkerProgress
from ._render import RenderResult as RenderResult
from ._render import render as render
from ._render import render_still as render_still
from ._render import render_sync as render_sync

__version__ = "0.1.0"

__all__ = [
    "BrowserError",
    "CdpCommandError",
    "CdpConnectionClosed",
    "CdpError",
    "DaskExecutor",
    "EncoderError",
    "FrameTimeoutError",
    "HeliosError",
    "LocalExecutor",
    "MediaError",
    "OptionsError",
    "PageError",
    "ProgressAggregator",
    "RenderError",
    "RenderOptions",
    "RenderProgress",
    "RenderResult",
    "SourceError",
    "ToolNotFoundError",
    "UsageError",
    "WorkerError",
    "WorkerProgress",
    "render",
    "render_still",
    "render_sync",
]
