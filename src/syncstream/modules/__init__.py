"""Domain modules: each owns its routes, its rules and (for streams) its handlers."""
