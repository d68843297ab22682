"""Audit: the tamper-evident chain over the event store, and checkpoints of it."""
