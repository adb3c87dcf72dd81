"""``helios-render preview``: scrub a composition in any browser at the frames a render makes.

See :mod:`helios_render._preview.service` for how the parts fit.
"""

from .service import Preview as Preview
from .service import open_preview as open_preview
from .service import preview_sync as preview_sync

__all__ = ["Preview", "open_preview", "preview_sync"]
