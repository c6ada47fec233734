"""Importing this module registers every event model of OTV."""

from shared.events import (
    appointment,
    catalog,
    mail,
    retention,
    staff_work,  # issue 8 (R23-R26)
    waiting_list,  # issue 11 (R45)
)

__all__ = ["appointment", "catalog", "mail", "retention", "staff_work", "waiting_list"]
