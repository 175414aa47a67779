"""A small task tracker (boards, tasks, comments) with live sync, built on syncstream's public API."""
