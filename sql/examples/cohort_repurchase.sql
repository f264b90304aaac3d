-- Cohort repurchase: customers by the week of their first order, and how
-- many of them ordered again within 7 and 14 days of that first order.
WITH firsts AS (
    SELECT customer_id, min(placed_at) AS first_at
    FROM orders
    WHERE customer_id IS NOT NULL
    GROUP BY customer_id
),
again AS (
    SELECT f.customer_id, f.first_at, min(o.placed_at) AS next_at
    FROM firsts f
    LEFT JOIN orders o ON o.customer_id = f.customer_id AND o.placed_at > f.first_at
    GROUP BY f.customer_id, f.first_at
)
SELECT
    CAST(date_trunc('week', first_at) AS DATE) AS cohort_week,
    count(*) AS customers,
    sum(CASE WHEN next_at <= first_at + INTERVAL '7 days' THEN 1 ELSE 0 END) AS repurchased_7d,
    sum(CASE WHEN next_at <= first_at + INTERVAL '14 days' THEN 1 ELSE 0 END) AS repurchased_14d
FROM again
GROUP BY 1
ORDER BY 1
