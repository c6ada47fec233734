"""How the schemathesis tests run hypothesis: the same examples in every run (derandomized, no example
database), no deadline (a request to the real stack may take a while), and no health check that would
stop a run because the real services are slow to answer."""

from __future__ import annotations

import hypothesis


def reproducible(examples: int) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
