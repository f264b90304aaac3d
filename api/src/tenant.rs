//! Which tenant a request is about.
//!
//! A tenant-scoped key always means its own tenant; a `tenant=` parameter
//! naming another one is refused rather than ignored, so a client never
//! mistakes its own tenant's numbers for someone else's. A platform-wide
//! key (`*`) must name the tenant: there is no "all tenants" answer.

use std::fmt;

use serde_json::json;

use crate::keys::{Principal, TenantScope};
use crate::problem::Problem;

/// A validated tenant id, `[a-z0-9_-]{1,64}` (event contract v1). Safe to
/// put into a file name or a SQL string literal as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Option<TenantId> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| TenantId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant a request reads or writes: the key's own, or for a
/// platform-wide key the one named by `tenant=`.
pub fn resolve_tenant(principal: &Principal, requested: Option<&str>) -> Result<TenantId, Problem> {
    let parse = |s: &str| {
        TenantId::parse(s).ok_or_else(|| {
            Problem::bad_request(
                "invalid-parameter",
                format!("tenant: {s:?} is not a tenant id; tenant ids match [a-z0-9_-]{{1,64}}"),
            )
            .with_extra(json!({ "parameter": "tenant" }))
        })
    };
    match (&principal.tenant, requested) {
        (TenantScope::All, Some(t)) => parse(t),
        (TenantScope::All, None) => Err(Problem::bad_request(
            "invalid-parameter",
            "tenant: this key is platform-wide; name the tenant, e.g. ?tenant=acme",
        )
        .with_extra(json!({ "parameter": "tenant" }))),
        (TenantScope::One(own), None) => parse(own),
        (TenantScope::One(own), Some(t)) if t == own => parse(own),
        (TenantScope::One(own), Some(t)) => Err(Problem::forbidden(format!(
            "this key is for tenant {own}; it cannot read tenant {t}. Leave out tenant= or use a key of that tenant"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_ids_follow_the_contract() {
        assert!(TenantId::parse("acme").is_some());
        assert!(TenantId::parse("a-b_9").is_some());
        assert!(TenantId::parse("").is_none());
        assert!(TenantId::parse("Acme").is_none());
        assert!(TenantId::parse("a'b").is_none());
        assert!(TenantId::parse("../x").is_none());
        assert!(TenantId::parse(&"a".repeat(65)).is_none());
    }
}
