"""sync module."""
