"""memberships module."""
