-- The notifier's own tables: an order-tolerant copy of each appointment's state, the outgoing mail with
-- its delivery state, the bounce suppression list and the administrators' text overrides.

-- Only what ordering needs (revision, status, times): no personal data. The data a mail shows travel
-- with the mail row and are wiped once the mail is done (R34).
CREATE TABLE appointments (
    id             uuid PRIMARY KEY,
    revision       integer NOT NULL,
    status         text NOT NULL,
    start_at       timestamptz NOT NULL,
    end_at         timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mails (
    id               uuid PRIMARY KEY,
    appointment_id   uuid NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('confirmation', 'reminder', 'reschedule', 'cancellation')),
    -- The appointment revision the mail is about; one mail of a kind per revision, whatever the
    -- producer repeats (I3 beyond the inbox).
    revision         integer NOT NULL,
    language         text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'failed', 'suppressed', 'cancelled')),
    -- When it may go out (a reminder: 24 elapsed hours before the start; a retry: after its back-off).
    due_at           timestamptz NOT NULL,
    -- After this it is given up (a reminder: the start of the appointment).
    deadline         timestamptz NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    -- The lease of the sender that works on it; another sender takes over once it has expired (I7).
    claim_token      uuid,
    claimed_until    timestamptz,
    -- Personal data, kept only while the mail is pending (wiped when it is done, R34).
    recipient        text,
    payload          jsonb,
    recipient_hash   text NOT NULL,
    correlation_id   text NOT NULL,
    -- A class, never a server's text (that can echo the address): rejected, expired, suppressed, ...
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    finished_at      timestamptz,
    UNIQUE (appointment_id, kind, revision)
);
CREATE INDEX mails_due ON mails (due_at) WHERE status = 'pending';
CREATE INDEX mails_appointment ON mails (appointment_id);

-- Wake the senders of every replica at once when a mail is planned (the confirmation goes out within
-- a second or two of the booking).
CREATE FUNCTION mails_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_mail', '');
    RETURN NULL;
END $$;
CREATE TRIGGER mails_notify AFTER INSERT ON mails
    FOR EACH STATEMENT EXECUTE FUNCTION mails_notify();

-- Addresses that a mail server refused permanently (5xx at RCPT): only a keyed hash of the address.
CREATE TABLE suppressions (
    recipient_hash   text PRIMARY KEY,
    reason           text NOT NULL,
    mail_id          uuid,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- Administrators' versions of the mail texts (R10); without a row the shipped default applies.
CREATE TABLE mail_templates (
    kind             text NOT NULL,
    language         text NOT NULL,
    subject          text NOT NULL,
    body_text        text NOT NULL,
    body_html        text NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, language)
);
