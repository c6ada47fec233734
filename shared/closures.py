"""The catalog's rule for a closure's `service_points_left` (R20), which booking's mass change (R44)
checks too before it proposes or makes a move: one rule, one wording, wherever it is refused.

A restriction to the service points 1..n of a group that has fewer than n is a slip (99 for 6): it would
restrict nothing while the page says it does. A location-wide one is measured against its largest group.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.errors import ValidationError

__all__ = ["check_points_left"]

FIELD = "service_points_left"


def check_points_left(points_left: int, sizes: Sequence[int]) -> None:
    """Refuse (422 `validation_error`, `details[].type` `too_many_service_points` on the field) more
    service points left than `sizes` has: the one group's service points, or for the whole location those
    of each of its groups (measured against the largest)."""
    most = max(sizes, default=0)
    if points_left > most:
        whose = "the group" if len(sizes) == 1 else "the largest group of the location"
        message = f"{whose} has {most} service points"
        raise ValidationError(
            f"Invalid {FIELD}: {message}.",
            details=[{"field": FIELD, "message": message, "type": "too_many_service_points"}],
        )
