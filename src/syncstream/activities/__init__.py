"""The activity log, the in-process activity bus, and the doorbells that cross processes."""
