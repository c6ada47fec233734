-- A closure may leave some service points (R20: an unplanned absence, or a mass change that keeps
-- n points of a day): 0 closes the location or group on those days; n > 0 restricts them to points 1..n.
ALTER TABLE closures
    ADD COLUMN service_points_left integer NOT NULL DEFAULT 0
        CHECK (service_points_left BETWEEN 0 AND 200);
