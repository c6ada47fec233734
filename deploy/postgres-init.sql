-- The bootstrap of an OTV database by its administrator: the login role of each service, the owner role
-- of the audit log, the database, one schema per service, btree_gist, and the gateway's append-only audit
-- log. It MIRRORS bootstrap_databases() and audit_log_sql() of scripts/setup.sh (which does the same for
-- a developer's machine); tests/deploy/ compares the two, so a change there must be copied here.
--
-- Idempotent: run it again after a password change or an upgrade. Run it as a superuser, or on a managed
-- PostgreSQL as its administrator role (see deploy/README.md), with psql:
--
--   psql "host=... user=postgres dbname=postgres sslmode=require" -v ON_ERROR_STOP=1 \
--        -v db=otv \
--        -v gateway_password=... -v catalog_password=... -v booking_password=... \
--        -v notifier_password=... -v reporting_password=... \
--        -f deploy/postgres-init.sql
--
-- deploy/compose.yaml runs it through deploy/postgres-init.sh on the first start of its PostgreSQL.
-- Values travel as psql variables (:'x' quotes a literal, :"x" an identifier), never pasted into SQL.

\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- --- roles (of the cluster) ---------------------------------------------------------------------------
-- One login role per service. The password is always set, so that a changed one takes effect on a re-run.
-- Unqualified names find the service's own tables first, then btree_gist's operators in public.
SELECT 'CREATE ROLE otv_gateway LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_gateway') \gexec
SELECT format('ALTER ROLE otv_gateway WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'gateway_password') \gexec
ALTER ROLE otv_gateway SET search_path = gateway, public;
SELECT 'CREATE ROLE otv_catalog LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_catalog') \gexec
SELECT format('ALTER ROLE otv_catalog WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'catalog_password') \gexec
ALTER ROLE otv_catalog SET search_path = catalog, public;
SELECT 'CREATE ROLE otv_booking LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_booking') \gexec
SELECT format('ALTER ROLE otv_booking WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'booking_password') \gexec
ALTER ROLE otv_booking SET search_path = booking, public;
SELECT 'CREATE ROLE otv_notifier LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_notifier') \gexec
SELECT format('ALTER ROLE otv_notifier WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'notifier_password') \gexec
ALTER ROLE otv_notifier SET search_path = notifier, public;
SELECT 'CREATE ROLE otv_reporting LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_reporting') \gexec
SELECT format('ALTER ROLE otv_reporting WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD %L', :'reporting_password') \gexec
ALTER ROLE otv_reporting SET search_path = reporting, public;

-- The owner of the gateway's append-only audit log (I5): a role nobody logs in as, and of which the
-- application's role otv_gateway is not a member, so that otv_gateway cannot change the log.
SELECT 'CREATE ROLE otv_audit_owner NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otv_audit_owner') \gexec
ALTER ROLE otv_audit_owner WITH NOLOGIN NOCREATEDB NOCREATEROLE;
SELECT 'REVOKE otv_audit_owner FROM otv_gateway'
 WHERE pg_has_role('otv_gateway', 'otv_audit_owner', 'MEMBER') \gexec
-- None of these roles may be a superuser (it would pass by every privilege above, and I5). NOSUPERUSER is
-- what CREATE ROLE gives; it is set only on a role that is a superuser nonetheless, as only a superuser
-- may touch that attribute: a managed service's administrator could not run the script otherwise.
SELECT format('ALTER ROLE %I NOSUPERUSER', rolname) FROM pg_roles
 WHERE rolsuper AND rolname IN ('otv_gateway', 'otv_catalog', 'otv_booking', 'otv_notifier', 'otv_reporting',
                                'otv_audit_owner') \gexec

-- --- the database -------------------------------------------------------------------------------------
-- CREATE DATABASE cannot run inside a DO block (no transaction allowed), hence \gexec.
SELECT format('CREATE DATABASE %I', :'db')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
\connect :"db"
SET client_min_messages = warning;

REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO otv_gateway, otv_catalog, otv_booking, otv_notifier, otv_reporting;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- booking's exclusion constraint (invariant I1) needs btree_gist for the equality on the service point.
CREATE EXTENSION IF NOT EXISTS btree_gist WITH SCHEMA public;

-- Verbatim the role_settings_sql() of scripts/setup.sh:
-- BEGIN role_settings_sql
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
-- END role_settings_sql

-- One schema per service, owned by its role: only the owner (and superusers) can use it, so no service
-- reads another's tables. No USAGE is granted on any other service's schema.
CREATE SCHEMA IF NOT EXISTS "gateway" AUTHORIZATION "otv_gateway";
ALTER SCHEMA "gateway" OWNER TO "otv_gateway";
REVOKE ALL ON SCHEMA "gateway" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_gateway";
CREATE SCHEMA IF NOT EXISTS "catalog" AUTHORIZATION "otv_catalog";
ALTER SCHEMA "catalog" OWNER TO "otv_catalog";
REVOKE ALL ON SCHEMA "catalog" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_catalog";
CREATE SCHEMA IF NOT EXISTS "booking" AUTHORIZATION "otv_booking";
ALTER SCHEMA "booking" OWNER TO "otv_booking";
REVOKE ALL ON SCHEMA "booking" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_booking";
CREATE SCHEMA IF NOT EXISTS "notifier" AUTHORIZATION "otv_notifier";
ALTER SCHEMA "notifier" OWNER TO "otv_notifier";
REVOKE ALL ON SCHEMA "notifier" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_notifier";
CREATE SCHEMA IF NOT EXISTS "reporting" AUTHORIZATION "otv_reporting";
ALTER SCHEMA "reporting" OWNER TO "otv_reporting";
REVOKE ALL ON SCHEMA "reporting" FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO "otv_reporting";

-- --- the gateway's audit log (issue 7, invariant I5) -----------------------------------------------------
-- Its own schema, owned by otv_audit_owner. The gateway's role may only read and append; a trigger refuses
-- UPDATE, DELETE and TRUNCATE even to the owner. The entries' client addresses are kept beside them, where
-- the gateway may only read them; a function of the owner deletes them after their retention period.
-- Verbatim the audit_log_sql() of scripts/setup.sh:
-- BEGIN audit_log_sql
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
-- END audit_log_sql
