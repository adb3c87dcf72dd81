"""Chromium over the DevTools protocol: launch, load, seek, capture. Knows no FFmpeg."""
