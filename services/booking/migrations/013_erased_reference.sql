-- R34: an erased appointment keeps neither its reference nor the interpreter's language. The reference is in
-- every mail the customer has and led staff to the file (place, time, concern, outcome) after the erasure;
-- the language may tell where the customer comes from (the gateway and reporting treat it as personal data).
-- From now on the erasure replaces both (services/booking/retention.py, ERASE_CUSTOMER); this does the same
-- for the appointments erased before (their address is empty). Row locks only: the table stays usable.
UPDATE appointments
   SET reference = 'GELÖSCHT ' || upper(substr(md5(gen_random_uuid()::text), 1, 16)),
       interpreter_language = CASE WHEN interpreter_language IS NULL THEN NULL ELSE 'erforderlich' END
 WHERE email = '' AND reference NOT LIKE 'GELÖSCHT %';
