-- The German name of every concern a catalogue snapshot has named (R22, R35). A snapshot holds only the
-- concerns a location offers now, and an appointment carries the name in the customer's language: the
-- day list and the statistics name a concern no longer offered with this. A snapshot never removes a
-- row; the newest name wins. No personal data.
CREATE TABLE concern_names (
    concern_id  text PRIMARY KEY,
    name        text NOT NULL,
    named_at    timestamptz NOT NULL
);

-- What the snapshots kept so far name (a concern withdrawn before this version is not among them).
INSERT INTO concern_names (concern_id, name, named_at)
SELECT DISTINCT ON (c->>'concern_id')
       c->>'concern_id',
       coalesce(
           nullif(CASE jsonb_typeof(c->'name') WHEN 'object' THEN c->'name'->>'de' ELSE c->>'name' END, ''),
           c->>'concern_id'
       ),
       l.configured_at
FROM locations l, jsonb_array_elements(l.snapshot->'concerns') AS c
WHERE c->>'concern_id' IS NOT NULL
ORDER BY c->>'concern_id', l.configured_at DESC;
