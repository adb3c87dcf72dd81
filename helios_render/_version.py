"""The version of helios_render."""

__version__ = "0.1.0"
