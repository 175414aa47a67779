"""attachments module."""
