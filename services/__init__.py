"""Verkosto's services: the event store application, HTTP API, ingest, relay and CLI."""
