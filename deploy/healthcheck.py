"""The container's health check: GET /healthz of the process in this container (liveness, not readiness).

The URL is OTV_HEALTH_URL, else http://127.0.0.1:$OTV_PORT/healthz (the image sets OTV_PORT=8080 for every
service; the mail sink sets OTV_HEALTH_URL to its inbox's /healthz). Exit 0 when it answers 200, else 1.
Standard library only, so that it costs nothing to start.
"""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = os.environ.get("OTV_HEALTH_URL") or f"http://127.0.0.1:{os.environ.get('OTV_PORT', '8080')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 -- a fixed local http URL
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
