-- agent_sessions: one row per online interval of an agent, from
-- `agent.status_changed`. An interval starts at a change to `online` and
-- ends at the agent's next status change of any kind (`away`, `offline`,
-- or a repeated `online`, which starts the next interval, so consecutive
-- `online` events split one interval without losing time). An interval
-- with no later change is still open: `ended_at` and `online_s` are NULL;
-- queries clip it to their window (see sql/kpis/overview.sql).
-- `team` is the team on the `online` event, else the agent's last team
-- named before it.
CREATE VIEW agent_sessions AS
WITH changes AS (
    SELECT
        tenant_id,
        agent_id,
        occurred_at,
        status,
        coalesce(
            team,
            last_value(team) IGNORE NULLS OVER (
                PARTITION BY tenant_id, agent_id ORDER BY occurred_at, event_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            )
        ) AS team,
        lead(occurred_at) OVER (PARTITION BY tenant_id, agent_id ORDER BY occurred_at, event_id) AS next_at,
        lead(status) OVER (PARTITION BY tenant_id, agent_id ORDER BY occurred_at, event_id) AS next_status
    FROM events
    WHERE type = 'agent.status_changed'
)
SELECT
    tenant_id,
    agent_id,
    team,
    occurred_at AS started_at,
    next_at AS ended_at,
    next_status AS ended_by_status,
    (arrow_cast(next_at, 'Int64') - arrow_cast(occurred_at, 'Int64')) / 1000000.0 AS online_s
FROM changes
WHERE status = 'online'
