"""Where a composition comes from, and how a browser reaches it."""
