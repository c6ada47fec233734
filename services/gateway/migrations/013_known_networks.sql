-- The client networks (`proxy.lockout_network`: an IPv4 address, an IPv6 /56) each staff account signed in
-- from successfully, with the last time. The account-wide lock after a distributed guess spares them, so
-- that a stranger cannot lock out a caseworker who signs in from a network they used before.
-- Personal data of the staff member (where they work from): a row is deleted 30 days after its last
-- successful sign-in by the periodic session purge, and with the account.
CREATE TABLE staff_known_networks (
    account_id       uuid NOT NULL REFERENCES staff_accounts (id) ON DELETE CASCADE,
    network          text NOT NULL CHECK (length(network) <= 64),
    last_success_at  timestamptz NOT NULL,
    PRIMARY KEY (account_id, network)
);
CREATE INDEX staff_known_networks_last_success_at ON staff_known_networks (last_success_at);
