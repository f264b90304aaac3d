//! Which tenant a request is about.
//!
//! A tenant-scoped key always means its own tenant; a `tenant=` parameter
//! naming another one is refused rather than ignored, so a client never
//! mistakes its own tenant's numbers for someone else's. A platform-wide
//! key (`*`) must name the tenant: there is no "all tenants" answer.

use serde_json::json;

pub use model::TenantId;

use crate::error::ServiceError;
use crate::keys::{Principal, TenantScope};

/// The tenant a request reads or writes: the key's own, or for a
/// platform-wide key the one named by `tenant=`.
pub fn resolve_tenant(principal: &Principal, requested: Option<&str>) -> Result<TenantId, ServiceError> {
    let parse = |s: &str| {
        TenantId::parse(s).ok_or_else(|| {
            ServiceError::bad_request(
                "invalid-parameter",
                format!("tenant: {s:?} is not a tenant id; tenant ids match [a-z0-9_-]{{1,64}}"),
            )
            .with_extra(json!({ "parameter": "tenant" }))
        })
    };
    match (&principal.tenant, requested) {
        (TenantScope::All, Some(t)) => parse(t),
        (TenantScope::All, None) => Err(ServiceError::bad_request(
            "invalid-parameter",
            "tenant: this key is platform-wide; name the tenant, e.g. ?tenant=acme",
        )
        .with_extra(json!({ "parameter": "tenant" }))),
        (TenantScope::One(own), None) => parse(own),
        (TenantScope::One(own), Some(t)) if t == own => parse(own),
        (TenantScope::One(own), Some(t)) => Err(ServiceError::forbidden(format!(
            "this key is for tenant {own}; it cannot read tenant {t}. Leave out tenant= or use a key of that tenant"
        ))),
    }
}
