-- A customer who lost the confirmation mail asks for the manage link again (R41): the appointment gets a
-- new manage token. `link_renewed_at` limits how often one appointment's link is renewed; the index finds
-- the booked appointments of an address without reading the table.
ALTER TABLE appointments ADD COLUMN link_renewed_at timestamptz;
CREATE INDEX appointments_booked_by_address ON appointments (lower(email)) WHERE status = 'booked';
