"""operations module."""
