-- The revision of the event that brought the copy's manage link (`link_revision`), so that a link arriving
-- late is still kept when it is newer than the one the copy has: a staff address correction (new token)
-- overtaken by a staff move (no token) must not leave the dead link of the old address in every later
-- mail. And when the customer's data were erased (`erased_at`): no late event brings a link back.
ALTER TABLE appointments ADD COLUMN link_revision integer NOT NULL DEFAULT 0;
ALTER TABLE appointments ADD COLUMN erased_at timestamptz;
UPDATE appointments SET link_revision = revision WHERE manage_url IS NOT NULL;
