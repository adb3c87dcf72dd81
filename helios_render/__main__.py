"""``python -m helios_render``: the same as the ``helios-render`` command."""

from .cli import main

raise SystemExit(main())
