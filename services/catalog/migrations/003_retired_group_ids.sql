-- A deleted group's id stays bound to its location: the gateway keeps which location a group id belongs
-- to (its authorisation of /api/v1/admin/groups/{id}), and booking and reporting keep appointments under
-- it. The id may come back at the same location, never at another.
CREATE TABLE retired_group_ids (
    id           text PRIMARY KEY,
    location_id  text NOT NULL REFERENCES locations (id),
    retired_at   timestamptz NOT NULL DEFAULT now()
);
