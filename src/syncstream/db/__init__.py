"""Database layer: engines, schema and migrations. Imports nothing else of syncstream."""
