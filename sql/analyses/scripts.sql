-- Script optimization: CSAT and resolution rate by the quick reply and by
-- the template used in a conversation, so that managers keep the scripts
-- that work and rewrite the ones that do not.
--
-- Parameters: $1 = window start (inclusive), $2 = window end (exclusive),
-- UTC instants; $3 = the smallest number of CSAT scores a group needs not
-- to be flagged `small_sample` (the API's `min_count`, default 30).
--
-- Cohort rule: conversations *started* in the window, with the scripts
-- they used (`sql/views/script_uses.sql`: a message that carries the id
-- and is not a private note; automated messages count). A conversation
-- that used several counts once in each of their groups, so groups overlap
-- and this is an association, not an experiment: to learn whether a script
-- causes the difference, run it as a `quick_reply` experiment.
--
-- One row per (kind, key), kind `quick_reply` or `template`:
--   conversations            conversations that used it
--   csat_n, csat_mean        scores (the last `csat.submitted`) and their mean
--   csat_sd                  sample standard deviation of the scores (n - 1);
--                            the API adds the t interval of the mean,
--                            mean ± t(0.975, n - 1) · sd / √n, because SQL
--                            has no t quantile
--   top2_n, top2_share       scores of 4 or 5, share of csat_n
--   resolved_n, resolution_rate  conversations whose last status is resolved
--   *_low, *_high            95 % Wilson score interval of a rate:
--                            (p + z²/2n ± z·√(p(1-p)/n + z²/4n²)) / (1 + z²/n),
--                            z = 1.959963984540054; NULL when n = 0
--   small_sample             csat_n < $3: read its numbers as anecdotes
-- Ordered by kind, then best first: CSAT mean (groups without a score
-- last), resolution rate, conversations, key.
WITH bounds AS (
    SELECT
        arrow_cast($1, 'Timestamp(Microsecond, Some("UTC"))') AS from_at,
        arrow_cast($2, 'Timestamp(Microsecond, Some("UTC"))') AS to_at,
        arrow_cast($3, 'Int64') AS min_count,
        1.959963984540054 AS z
),
cohort AS (
    SELECT c.*
    FROM conversations c
    CROSS JOIN bounds b
    WHERE c.started_at >= b.from_at AND c.started_at < b.to_at
),
per_script AS (
    SELECT
        u.kind,
        u."key",
        count(*) AS conversations,
        count(c.csat_score) AS csat_n,
        avg(c.csat_score) AS csat_mean,
        stddev_samp(c.csat_score) AS csat_sd,
        count(*) FILTER (WHERE c.csat_score >= 4) AS top2_n,
        count(*) FILTER (WHERE c.is_resolved) AS resolved_n
    FROM script_uses u
    JOIN cohort c ON c.tenant_id = u.tenant_id AND c.conversation_id = u.conversation_id
    GROUP BY u.kind, u."key"
),
rates AS (
    SELECT
        g.*,
        CAST(g.top2_n AS DOUBLE) / NULLIF(g.csat_n, 0) AS top2_share,
        CAST(g.resolved_n AS DOUBLE) / NULLIF(g.conversations, 0) AS resolution_rate,
        CAST(NULLIF(g.csat_n, 0) AS DOUBLE) AS csat_nd,
        CAST(NULLIF(g.conversations, 0) AS DOUBLE) AS conv_nd,
        b.z,
        b.min_count
    FROM per_script g
    CROSS JOIN bounds b
)
SELECT
    kind,
    "key",
    conversations,
    csat_n,
    csat_mean,
    csat_sd,
    top2_n,
    top2_share,
    (top2_share + z * z / (2 * csat_nd)
        - z * sqrt(top2_share * (1 - top2_share) / csat_nd + z * z / (4 * csat_nd * csat_nd)))
        / (1 + z * z / csat_nd) AS top2_low,
    (top2_share + z * z / (2 * csat_nd)
        + z * sqrt(top2_share * (1 - top2_share) / csat_nd + z * z / (4 * csat_nd * csat_nd)))
        / (1 + z * z / csat_nd) AS top2_high,
    resolved_n,
    resolution_rate,
    (resolution_rate + z * z / (2 * conv_nd)
        - z * sqrt(resolution_rate * (1 - resolution_rate) / conv_nd + z * z / (4 * conv_nd * conv_nd)))
        / (1 + z * z / conv_nd) AS resolution_low,
    (resolution_rate + z * z / (2 * conv_nd)
        + z * sqrt(resolution_rate * (1 - resolution_rate) / conv_nd + z * z / (4 * conv_nd * conv_nd)))
        / (1 + z * z / conv_nd) AS resolution_high,
    csat_n < min_count AS small_sample
FROM rates
ORDER BY kind, csat_mean DESC NULLS LAST, resolution_rate DESC, conversations DESC, "key"
