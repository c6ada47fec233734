"""Importing this module registers every event model of OTV."""

from shared.events import appointment, catalog, mail, retention
from shared.events import waiting_list  # issue 11 (R45)

__all__ = ["appointment", "catalog", "mail", "retention", "waiting_list"]
