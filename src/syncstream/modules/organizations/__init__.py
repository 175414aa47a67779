"""organizations module."""
