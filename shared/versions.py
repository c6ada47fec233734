"""Lost-update protection of edit forms and API clients: an object's `version` is a short hash of its
stored values. A change that names the version it was made against (`expected_version`) is refused with
409 `stale` when the object changed since, so that a form loaded before a colleague's change does not
undo it unseen; a change without it is made as before.

A hash of the values, not a counter: no column to keep up in every writer, and only a change of the values
the version covers refuses (a window's version moves with that window, not with the rest of the
location). Only for data everyone who reads the version may read anyway: the hash of a customer's data
would let a guess at a phone number be checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from shared.errors import StaleError

VERSION_LENGTH = 16
# What an `expected_version` may be at most (a request model's bound; longer is never a version).
MAX_VERSION_LENGTH = 64


def version_of(values: Mapping[str, Any]) -> str:
    """The version of the values (dates, times and other plain types as their ISO text)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:VERSION_LENGTH]


def check_version(expected: str | None, current: str, what: str) -> None:
    """Refuse (409 `stale`) a change made against another version than the current one; None: no check."""
    if expected is not None and expected != current:
        raise StaleError(
            f"The {what} was changed since it was read (version {expected}, now {current}); nothing was "
            "changed. Read it again and make the change against what it is now."
        )
