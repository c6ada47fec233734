#!/usr/bin/env bash
# First start of the PostgreSQL container of deploy/compose.yaml (docker-entrypoint-initdb.d): the OTV
# bootstrap of deploy/postgres-init.sql, with the passwords from the container's environment.
set -euo pipefail

: "${OTV_DB_NAME:=otv}"
for svc in gateway catalog booking notifier reporting; do
    var="OTV_${svc^^}_DB_PASSWORD"
    [ -n "${!var:-}" ] || { echo "postgres-init: $var is not set" >&2; exit 1; }
done

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --dbname postgres \
    -v db="$OTV_DB_NAME" \
    -v gateway_password="$OTV_GATEWAY_DB_PASSWORD" \
    -v catalog_password="$OTV_CATALOG_DB_PASSWORD" \
    -v booking_password="$OTV_BOOKING_DB_PASSWORD" \
    -v notifier_password="$OTV_NOTIFIER_DB_PASSWORD" \
    -v reporting_password="$OTV_REPORTING_DB_PASSWORD" \
    -f /otv/postgres-init.sql
