"""pages module."""
