-- Staff accounts and their role grants per location (R28-R32, R46; invariant I5).

CREATE TABLE staff_accounts (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username            text NOT NULL CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    display_name        text NOT NULL DEFAULT '',
    -- argon2id (argon2-cffi's encoded form, parameters and salt included); never a plain password.
    password_hash       text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    -- Set for accounts an administrator created with a start password: the first login must change it.
    must_change_password boolean NOT NULL DEFAULT false,
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        timestamptz,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL,
    last_login_at       timestamptz,
    -- Demo accounts come only from `load-demo` (never in production); marked so that they can be found.
    demo                boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX staff_accounts_username ON staff_accounts (username);

-- One row per role and location ('*' = every location); `groups` narrows a group leader's grant to some
-- service point groups of that location (empty: all of them).
CREATE TABLE staff_grants (
    account_id  uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    role        text NOT NULL CHECK (role IN ('appointment_manager', 'group_leader', 'location_admin',
                                              'admin', 'statistics', 'audit')),
    location    text NOT NULL CHECK (location ~ '^([a-z0-9][a-z0-9-]{0,62}|\*)$'),
    groups      text[] NOT NULL DEFAULT '{}',
    granted_at  timestamptz NOT NULL,
    granted_by  text NOT NULL,
    PRIMARY KEY (account_id, role, location)
);

-- Server-side sessions (the cookie holds a random id; only its SHA-256 is stored).
CREATE TABLE staff_sessions (
    id_hash       bytea PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    -- The absolute end; the idle end is last_seen_at + the configured idle timeout.
    expires_at    timestamptz NOT NULL
);
CREATE INDEX staff_sessions_account ON staff_sessions (account_id);
CREATE INDEX staff_sessions_expires ON staff_sessions (expires_at);
