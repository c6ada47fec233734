-- Failed staff sign-ins per account and client network (an IPv4 address, an IPv6 /64), so that wrong
-- passwords lock an account only for the network they came from: nobody elsewhere can lock out a
-- caseworker. All replicas of the gateway count together here. The sum over all networks is the
-- account-wide ceiling, beyond which `staff_accounts.locked_until` locks the account for everyone.
-- Rows older than the lock-out window count for nothing and are deleted (sign-in and the session purge):
-- the network, an address, is kept no longer than that.
CREATE TABLE staff_login_failures (
    account_id  uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    network     text NOT NULL CHECK (length(network) <= 64),
    failed_at   timestamptz NOT NULL
);
CREATE INDEX staff_login_failures_account ON staff_login_failures (account_id, network, failed_at);
CREATE INDEX staff_login_failures_failed_at ON staff_login_failures (failed_at);

-- `staff_accounts.failed_logins` (the count in a row of the former per-account lock) is no longer written;
-- kept while replicas of the previous version may still run during a rolling update.
