-- Staff pages and the admin API address an account by its opaque id (R34: a username names the employee,
-- and an address stays in the browser's history, access logs and Referer headers). The admin API still
-- takes a username in the same place for existing clients (deprecated), so no username may have the
-- shape of an id: a segment of that shape is always the id (services/gateway/staff/domain.py ACCOUNT_ID).
-- An existing account with such a name stops this migration with its id (never its name): rename it first.
DO $$
DECLARE
    clash uuid;
BEGIN
    SELECT id INTO clash FROM staff_accounts
     WHERE username ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' LIMIT 1;
    IF clash IS NOT NULL THEN
        RAISE EXCEPTION 'staff account % has a username in the shape of an account id: rename it first', clash;
    END IF;
END $$;
ALTER TABLE staff_accounts ADD CONSTRAINT staff_accounts_username_not_an_id
    CHECK (username !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
