-- R38 with R39: a hold is renewable, but one client holds one slot for at most OTV_HOLD_MAX_MINUTES in one
-- go. `held_since` is when that began: a renewal, and a hold of the same slot taken again by its holder
-- (`renews`, or the same client network) while the last one ended less than a hold time ago, keep it.
-- NULL (holds placed before this release, waiting-list offers): `created_at`. `client_network` is the /24
-- or /48 prefix (R48), never the address; the rows are tidied away an hour after they expire.
ALTER TABLE holds ADD COLUMN held_since timestamptz;
ALTER TABLE holds ADD COLUMN client_network text;
