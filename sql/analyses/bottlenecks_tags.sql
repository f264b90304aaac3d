-- Bottlenecks, part 1: each tag by volume, handling time and CSAT, so that
-- managers see which problems are frequent, slow and unloved.
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- UTC instants. Cohort rule: conversations *started* in the window; a
-- conversation counts once under each of its tags (the union of every
-- `conversation.tagged` it got).
--
-- One row per tag:
--   conversations         conversations with the tag
--   share                 of the tagged conversations in the window (the
--                         same population as support in bottlenecks_pairs.sql)
--   handling_n, handling_mean_s, handling_median_s, handling_p90_s
--                         handling duration (first customer message → last
--                         resolve) of those resolved now; median exact,
--                         p90 = percentile_cont (linear interpolation)
--   csat_n, csat_mean     scores (the last `csat.submitted`)
--   resolution_rate       share whose last status is resolved
-- Ordered by volume (conversations, descending), then tag.
WITH bounds AS (
    SELECT
        arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
        arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at
),
cohort AS (
    SELECT c.*
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
conversation_tags AS (
    SELECT *
    FROM (
        SELECT tenant_id, conversation_id, handling_s, csat_score, is_resolved, unnest(tags) AS tag
        FROM cohort
    )
    WHERE tag IS NOT NULL
),
tagged AS (
    SELECT count(DISTINCT tenant_id || '/' || conversation_id) AS tagged_n
    FROM conversation_tags
),
per_tag AS (
    SELECT
        tag,
        count(*) AS conversations,
        count(handling_s) AS handling_n,
        avg(handling_s) AS handling_mean_s,
        median(handling_s) AS handling_median_s,
        percentile_cont(handling_s, 0.9) AS handling_p90_s,
        count(csat_score) AS csat_n,
        avg(csat_score) AS csat_mean,
        count(*) FILTER (WHERE is_resolved) AS resolved_n
    FROM conversation_tags
    GROUP BY tag
)
SELECT
    p.tag,
    p.conversations,
    CAST(p.conversations AS DOUBLE) / NULLIF(t.tagged_n, 0) AS share,
    p.handling_n,
    p.handling_mean_s,
    p.handling_median_s,
    p.handling_p90_s,
    p.csat_n,
    p.csat_mean,
    CAST(p.resolved_n AS DOUBLE) / p.conversations AS resolution_rate
FROM per_tag p
CROSS JOIN tagged t
ORDER BY conversations DESC, tag
