"""Importing this module registers every event model of OTV."""

from shared.events import appointment, catalog, mail, retention

__all__ = ["appointment", "catalog", "mail", "retention"]
