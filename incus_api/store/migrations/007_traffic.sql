-- Monthly traffic per container (issue 13), counted on the host by the service's own nftables
-- counters (traffic/counters.py) and sampled every TRAFFIC_INTERVAL seconds.

-- The last kernel counter values seen per container, so a sample adds only what is new and a
-- service restart neither loses nor double-counts. ``epoch`` names the kernel table the values
-- belong to (boot id + table handle): another epoch means the counters started again from zero.
CREATE TABLE traffic_counters (
    container_name TEXT PRIMARY KEY,
    epoch          TEXT NOT NULL,
    rx_seen        INTEGER NOT NULL DEFAULT 0,
    tx_seen        INTEGER NOT NULL DEFAULT 0
);

-- Hourly totals (hour: UTC, 'YYYY-MM-DDTHH:00:00Z'); rx = received by the container.
CREATE TABLE traffic_hourly (
    container_name TEXT NOT NULL,
    hour           TEXT NOT NULL,
    rx_bytes       INTEGER NOT NULL DEFAULT 0,
    tx_bytes       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (container_name, hour)
);

-- Each container's plan and current period: the quota (NULL: unlimited), the day of the month the
-- period starts again, what counts against the quota and what happens past it; the period's totals
-- and the action taken in it (NULL, 'throttle' or 'suspend'), with the NIC limits a throttle
-- replaced, to put back at the reset.
CREATE TABLE traffic_plans (
    container_name TEXT PRIMARY KEY,
    quota_bytes    INTEGER,
    reset_day      INTEGER NOT NULL CHECK (reset_day BETWEEN 1 AND 28),
    direction      TEXT NOT NULL DEFAULT 'both' CHECK (direction IN ('both', 'out', 'in', 'max')),
    action         TEXT NOT NULL DEFAULT 'throttle' CHECK (action IN ('throttle', 'suspend')),
    period_start   TEXT NOT NULL,
    period_rx      INTEGER NOT NULL DEFAULT 0,
    period_tx      INTEGER NOT NULL DEFAULT 0,
    enforced       TEXT CHECK (enforced IN ('throttle', 'suspend')),
    enforced_at    TEXT,
    saved_limits   TEXT
);

-- Why a container is suspended: 'billing' (the API's or the dashboard's suspend) or 'traffic' (its
-- quota ran out with traffic_action=suspend). A traffic reset unsuspends only the latter, so it never
-- lifts a suspension for non-payment.
ALTER TABLE suspended ADD COLUMN reason TEXT NOT NULL DEFAULT 'billing';
