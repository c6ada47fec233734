-- The revision of the latest change of the appointment's state (booked, moved, handed over, cancelled) that
-- the notifier has seen. An event overtaken by a newer revision (a staff move that arrives after the link
-- renewal made after it) still sends its own mail if no change of state at or after it was seen, so the
-- mails about the state go out in the order of their revisions and none is lost. The copies made before
-- this column count as changed at their revision: events arriving late for them are dropped as before.
ALTER TABLE appointments ADD COLUMN state_revision integer NOT NULL DEFAULT 0;
UPDATE appointments SET state_revision = revision;
