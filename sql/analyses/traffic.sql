-- Traffic: when conversations arrive and how long customers wait, as a
-- weekday × hour heatmap in the tenant's reporting time zone, for staffing
-- and shift planning.
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- UTC instants. The time zone is `tenant_settings.time_zone` (UTC unless
-- the tenant set its own), so the cells are
-- local wall-clock hours: on the night clocks go back, the repeated hour
-- collects both of its real hours; on the night they go forward, the
-- skipped hour has no conversations.
--
-- Cohort rule: conversations *started* in the window, placed in the cell
-- of their local start.
--
-- One row per cell with at least one conversation (the API fills in the
-- empty cells of the 7 × 24 grid):
--   weekday          ISO day of the week, 1 = Monday … 7 = Sunday
--   hour             0 … 23, local
--   conversations    conversations started in the cell
--   wait_n           of those, conversations whose first customer message
--                    got a reply (FRT: first customer message → first
--                    public, non-automated reply by bot or agent)
--   wait_mean_s, wait_median_s, wait_p90_s   that waiting time, seconds
WITH bounds AS (
    SELECT
        arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
        arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at
),
local_starts AS (
    SELECT local_time(c.started_at, (SELECT time_zone FROM tenant_settings)) AS local_started_at, c.frt_s
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
cells AS (
    SELECT
        date_part('isodow', local_started_at) AS weekday,
        date_part('hour', local_started_at) AS "hour",
        frt_s
    FROM local_starts
)
SELECT
    weekday,
    "hour",
    count(*) AS conversations,
    count(frt_s) AS wait_n,
    avg(frt_s) AS wait_mean_s,
    median(frt_s) AS wait_median_s,
    percentile_cont(frt_s, 0.9) AS wait_p90_s
FROM cells
GROUP BY weekday, "hour"
ORDER BY weekday, "hour"
