-- Channel comparison: volume, conversion, CSAT and first response time per
-- channel, with each channel's share of conversations. Works on any time
-- range: add `WHERE started_at >= TIMESTAMP '2026-03-01T00:00:00Z'`.
SELECT
    channel,
    count(*) AS conversations,
    round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS share_pct,
    round(100.0 * avg(CASE WHEN converted THEN 1.0 ELSE 0.0 END), 2) AS conversion_pct,
    round(avg(csat_score), 2) AS csat_mean,
    count(csat_score) AS csat_n,
    round(median(frt_s), 1) AS frt_median_s,
    round(approx_percentile_cont(frt_s, 0.9), 1) AS frt_p90_s
FROM conversations
WHERE started_at IS NOT NULL
GROUP BY channel
ORDER BY conversations DESC, channel
