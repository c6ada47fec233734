#!/usr/bin/env bash
# `make bench`: the load benchmarks (bench/suite.py) on a database of their own, otv_bench.
#
# The database is created the way scripts/setup.sh creates otv and otv_test (roles, one schema per
# service, privileges, migrations), by running a copy of it that names only otv_bench; so this works on a
# fresh machine after `make setup`. Arguments go to `python -m bench` (--quick, --replicas N).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR=$PWD
SETUP_COPY=$(mktemp /tmp/otv-bench-setup.XXXXXX.sh)
trap 'rm -f "$SETUP_COPY"' EXIT

sed "s/^DATABASES=(otv otv_test)/DATABASES=(otv_bench)/; s|^cd .*BASH_SOURCE.*|cd \"$ROOT_DIR\"|" \
    scripts/setup.sh >"$SETUP_COPY"
grep -q '^DATABASES=(otv_bench)$' "$SETUP_COPY" || {
    echo "[bench] scripts/setup.sh no longer has the line DATABASES=(otv otv_test); update bench/run.sh" >&2
    exit 1
}
OTV_SKIP_DEMO=1 bash "$SETUP_COPY"

exec .venv/bin/python -m bench "$@"
