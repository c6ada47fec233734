"""Importing this module registers every event model of OTV."""

from shared.events import appointment, catalog, mail, retention
from shared.events import waiting_list  # issue 11 (R45)
from shared.events import staff_work  # issue 8 (R23-R26)

__all__ = ["appointment", "catalog", "mail", "retention", "waiting_list", "staff_work"]
