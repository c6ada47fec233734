-- API keys of the service centre and other systems (R37, R50). The key is shown once; only the SHA-256
-- of its random 256-bit secret is stored, found by a short public prefix.

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[a-z0-9]{8,16}$'),
    secret_hash   bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    -- Location ids, or '{*}' for all.
    locations     text[] NOT NULL CHECK (cardinality(locations) > 0),
    operations    text[] NOT NULL CHECK (cardinality(operations) > 0),
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,
    last_used_at  timestamptz
);
