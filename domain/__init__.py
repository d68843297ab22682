"""Verkosto's domain: partnerships, networks, their events and rules.

Pure Python, pydantic and ``eventsourcing.domain`` only: no I/O, and no clock is read
here. Every event carries an explicit ``EventMeta`` supplied by the application.
"""
