-- Script effect on CSAT: for each quick reply, the CSAT of conversations
-- that used it against those that did not (same tenant, same period).
-- An association, not an experiment: to learn the causal effect run a
-- `quick_reply` experiment.
WITH used AS (
    SELECT DISTINCT conversation_id, quick_reply_id
    FROM messages
    WHERE quick_reply_id IS NOT NULL AND NOT private
),
scored AS (
    SELECT conversation_id, csat_score FROM conversations WHERE csat_score IS NOT NULL
)
SELECT
    u.quick_reply_id,
    count(*) AS csat_n,
    round(avg(s.csat_score), 3) AS csat_with,
    round((SELECT avg(csat_score) FROM scored), 3) AS csat_all,
    round(avg(s.csat_score) - (SELECT avg(csat_score) FROM scored), 3) AS difference
FROM used u
JOIN scored s ON s.conversation_id = u.conversation_id
GROUP BY u.quick_reply_id
HAVING count(*) >= 5
ORDER BY difference DESC, u.quick_reply_id
