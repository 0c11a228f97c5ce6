-- Traffic history is bounded (issue 18): the hours of ``traffic_hourly`` older than 90 days fold
-- into one row per container and day here (service/traffic/history.py, once an hour in the
-- scheduler), and a day is deleted once it is more than 400 days old. ``day`` is the host's local
-- date, 'YYYY-MM-DD', as the traffic reports count days; rx = received by the container.
-- WITHOUT ROWID: the rows live in the primary key's b-tree, stored once.
CREATE TABLE traffic_daily (
    container_name TEXT NOT NULL,
    day            TEXT NOT NULL,
    rx_bytes       INTEGER NOT NULL DEFAULT 0,
    tx_bytes       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (container_name, day)
) WITHOUT ROWID;
