"""Example applications built on syncstream's public API."""
