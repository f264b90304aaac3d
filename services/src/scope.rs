//! The conversations a key reaches inside its tenant, as filters forced
//! onto every query that reads conversations.
//!
//! DESIGN.md gives a supervisor its team's data and an agent its own
//! conversations. A key carries that scope ([`ConversationScope`], set at
//! creation); this module is the one place that turns it into constraints:
//! `team = T` for a supervisor key, `agent = A` (the conversation's last
//! agent, `agent_id` of the `conversations` view) for an agent key, nothing
//! for the other roles. Every route a scoped key may call applies it
//! server-side before any SQL runs: `/v1/kpis`, `/v1/analyses/*`, the
//! conversation export, the forecasts (the queue gets `team:T`) and the
//! dashboard pages (the overview directly, the other pages through those
//! handlers).
//!
//! A caller's own filter on the scoped dimension is **refused (403)** when
//! it names anything but the key's value, rather than intersected: an
//! intersection would answer `team=other` with an empty result that reads
//! as "that team had no conversations". Naming the key's own value is
//! fine, and filters on other dimensions narrow within the scope. A
//! supervisor or agent key stored before keys carried a scope
//! ([`ConversationScope::Unassigned`]) reaches no conversations: 403.

use serde_json::json;

use crate::error::ServiceError;
use crate::forecasts::lake::{Dimension as QueueDimension, QueueKey};
use crate::keys::{ConversationScope, Principal};
use crate::kpis::lake::Constraint;
use crate::kpis::params::Dimension;

/// The dimension and value the key's scope forces; `None` for the tenant.
fn forced(principal: &Principal) -> Result<Option<(Dimension, &str)>, ServiceError> {
    match &principal.conversations {
        ConversationScope::Tenant => Ok(None),
        ConversationScope::Team(team) => Ok(Some((Dimension::Team, team))),
        ConversationScope::Agent(agent) => Ok(Some((Dimension::Agent, agent))),
        ConversationScope::Unassigned => Err(ServiceError::forbidden(format!(
            "this {role} key was created before keys carried a team or an agent, so it reaches no \
             conversations; create a new {role} key with a team (supervisor) or agent_id (agent)",
            role = principal.role
        ))),
    }
}

/// The 403 for a request that names another value of the scoped
/// dimension in `parameter`.
fn wider_than_scope(dimension: Dimension, own: &str, asked: &str, parameter: &str) -> ServiceError {
    let name = dimension.name();
    ServiceError::forbidden(format!(
        "this key reaches the conversations of {name} {own} only; the request asks for {name} {asked}. \
         Leave the {name} out (the key's is applied) or use a key with a wider scope"
    ))
    .with_extra(json!({ "parameter": parameter }))
}

/// `filters` (a request's own) with the key's scope forced on them: the
/// scoped dimension is set to the key's value, first; a filter of the
/// caller's that names another value of it is a 403.
pub fn scoped_filters(principal: &Principal, mut filters: Vec<Constraint>) -> Result<Vec<Constraint>, ServiceError> {
    let Some((dimension, own)) = forced(principal)? else {
        return Ok(filters);
    };
    for c in filters.iter().filter(|c| c.dimension == dimension) {
        let other = match &c.values {
            Some(values) => values.iter().find(|v| *v != own).map(String::as_str),
            None => Some("(none)"),
        };
        if let Some(asked) = other {
            return Err(wider_than_scope(dimension, own, asked, dimension.name()));
        }
    }
    filters.retain(|c| c.dimension != dimension);
    filters.insert(
        0,
        Constraint {
            dimension,
            values: Some(vec![own.to_string()]),
        },
    );
    Ok(filters)
}

/// A forecast queue under the key's scope: a supervisor's gets `team:T`
/// (another team is a 403); an agent key forecasts nothing (queues are
/// not per agent).
pub fn scoped_queue(principal: &Principal, mut key: QueueKey) -> Result<QueueKey, ServiceError> {
    match forced(principal)? {
        None => Ok(key),
        Some((Dimension::Team, own)) => {
            if let Some((_, asked)) = key.parts.iter().find(|(d, v)| *d == QueueDimension::Team && v != own) {
                return Err(wider_than_scope(Dimension::Team, own, asked, "queue"));
            }
            key.parts.retain(|(d, _)| *d != QueueDimension::Team);
            key.parts.push((QueueDimension::Team, own.to_string()));
            key.parts.sort_by_key(|(d, _)| d.queue_rank());
            Ok(key)
        }
        Some((dimension, _)) => Err(ServiceError::forbidden(format!(
            "forecasts are per queue; a key scoped to one {} has none",
            dimension.name()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Role, TenantScope};

    fn key(role: Role, conversations: ConversationScope) -> Principal {
        Principal {
            key_id: "k".into(),
            tenant: TenantScope::One("acme".into()),
            role,
            conversations,
        }
    }

    fn filter(dimension: Dimension, values: &[&str]) -> Constraint {
        Constraint {
            dimension,
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn a_scope_is_forced_and_cannot_be_widened() {
        let sup = key(Role::Supervisor, ConversationScope::Team("t1".into()));
        let channel = filter(Dimension::Channel, &["line"]);
        assert_eq!(
            scoped_filters(&sup, vec![channel.clone()]).ok(),
            Some(vec![filter(Dimension::Team, &["t1"]), channel.clone()])
        );
        assert_eq!(
            scoped_filters(&sup, vec![filter(Dimension::Team, &["t1"])]).ok(),
            Some(vec![filter(Dimension::Team, &["t1"])])
        );
        for asked in [&["t2"][..], &["t1", "t2"]] {
            let p = scoped_filters(&sup, vec![filter(Dimension::Team, asked)]).err();
            assert_eq!(p.map(|p| p.status.as_u16()), Some(403), "team={asked:?}");
        }
        let agent = key(Role::Agent, ConversationScope::Agent("a1".into()));
        assert_eq!(
            scoped_filters(&agent, vec![filter(Dimension::Team, &["t2"])]).ok(),
            Some(vec![
                filter(Dimension::Agent, &["a1"]),
                filter(Dimension::Team, &["t2"])
            ]),
            "other dimensions narrow within the scope"
        );
        assert!(scoped_filters(&agent, vec![filter(Dimension::Agent, &["a2"])]).is_err());

        let analyst = key(Role::Analyst, ConversationScope::Tenant);
        assert_eq!(
            scoped_filters(&analyst, vec![channel.clone()]).ok(),
            Some(vec![channel])
        );
        let old = key(Role::Supervisor, ConversationScope::Unassigned);
        assert!(scoped_filters(&old, Vec::new()).is_err());
    }

    #[test]
    fn a_supervisors_forecast_queue_is_its_team() {
        let sup = key(Role::Supervisor, ConversationScope::Team("billing".into()));
        let q = |s: &str| QueueKey::parse(s).unwrap_or_else(|e| panic!("{e}"));
        let scoped = |s: &str| scoped_queue(&sup, q(s)).map(|k| k.canonical());
        assert_eq!(scoped("*").ok().as_deref(), Some("team:billing"));
        assert_eq!(
            scoped("channel:line,language:en").ok().as_deref(),
            Some("channel:line,language:en,team:billing")
        );
        assert_eq!(
            scoped("team:billing,channel:line").ok().as_deref(),
            Some("channel:line,team:billing")
        );
        assert!(scoped("team:sales").is_err());
        let agent = key(Role::Agent, ConversationScope::Agent("a1".into()));
        assert!(scoped_queue(&agent, q("*")).is_err());
        let service = key(Role::Service, ConversationScope::Tenant);
        assert_eq!(scoped_queue(&service, q("*")).ok(), Some(q("*")));
    }
}
