-- Peak hours: conversations started per weekday and hour (UTC; shift with
-- `AT TIME ZONE` for a local view), with the median first response time.
-- The 10 busiest weekday-hours first.
SELECT
    date_part('dow', started_at) AS weekday,
    date_part('hour', started_at) AS hour,
    count(*) AS conversations,
    round(median(frt_s), 1) AS frt_median_s
FROM conversations
WHERE started_at IS NOT NULL
GROUP BY 1, 2
ORDER BY conversations DESC, weekday, hour
LIMIT 10
