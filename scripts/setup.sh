#!/usr/bin/env bash
# One-command set-up of OTV on a Debian/Ubuntu machine (make setup, make run and make test call it).
#
#   - .venv with the pinned packages of requirements.lock (re-installed only when the lock changes)
#   - PostgreSQL >= 15 and RabbitMQ >= 3.10 on their standard loopback ports: used where they already
#     answer, started where installed, installed with apt where absent and we are root; otherwise a clear
#     message naming what to install
#   - RabbitMQ's operator policy otv-retention: no queue keeps an event longer than OTV_RETENTION_DAYS
#   - the databases otv and otv_test, one login role and one schema per service, then the migrations
#   - optional: the demo data (SETUP_DEMO=1, unless OTV_SKIP_DEMO is set), Chromium (SETUP_BROWSER=1),
#     promtool for the alerting rules' unit tests (SETUP_PROMTOOL=1)
#
# Idempotent: a second run checks and changes nothing, in a few seconds.
#
# Environment:
#   OTV_<SERVICE>_DB_PASSWORD  password of role otv_<service> (default: the role name; development only)
#   SETUP_DEMO=1               load the demo data of Jobcenter Bremen into otv
#   OTV_SKIP_DEMO=<anything>   never load demo data (wins over SETUP_DEMO)
#   OTV_RETENTION_DAYS         the queues' message TTL in days (default 28; scripts/broker-policy.sh)
#   OTV_QUEUE_PREFIX           the queues the TTL applies to (default otv)
#   SETUP_BROWSER=1            make sure Debian's Chromium is there for the browser tests
#   SETUP_PROMTOOL=1           make sure promtool (Debian's prometheus) is there for deploy/alerts.yaml's tests
#   PYTHON                     interpreter for a new .venv (default python3; must be >= 3.11)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT_DIR=$PWD

SERVICES=(gateway catalog booking notifier reporting)
DATABASES=(otv otv_test)
PG_HOST=127.0.0.1
PG_PORT=5432
AMQP_PORT=5672
START_TIMEOUT=${SETUP_START_TIMEOUT:-60}

log() { printf '[setup] %s\n' "$*"; }
die() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}
is_root() { [ "$(id -u)" -eq 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

# A TCP connect to loopback: refused at once when nothing listens, so no long timeout is needed.
port_open() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# wait_for SECONDS WHAT COMMAND...: poll COMMAND every half second until it succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            die "$what did not come up within ${seconds} s (see its log; raise SETUP_START_TIMEOUT if the machine is slow)"
        fi
        sleep 0.5
    done
}

APT_UPDATED=0
apt_install() {
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        apt-get update -q
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    # Stop the packages' maintainer scripts from starting services: there is no systemd here, and this
    # script starts them itself, the same way on every machine. A policy-rc.d already in place is kept.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" || rc=$?
    if ((made_policy)); then rm -f "$policy"; fi
    return "$rc"
}

# --- Python -----------------------------------------------------------------------------------------
ensure_venv() {
    local python=${PYTHON:-python3}
    if [ ! -x .venv/bin/python ]; then
        have "$python" || die "$python not found: install Python >= 3.11 (Debian/Ubuntu: apt-get install python3 python3-venv)"
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
            die "$python is $("$python" -V 2>&1); OTV needs Python >= 3.11 (set PYTHON=/path/to/python3.11)"
        log "creating .venv with $("$python" -V 2>&1)"
        if ! "$python" -m venv .venv 2>/dev/null; then
            rm -rf .venv
            # Debian splits venv (and its ensurepip) into a package of its own.
            is_root || die "'$python -m venv' failed: install python3-venv (apt-get install python3-venv)"
            apt_install python3-venv
            "$python" -m venv .venv
        fi
    fi
    .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
        die ".venv has $(.venv/bin/python -V 2>&1); OTV needs >= 3.11: remove .venv (make clean) and run again"

    local want have_stamp=""
    want=$(sha256sum requirements.lock | cut -d' ' -f1)
    [ -f .venv/.lock-stamp ] && have_stamp=$(cat .venv/.lock-stamp)
    if [ "$want" = "$have_stamp" ]; then
        log "packages: up to date with requirements.lock"
        return
    fi
    log "installing requirements.lock into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    echo "$want" >.venv/.lock-stamp
}

# --- PostgreSQL -------------------------------------------------------------------------------------
pg_answers() {
    if have pg_isready; then
        pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    else
        port_open "$PG_PORT"
    fi
}

start_pg_clusters() {
    local ver name port status rest started=0
    while read -r ver name port status rest; do
        [ -n "$ver" ] || continue
        if [ "$status" != "online" ]; then
            log "starting PostgreSQL cluster $ver/$name (port $port)"
            pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
                die "could not start PostgreSQL cluster $ver/$name (as root: pg_ctlcluster --skip-systemctl-redirect $ver $name start; see /var/log/postgresql/)"
            started=1
        fi
    done < <(pg_lsclusters --no-header)
    ((started)) || log "PostgreSQL clusters are online, but none answers on $PG_HOST:$PG_PORT yet"
}

pg_has_clusters() { have pg_lsclusters && [ -n "$(pg_lsclusters --no-header 2>/dev/null)" ]; }

ensure_postgres() {
    if pg_answers; then
        log "PostgreSQL: answers on $PG_HOST:$PG_PORT"
    elif pg_has_clusters; then
        start_pg_clusters
    elif is_root; then
        log "PostgreSQL: not installed; installing it with apt"
        apt_install postgresql
        pg_has_clusters || die "the postgresql package created no cluster (create one: pg_createcluster 15 main)"
        start_pg_clusters
    else
        die "PostgreSQL >= 15 is neither running on $PG_HOST:$PG_PORT nor installed. Install it (Debian/Ubuntu: sudo apt-get install postgresql) or start it, then run make setup again."
    fi
    wait_for "$START_TIMEOUT" "PostgreSQL on $PG_HOST:$PG_PORT" pg_answers
}

# psql as the superuser. Fresh Debian installs allow it only as the OS user postgres on the socket (peer
# auth), so as root we go through runuser; elsewhere (or where that fails) over TCP as user postgres,
# which works with trust auth or a PGPASSWORD/.pgpass of the caller.
PSQL_SUPER=()
choose_superuser_psql() {
    local probe=(-X -q -At -v ON_ERROR_STOP=1 -d postgres -c 'select 1')
    if is_root && have runuser && (cd / && runuser -u postgres -- psql -p "$PG_PORT" "${probe[@]}") >/dev/null 2>&1; then
        PSQL_SUPER=(runuser -u postgres -- psql -p "$PG_PORT")
    elif psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w "${probe[@]}" >/dev/null 2>&1; then
        PSQL_SUPER=(psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -w)
    else
        die "cannot connect to PostgreSQL as the superuser postgres: run this script as root, or allow 'psql -h $PG_HOST -U postgres' (PGPASSWORD or ~/.pgpass)"
    fi
}
# client_min_messages: no NOTICE for every "already exists, skipping" of an idempotent re-run.
psql_super() { (cd / && PGOPTIONS="-c client_min_messages=warning" "${PSQL_SUPER[@]}" -X -q -v ON_ERROR_STOP=1 "$@"); }

check_pg_version() {
    local num
    num=$(psql_super -At -d postgres -c 'show server_version_num')
    ((num >= 150000)) || die "PostgreSQL on $PG_HOST:$PG_PORT is version $num; OTV needs >= 15 (exclusion constraints, privileges on schema public)"
}

db_password() {
    local var="OTV_${1^^}_DB_PASSWORD"
    printf '%s' "${!var:-otv_$1}"
}

bootstrap_databases() {
    choose_superuser_psql
    check_pg_version

    # Roles belong to the cluster. Values travel as psql variables (:'x' quotes a literal, :"x" an
    # identifier), never pasted into SQL text; \gexec runs the generated statement only when needed.
    local svc
    for svc in "${SERVICES[@]}"; do
        psql_super -d postgres -v role="otv_$svc" -v pw="$(db_password "$svc")" -v schema="$svc" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
-- Always set: a changed OTV_<SERVICE>_DB_PASSWORD takes effect on the next set-up.
ALTER ROLE :"role" WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD :'pw';
-- Unqualified names find the service's own tables first, then btree_gist's operators in public.
ALTER ROLE :"role" SET search_path = :"schema", public;
SQL
    done

    # The owner of the gateway's append-only audit log (I5): a role nobody logs in as, and of which the
    # application's role otv_gateway is not a member, so that otv_gateway cannot change the log.
    psql_super -d postgres <<'SQL'
SELECT 'CREATE ROLE otv_audit_owner NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_audit_owner') \gexec
ALTER ROLE otv_audit_owner WITH NOLOGIN NOCREATEDB NOCREATEROLE;
SELECT 'REVOKE otv_audit_owner FROM otv_gateway'
 WHERE pg_has_role('otv_gateway', 'otv_audit_owner', 'MEMBER') \gexec
-- None of these roles may be a superuser. As in deploy/postgres-init.sql, NOSUPERUSER is set only where
-- a role is one nonetheless (only a superuser may touch that attribute, not a managed administrator).
SELECT format('ALTER ROLE %I NOSUPERUSER', rolname) FROM pg_roles
 WHERE rolsuper AND rolname IN ('otv_gateway', 'otv_catalog', 'otv_booking', 'otv_notifier', 'otv_reporting',
                                'otv_audit_owner') \gexec
SQL

    local db roles
    roles=$(printf 'otv_%s, ' "${SERVICES[@]}")
    roles=${roles%, }
    for db in "${DATABASES[@]}"; do
        psql_super -d postgres -v db="$db" <<'SQL'
-- CREATE DATABASE cannot run inside a DO block (no transaction allowed), hence \gexec.
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
        {
            cat <<SQL
REVOKE ALL ON DATABASE "$db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE "$db" TO $roles;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- booking's exclusion constraint (invariant I1) needs btree_gist for the equality on the service point.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;
SQL
            for svc in "${SERVICES[@]}"; do
                # One schema per service, owned by its role: only the owner (and superusers) can use it,
                # so no service reads another's tables. No USAGE is granted on any other service's schema.
                cat <<SQL
CREATE SCHEMA IF NOT EXISTS "$svc" AUTHORIZATION "otv_$svc";
ALTER SCHEMA "$svc" OWNER TO "otv_$svc";
REVOKE ALL ON SCHEMA "$svc" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_$svc";
SQL
            done
            role_settings_sql
            audit_log_sql
        } | psql_super -d "$db" -v db="$db"
    done
    log "databases ${DATABASES[*]}: roles, schemas and privileges in place"
}

# The settings of the services' roles in an OTV database (the variable db names it); deploy/postgres-init.sql
# has the same text, and tests/deploy compares the two.
role_settings_sql() {
    cat <<'SQL'
-- A transaction whose client is gone must not keep its locks: a replica whose node dies inside a
-- transaction leaves a backend that is idle in transaction and, without keepalives, lives until the
-- operating system gives up on the connection (about 2 h). It would hold its rows (the inbox rows of a
-- consumer's batch, the outbox rows of a relay, job_runs) and its advisory locks (booking.passing, the
-- retention jobs) all that time. 60 s is well above the longest wait a transaction of OTV has between two
-- statements (a relay's broker confirms, 10 s; a round of webhook POSTs, OTV_WEBHOOK_TIMEOUT_SECONDS); the
-- keepalives find a vanished client (or pooler) after 30 + 3 x 10 s. Set per role in this database, so
-- that they hold through a connection pooler too (PgBouncer does not pass such settings on).
SELECT format('ALTER ROLE %I IN DATABASE %I SET %s = %L', role, :'db', setting, value)
  FROM unnest(ARRAY['otv_gateway', 'otv_catalog', 'otv_booking', 'otv_notifier', 'otv_reporting']) AS role,
       (VALUES ('idle_in_transaction_session_timeout', '60s'), ('tcp_keepalives_idle', '30'),
               ('tcp_keepalives_interval', '10'), ('tcp_keepalives_count', '3')) AS s (setting, value) \gexec
-- The server log is kept outside OTV's retention and erasure (R34), so what the services' sessions make
-- the server log must name no person. An error's DETAIL does (a unique violation's "Key (username)=(...)",
-- a check's "Failing row contains (...)"), and so do bind parameters (logged with a slow statement's
-- duration, or with an error's statement where log_parameter_max_length_on_error allows it). So the
-- server logs these roles' errors terse (message and statement only: the statements carry $n, never
-- values) and no parameter. The client still gets the whole error. log_error_verbosity and
-- log_parameter_max_length may only be set by a superuser or a role granted SET on them (GRANT SET ON
-- PARAMETER); a managed PostgreSQL's administrator may be neither: then the script says so, and the
-- server-wide parameters must be set instead (deploy/README.md, "Personal data in the server log").
SELECT format('ALTER ROLE %I IN DATABASE %I SET %s = %L', role, :'db', setting, value)
  FROM unnest(ARRAY['otv_gateway', 'otv_catalog', 'otv_booking', 'otv_notifier', 'otv_reporting']) AS role,
       (VALUES ('log_error_verbosity', 'terse'), ('log_parameter_max_length', '0'),
               ('log_parameter_max_length_on_error', '0')) AS s (setting, value)
 WHERE (SELECT context FROM pg_settings WHERE name = setting) = 'user' OR has_parameter_privilege(setting, 'SET')
 ORDER BY role, setting \gexec
SELECT format('DO $warn$ BEGIN RAISE WARNING %L; END $warn$',
              'not allowed to set ' || string_agg(setting, ', ' ORDER BY setting) || ' for the OTV roles:'
              || ' set them server-wide (log_error_verbosity = terse, log_parameter_max_length = 0),'
              || ' or let a superuser GRANT SET ON PARAMETER them to this role (deploy/README.md)')
  FROM (VALUES ('log_error_verbosity'), ('log_parameter_max_length')) AS s (setting)
 WHERE NOT has_parameter_privilege(setting, 'SET')
HAVING count(*) > 0 \gexec
SQL
}

# The gateway's audit log (issue 7, invariant I5): its own schema, owned by otv_audit_owner. The gateway's
# role may only read and append (USAGE, SELECT, INSERT, the id sequence); it can neither UPDATE, DELETE nor
# TRUNCATE, and a trigger refuses those even to the owner. The client addresses of the entries are kept beside
# them, in audit_client_addresses, which the gateway may only read: a trigger puts them there, and a
# function of the owner deletes them after their retention period. Created here (as the superuser) and
# not in the gateway's migrations, because otv_gateway must not own it. Changes of its shape are added
# here, idempotently (ADD COLUMN IF NOT EXISTS).
audit_log_sql() {
    cat <<'SQL'
CREATE SCHEMA IF NOT EXISTS gateway_audit AUTHORIZATION otv_audit_owner;
ALTER SCHEMA gateway_audit OWNER TO otv_audit_owner;
REVOKE ALL ON SCHEMA gateway_audit FROM PUBLIC;
CREATE TABLE IF NOT EXISTS gateway_audit.audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL,
    actor           text NOT NULL,
    actor_kind      text NOT NULL,
    action          text NOT NULL,
    entity          text NOT NULL,
    entity_id       text,
    location        text,
    outcome         text NOT NULL,
    status          integer,
    -- The client address as the gateway hands it over; stored always NULL: the trigger below moves it to
    -- audit_client_addresses as the entry is inserted.
    ip              text,
    method          text,
    route           text,
    changes         jsonb NOT NULL DEFAULT '{}',
    correlation_id  text
);
ALTER TABLE gateway_audit.audit_log OWNER TO otv_audit_owner;
CREATE INDEX IF NOT EXISTS audit_log_occurred ON gateway_audit.audit_log (occurred_at, id);
CREATE INDEX IF NOT EXISTS audit_log_actor ON gateway_audit.audit_log (actor, occurred_at);
CREATE INDEX IF NOT EXISTS audit_log_entity ON gateway_audit.audit_log (entity, entity_id);
-- Where an entry came from (R46) is the client's address, personal data (DSGVO): it is kept beside the
-- entry, not in it, so that it can be deleted after OTV_AUDIT_ADDRESS_RETENTION_DAYS while the entry
-- itself stays as it was written. The gateway may only read it: it cannot change, add or delete an
-- address (I5); the two functions below, which run as the owner, do that. The key is checked at commit,
-- so that the trigger below can put an address aside before its entry is inserted.
CREATE TABLE IF NOT EXISTS gateway_audit.audit_client_addresses (
    audit_id        bigint PRIMARY KEY
                    REFERENCES gateway_audit.audit_log (id) DEFERRABLE INITIALLY DEFERRED,
    client_address  text NOT NULL,
    recorded_at     timestamptz NOT NULL
);
ALTER TABLE gateway_audit.audit_client_addresses OWNER TO otv_audit_owner;
CREATE INDEX IF NOT EXISTS audit_client_addresses_recorded
    ON gateway_audit.audit_client_addresses (recorded_at);
-- The append-only rule, for everyone. Its one exception is the move of an address out of an entry of a
-- log from before the side table (below): the owner, with otv.audit_move set in its transaction, may
-- empty `ip` of an entry whose address is already beside it, and change nothing else. Anyone may set
-- otv.audit_move; only the bootstrap acts as otv_audit_owner (otv_gateway is no member of it, and the
-- owner's functions below change no entry).
CREATE OR REPLACE FUNCTION gateway_audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved gateway_audit.audit_log;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF current_user = 'otv_audit_owner' AND current_setting('otv.audit_move', true) = 'on' THEN
            moved := OLD;
            moved.ip := NULL;
            IF NEW IS NOT DISTINCT FROM moved AND EXISTS (
                SELECT FROM gateway_audit.audit_client_addresses
                 WHERE audit_id = OLD.id AND client_address = OLD.ip) THEN
                RETURN NEW;
            END IF;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
ALTER FUNCTION gateway_audit.refuse_change() OWNER TO otv_audit_owner;
CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON gateway_audit.audit_log
    FOR EACH ROW EXECUTE FUNCTION gateway_audit.refuse_change();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON gateway_audit.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gateway_audit.refuse_change();
-- The address the gateway writes into a new entry goes aside as the entry is inserted (run as the owner:
-- the gateway cannot write the side table itself).
CREATE OR REPLACE FUNCTION gateway_audit.put_address_aside() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.ip IS NOT NULL THEN
        INSERT INTO gateway_audit.audit_client_addresses (audit_id, client_address, recorded_at)
            VALUES (NEW.id, NEW.ip, NEW.occurred_at);
        NEW.ip := NULL;
    END IF;
    RETURN NEW;
END $$;
ALTER FUNCTION gateway_audit.put_address_aside() OWNER TO otv_audit_owner;
REVOKE ALL ON FUNCTION gateway_audit.put_address_aside() FROM PUBLIC;
CREATE OR REPLACE TRIGGER audit_log_address_aside BEFORE INSERT ON gateway_audit.audit_log
    FOR EACH ROW EXECUTE FUNCTION gateway_audit.put_address_aside();
-- The retention of the addresses, called by the gateway's retention job with its
-- OTV_AUDIT_ADDRESS_RETENTION_DAYS: it deletes those recorded more than `min_age` before the database's
-- own clock, never younger ones than 7 days (so the gateway cannot hide where its recent writes came
-- from), and returns how many it deleted.
CREATE OR REPLACE FUNCTION gateway_audit.erase_client_addresses(min_age interval) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    erased bigint;
BEGIN
    IF min_age IS NULL OR min_age < interval '7 days' THEN
        RAISE EXCEPTION 'client addresses are kept at least 7 days, not %', min_age
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM gateway_audit.audit_client_addresses WHERE recorded_at < now() - min_age;
    GET DIAGNOSTICS erased = ROW_COUNT;
    RETURN erased;
END $$;
ALTER FUNCTION gateway_audit.erase_client_addresses(interval) OWNER TO otv_audit_owner;
REVOKE ALL ON FUNCTION gateway_audit.erase_client_addresses(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gateway_audit.erase_client_addresses(interval) TO otv_gateway;
-- The addresses of a log from before the side table move over, in batches of 10000 entries, each its own
-- transaction: writers are never blocked (no table lock) and a run that stops half-way goes on where it
-- stopped when run again. Emptying the column is the one change the entries ever see (refuse_change).
DO $$
DECLARE
    last_id bigint := 0;
    batch_end bigint;
BEGIN
    LOOP
        PERFORM set_config('role', 'otv_audit_owner', true);
        PERFORM set_config('otv.audit_move', 'on', true);
        SELECT max(id) INTO batch_end FROM (
            SELECT id FROM gateway_audit.audit_log
             WHERE id > last_id AND ip IS NOT NULL ORDER BY id LIMIT 10000) AS batch;
        EXIT WHEN batch_end IS NULL;
        INSERT INTO gateway_audit.audit_client_addresses (audit_id, client_address, recorded_at)
            SELECT id, ip, occurred_at FROM gateway_audit.audit_log
             WHERE id > last_id AND id <= batch_end AND ip IS NOT NULL
            ON CONFLICT (audit_id) DO NOTHING;
        UPDATE gateway_audit.audit_log SET ip = NULL
         WHERE id > last_id AND id <= batch_end AND ip IS NOT NULL;
        last_id := batch_end;
        COMMIT;
    END LOOP;
END $$;
REVOKE ALL ON gateway_audit.audit_log FROM PUBLIC, otv_gateway;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA gateway_audit FROM PUBLIC, otv_gateway;
GRANT USAGE ON SCHEMA gateway_audit TO otv_gateway;
GRANT SELECT, INSERT ON gateway_audit.audit_log TO otv_gateway;
REVOKE ALL ON gateway_audit.audit_client_addresses FROM PUBLIC, otv_gateway;
GRANT SELECT ON gateway_audit.audit_client_addresses TO otv_gateway;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA gateway_audit TO otv_gateway;
SQL
}

run_migrations() {
    if ! .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("shared.migrate") is None)' 2>/dev/null; then
        log "migrations: shared.migrate does not exist yet; skipped"
        return
    fi
    local db
    for db in "${DATABASES[@]}"; do
        log "migrations: $db"
        OTV_DB_NAME=$db .venv/bin/python -m shared.migrate
    done
}

load_demo() {
    if [ -n "${OTV_SKIP_DEMO:-}" ] || [ "${SETUP_DEMO:-0}" != 1 ]; then
        return
    fi
    if ! .venv/bin/python -c 'import services.catalog.demo' 2>/dev/null; then
        log "demo data: services.catalog.demo does not exist yet; skipped"
        return
    fi
    # The queues first, so that the snapshots the demo data publishes reach every consumer.
    log "message topology: declaring every consumer's queues"
    .venv/bin/python -m shared.topology
    log "demo data: loading into otv"
    OTV_DB_NAME=otv .venv/bin/python -m services.catalog load-demo
    # The demo logins of every role (demo-admin, <location>-manager ...; password OTV_DEMO_PASSWORD).
    log "demo data: staff logins"
    OTV_DB_NAME=otv .venv/bin/python -m services.gateway load-demo
}

# --- RabbitMQ ---------------------------------------------------------------------------------------
rabbit_ready() { port_open "$AMQP_PORT" && rabbitmqctl -q await_startup >/dev/null 2>&1; }

start_rabbitmq() {
    log "starting RabbitMQ (rabbitmq-server -detached)"
    # Quorum queues each hold file handles; the default budget under a 1024 open-files limit runs out
    # with a few hundred queues and the broker then stops answering handshakes.
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    rabbitmq-server -detached ||
        die "rabbitmq-server -detached failed (see /var/log/rabbitmq/)"
    wait_for "$START_TIMEOUT" "RabbitMQ on 127.0.0.1:$AMQP_PORT" rabbit_ready
}

check_rabbit_version() {
    # rabbitmqctl needs the node's Erlang cookie: as root it has it; elsewhere we may not be able to ask.
    local version
    if ! version=$(rabbitmqctl -q version 2>/dev/null); then
        log "RabbitMQ: could not read its version (rabbitmqctl); OTV needs >= 3.10"
        return
    fi
    local major minor
    IFS=. read -r major minor _ <<<"$version"
    if ((major < 3 || (major == 3 && minor < 10))); then
        die "RabbitMQ is version $version; OTV needs >= 3.10 (at-least-once dead-lettering of quorum queues)"
    fi
}

ensure_rabbitmq() {
    if port_open "$AMQP_PORT"; then
        log "RabbitMQ: answers on 127.0.0.1:$AMQP_PORT"
    elif have rabbitmq-server; then
        start_rabbitmq
    elif is_root; then
        log "RabbitMQ: not installed; installing it with apt"
        apt_install rabbitmq-server
        # The package may have started it already (where policy-rc.d allows it).
        if port_open "$AMQP_PORT"; then
            wait_for "$START_TIMEOUT" "RabbitMQ on 127.0.0.1:$AMQP_PORT" rabbit_ready
        else
            start_rabbitmq
        fi
    else
        die "RabbitMQ >= 3.10 is neither running on 127.0.0.1:$AMQP_PORT nor installed. Install it (Debian/Ubuntu: sudo apt-get install rabbitmq-server) or start it, then run make setup again."
    fi
    if have rabbitmqctl; then check_rabbit_version; fi
}

# R34: an upper bound for how long a queue keeps an event (scripts/broker-policy.sh). rabbitmqctl needs the
# node's Erlang cookie: as root it has it; elsewhere the set-up says what to run instead.
ensure_broker_retention_policy() {
    if ! have rabbitmqctl; then
        log "RabbitMQ: no rabbitmqctl here; set the queues' retention policy on the broker: scripts/broker-policy.sh"
        return
    fi
    local out
    if out=$(bash scripts/broker-policy.sh 2>&1); then
        log "RabbitMQ: ${out#broker-policy: }"
    else
        log "RabbitMQ: could not set the queues' retention policy ($out); run scripts/broker-policy.sh as root"
    fi
}

# --- browser tests ----------------------------------------------------------------------------------
ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then
        log "Chromium: /usr/bin/chromium"
        return
    fi
    if is_root; then
        # Without recommends: they pull in a desktop (printing, avahi, a terminal) that headless tests never use.
        apt_install --no-install-recommends chromium fonts-dejavu-core
    else
        log "Chromium: /usr/bin/chromium is missing and we are not root; browser tests will fail or skip (install: sudo apt-get install chromium fonts-dejavu-core)"
    fi
}

# --- the alerting rules' unit tests (tests/deploy/alerts.test.yaml) ----------------------------------
ensure_promtool() {
    if have promtool; then
        log "promtool: $(command -v promtool)"
        return
    fi
    if is_root; then
        # Debian ships promtool with the server; apt_install keeps the server from starting.
        apt_install --no-install-recommends prometheus
    else
        log "promtool is missing and we are not root; the alert rules' unit tests will skip (install: sudo apt-get install prometheus)"
    fi
}

main() {
    local started=$SECONDS
    ensure_venv
    ensure_postgres
    ensure_rabbitmq
    ensure_broker_retention_policy
    bootstrap_databases
    run_migrations
    load_demo
    if [ "${SETUP_BROWSER:-0}" = 1 ]; then ensure_chromium; fi
    if [ "${SETUP_PROMTOOL:-0}" = 1 ]; then ensure_promtool; fi
    log "done in $((SECONDS - started)) s ($ROOT_DIR)"
}

main "$@"
