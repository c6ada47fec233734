-- A change of the appointment's state (a move, a hand-over, a cancellation) cancels the mails still waiting
-- that tell the earlier state. One that a sender is delivering at that moment stays with the sender and is
-- marked here with the revision that made it wrong: should its delivery fail for now, it is cancelled
-- instead of tried again (the retry would arrive after the newer mail); delivered, it stays delivered.
ALTER TABLE mails ADD COLUMN superseded_by integer;
