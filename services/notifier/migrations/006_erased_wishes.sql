-- An erased wish (Art. 17 GDPR, R34) leaves a row without personal data behind: an event of the wish that
-- arrives late (published before the erasure, delivered after it, or repeated) must not bring its name,
-- address or link back, nor plan a mail to a person who asked to be forgotten. Deleted by the retention
-- job once no event of that age can arrive any more.
ALTER TABLE waiting_wishes ADD COLUMN erased_at timestamptz;
CREATE INDEX waiting_wishes_erased ON waiting_wishes (erased_at) WHERE erased_at IS NOT NULL;
