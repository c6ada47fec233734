"""Importing this module registers every event model of OTV."""

from shared.events import appointment, catalog, retention

__all__ = ["appointment", "catalog", "retention"]
