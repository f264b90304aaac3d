//! Admin routes: API keys (`/v1/keys`) and the audit log (`/v1/audit`).
//!
//! Only `admin` keys reach them. A tenant's admin sees and manages the keys
//! and audit records of its own tenant; a platform-wide (`*`) admin those
//! of every tenant, and the only one that may create or touch `*` keys.
//! Every change is audited (`key.create`, `key.rotate`, `key.revoke`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::problem::Problem;
use crate::state::AppState;
use services::audit::{self, Entry};
use services::keys::{KeyError, KeyRecord, NewKey, Principal, Role, TenantScope};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/keys", get(list_keys).post(create_key))
        .route("/v1/keys/{id}", axum::routing::delete(revoke_key))
        .route("/v1/keys/{id}/rotate", post(rotate_key))
        .route("/v1/audit", get(get_audit))
}

fn require_admin(p: &Principal, what: &str) -> Result<(), Problem> {
    Ok(services::keys::require_role(p, &[Role::Admin], what)?)
}

/// The public view of a key: never the secret, never its hash.
fn key_json(k: &KeyRecord) -> Value {
    json!({
        "id": k.id,
        "tenant": k.tenant,
        "role": k.role,
        "team": k.team,
        "agent_id": k.agent_id,
        "label": k.label,
        "created_at": k.created_at,
        "expires_at": k.expires_at,
        "last_used_at": k.last_used_at,
        "revoked": k.revoked_at.is_some(),
        "revoked_at": k.revoked_at,
        "rotated_from": k.rotated_from,
    })
}

fn key_problem(e: KeyError) -> Problem {
    match e {
        KeyError::NotFound(id) => Problem::new(
            StatusCode::NOT_FOUND,
            "key-not-found",
            "Key not found",
            format!("no key with id {id} that this key may manage; list them with GET /v1/keys"),
        ),
        KeyError::AlreadyRevoked(id) => Problem::new(
            StatusCode::CONFLICT,
            "key-revoked",
            "Key already revoked",
            format!("key {id} is revoked; create a new key instead"),
        ),
        e @ (KeyError::BadTenant(_)
        | KeyError::ExpiryInPast(_)
        | KeyError::MissingScope { .. }
        | KeyError::ScopeNotForRole { .. }
        | KeyError::BadScope { .. }) => {
            let field = e.field();
            Problem::bad_request("invalid-parameter", e.to_string()).with_extra(json!({ "parameter": field }))
        }
        e @ KeyError::Store { .. } => {
            tracing::error!(error = %e, "key store");
            Problem::internal(e.to_string())
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, KeyError> + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(key_problem)
}

/// Whether `p` may manage a key of `tenant`.
fn manages(p: &Principal, tenant: &str) -> bool {
    match &p.tenant {
        TenantScope::All => true,
        TenantScope::One(t) => t == tenant,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    tenant: Option<String>,
    role: String,
    label: Option<String>,
    expires_in_days: Option<u32>,
    expires_at: Option<String>,
    /// Required for supervisor keys: the team whose conversations it reaches.
    team: Option<String>,
    /// Required for agent keys: the agent whose own conversations it reaches.
    agent_id: Option<String>,
}

fn expiry(in_days: Option<u32>, at: Option<&str>) -> Result<Option<chrono::DateTime<chrono::Utc>>, Problem> {
    match (in_days, at) {
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "invalid-parameter",
            "give expires_in_days or expires_at, not both",
        )),
        (Some(0), None) => Err(Problem::bad_request(
            "invalid-parameter",
            "expires_in_days must be at least 1",
        )),
        (Some(d), None) => Ok(Some(
            chrono::Utc::now() + chrono::Duration::days(i64::from(d.min(36_500))),
        )),
        (None, Some(at)) => chrono::DateTime::parse_from_rfc3339(at)
            .map(|t| Some(t.with_timezone(&chrono::Utc)))
            .map_err(|e| {
                Problem::bad_request(
                    "invalid-parameter",
                    format!("expires_at must be an RFC 3339 time like 2027-01-31T00:00:00Z: {e}"),
                )
            }),
        (None, None) => Ok(None),
    }
}

/// `POST /v1/keys` `{"role": "analyst", "tenant"?, "label"?, "expires_in_days"? | "expires_at"?,
/// "team"? (supervisor: required), "agent_id"? (agent: required)}`: 201 with
/// the key text, shown this once.
async fn create_key(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&principal, "creating keys")?;
    let req: CreateKey = serde_json::from_slice(&body).map_err(|e| {
        Problem::bad_request(
            "bad-body",
            format!(
                "the body must be JSON like {{\"role\": \"analyst\", \"label\": \"BI tool\", \"expires_in_days\": 90}}: {e}"
            ),
        )
    })?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        Problem::bad_request(
            "invalid-parameter",
            format!("role {:?} is not one of {}", req.role, all.join(", ")),
        )
    })?;
    let tenant = match (&principal.tenant, req.tenant) {
        (TenantScope::One(t), None) => t.clone(),
        (TenantScope::One(t), Some(asked)) if asked == *t => asked,
        (TenantScope::One(t), Some(asked)) => {
            return Err(Problem::forbidden(format!(
                "this key is for tenant {t}; it cannot create keys of tenant {asked}"
            )));
        }
        (TenantScope::All, Some(asked)) => asked,
        (TenantScope::All, None) => {
            return Err(Problem::bad_request(
                "missing-tenant",
                "a platform-wide key must name the tenant of the new key: \"tenant\": \"acme\" (or \"*\")",
            ));
        }
    };
    let expires_at = expiry(req.expires_in_days, req.expires_at.as_deref())?;
    let new = NewKey {
        tenant,
        role,
        label: req.label,
        expires_at,
        team: req.team,
        agent_id: req.agent_id,
    };
    let keys = state.clone();
    let (record, key) = blocking(move || keys.keys.create_key(new)).await?;
    state
        .audit
        .record(
            Entry::by(&principal, "key.create", record.id.clone(), key_json(&record)).on_tenant(record.tenant.clone()),
        )
        .await;
    let mut body = key_json(&record);
    body["key"] = json!(key);
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct ListParams {
    tenant: Option<String>,
}

/// `GET /v1/keys[?tenant=]`: the keys this admin manages, revoked ones too.
async fn list_keys(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<ListParams>,
) -> Result<Response, Problem> {
    require_admin(&principal, "listing keys")?;
    let keys = state.clone();
    let all = blocking(move || keys.keys.list()).await?;
    let listed: Vec<Value> = all
        .iter()
        .filter(|k| manages(&principal, &k.tenant))
        .filter(|k| params.tenant.as_deref().is_none_or(|t| k.tenant == t))
        .map(key_json)
        .collect();
    Ok(axum::Json(json!({ "keys": listed })).into_response())
}

/// The key `id` if `principal` may manage it; 404 otherwise, so that a
/// tenant's admin cannot learn which ids exist elsewhere.
async fn managed_key(state: &Arc<AppState>, principal: &Principal, id: &str) -> Result<KeyRecord, Problem> {
    let keys = state.clone();
    let wanted = id.to_string();
    let found = blocking(move || keys.keys.get(&wanted)).await?;
    found
        .filter(|k| manages(principal, &k.tenant))
        .ok_or_else(|| key_problem(KeyError::NotFound(id.into())))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    expires_in_days: Option<u32>,
    expires_at: Option<String>,
}

/// `POST /v1/keys/{id}/rotate`: a new key (same tenant, role, label), the
/// old one revoked; 200 with the new key text, shown this once.
async fn rotate_key(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    require_admin(&principal, "rotating keys")?;
    let req: RotateKey = if body.iter().all(u8::is_ascii_whitespace) {
        RotateKey::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            Problem::bad_request(
                "bad-body",
                format!("the body must be empty or JSON like {{\"expires_in_days\": 90}}: {e}"),
            )
        })?
    };
    let expires_at = expiry(req.expires_in_days, req.expires_at.as_deref())?;
    let old = managed_key(&state, &principal, &id).await?;
    let keys = state.clone();
    let old_id = old.id.clone();
    let (record, key) = blocking(move || keys.keys.rotate(&old_id, expires_at)).await?;
    state
        .audit
        .record(
            Entry::by(
                &principal,
                "key.rotate",
                old.id.clone(),
                json!({ "old": key_json(&old), "new": key_json(&record) }),
            )
            .on_tenant(record.tenant.clone()),
        )
        .await;
    let mut body = key_json(&record);
    body["key"] = json!(key);
    Ok(axum::Json(body).into_response())
}

/// `DELETE /v1/keys/{id}`: revokes the key (it answers 401 from now on).
async fn revoke_key(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_admin(&principal, "revoking keys")?;
    let old = managed_key(&state, &principal, &id).await?;
    let keys = state.clone();
    let old_id = old.id.clone();
    let record = blocking(move || keys.keys.revoke(&old_id)).await?;
    state
        .audit
        .record(
            Entry::by(&principal, "key.revoke", record.id.clone(), key_json(&record)).on_tenant(record.tenant.clone()),
        )
        .await;
    Ok(axum::Json(key_json(&record)).into_response())
}

#[derive(Debug, Deserialize)]
struct AuditParams {
    from: Option<String>,
    to: Option<String>,
    action: Option<String>,
    tenant: Option<String>,
    limit: Option<usize>,
}

/// Most records one `/v1/audit` answer carries (the newest when more match).
const MAX_AUDIT_RECORDS: usize = 10_000;

/// `GET /v1/audit?from=&to=&action=[&tenant=][&limit=]`: the audit records
/// of this admin's tenant (a platform admin: all, or `?tenant=`), oldest
/// first. `from`/`to` are RFC 3339 times or dates; `action` is exact
/// (`sql.query`) or a prefix ending in a dot (`key.`).
async fn get_audit(
    State(state): State<Arc<AppState>>,
    axum::Extension(principal): axum::Extension<Principal>,
    Query(params): Query<AuditParams>,
) -> Result<Response, Problem> {
    require_admin(&principal, "reading the audit log")?;
    let tenant = match (&principal.tenant, params.tenant) {
        (TenantScope::All, asked) => asked,
        (TenantScope::One(t), None) => Some(t.clone()),
        (TenantScope::One(t), Some(asked)) if asked == *t => Some(asked),
        (TenantScope::One(t), Some(asked)) => {
            return Err(Problem::forbidden(format!(
                "this key is for tenant {t}; it cannot read the audit records of tenant {asked}"
            )));
        }
    };
    let bound = |name: &'static str, v: Option<String>| -> Result<Option<String>, Problem> {
        let Some(v) = v else { return Ok(None) };
        if chrono::DateTime::parse_from_rfc3339(&v).is_ok() {
            return Ok(Some(v));
        }
        chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map(|d| Some(format!("{d}T00:00:00Z")))
            .map_err(|_| {
                Problem::bad_request(
                    "invalid-parameter",
                    format!("{name}: {v:?} must be a date (2026-11-01) or an RFC 3339 time"),
                )
                .with_extra(json!({ "parameter": name }))
            })
    };
    let filter = audit::Filter {
        tenant,
        from: bound("from", params.from)?,
        to: bound("to", params.to)?,
        action: params.action.filter(|a| !a.is_empty()),
        limit: params.limit.unwrap_or(1000).clamp(1, MAX_AUDIT_RECORDS),
    };
    let log = state.audit.clone();
    let records = tokio::task::spawn_blocking(move || log.query(&filter))
        .await
        .map_err(|e| Problem::internal(e.to_string()))?
        .map_err(|e| Problem::internal(e.to_string()))?;
    Ok(axum::Json(json!({ "records": records })).into_response())
}

// ------------------------------------------------------------------ CLI

/// Who ran a CLI command, as the audit log's `source`.
fn cli_source() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    format!("cli (user {user:?}, pid {})", std::process::id())
}

fn audit_cli(data_dir: &std::path::Path, action: &str, record: &KeyRecord, detail: Value) -> anyhow::Result<()> {
    let log = audit::AuditLog::open(data_dir)?;
    log.append_blocking(
        Entry::anonymous(action, record.id.clone(), detail)
            .on_tenant(record.tenant.clone())
            .from_addr(cli_source()),
    )?;
    Ok(())
}

/// `team:T` or `agent:A` for a scoped key.
fn scope_text(k: &KeyRecord) -> Option<String> {
    match (&k.team, &k.agent_id) {
        (Some(t), _) => Some(format!("team:{t}")),
        (None, Some(a)) => Some(format!("agent:{a}")),
        (None, None) => None,
    }
}

/// `cxlake key ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Create a key; the key is printed as the last line.
    Create {
        /// Tenant id, or '*' for a platform-wide key.
        #[arg(long)]
        tenant: String,
        /// admin, supervisor, agent, operations, analyst or service.
        #[arg(long)]
        role: String,
        /// A note to recognise the key by.
        #[arg(long)]
        label: Option<String>,
        /// The key stops working after this many days.
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Supervisor keys (required): the team whose conversations the key reaches.
        #[arg(long)]
        team: Option<String>,
        /// Agent keys (required): the agent id whose own conversations the key reaches.
        #[arg(long)]
        agent: Option<String>,
    },
    /// List keys (never their secrets): id, tenant, role, label, times, state.
    List {
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Replace a key: a new key (printed as the last line) with the same
    /// tenant, role and label; the old one is revoked.
    Rotate {
        id: String,
        /// The new key stops working after this many days (default: the old expiry).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a key: it is refused (401) from now on.
    Revoke { id: String },
}

/// `cxlake key create|list|rotate|revoke`; changes are audited like the
/// API's (actor without a key, source `cli`).
pub fn run_key_command(data_dir: &std::path::Path, command: KeyCommand) -> anyhow::Result<()> {
    use anyhow::Context;

    let store = services::keys::KeyStore::open(data_dir);
    let days = |d: Option<u32>| expiry(d, None).map_err(|p| anyhow::anyhow!("{}", p.detail));
    match command {
        KeyCommand::Create {
            tenant,
            role,
            label,
            expires_in_days,
            team,
            agent,
        } => {
            let role = Role::parse(&role).with_context(|| {
                let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!("unknown role {role:?}; one of: {}", all.join(", "))
            })?;
            let (record, key) = store
                .create_key(NewKey {
                    tenant,
                    role,
                    label,
                    expires_at: days(expires_in_days)?,
                    team,
                    agent_id: agent,
                })
                .map_err(|e| match e {
                    // The CLI spells the API's agent_id as --agent.
                    KeyError::MissingScope { .. } | KeyError::ScopeNotForRole { .. } | KeyError::BadScope { .. } => {
                        anyhow::anyhow!("{e} (--team T for supervisor keys, --agent A for agent keys)")
                    }
                    e => e.into(),
                })?;
            audit_cli(data_dir, "key.create", &record, key_json(&record))?;
            eprintln!(
                "created key {} for tenant {} with role {}{}",
                record.id,
                record.tenant,
                record.role,
                scope_text(&record).map(|s| format!(" ({s})")).unwrap_or_default()
            );
            println!("{key}");
        }
        KeyCommand::List { tenant } => {
            println!(
                "{:<16}  {:<12}  {:<10}  {:<16}  {:<20}  {:<20}  {:<20}  {:<7}  label",
                "id", "tenant", "role", "scope", "created_at", "expires_at", "last_used_at", "revoked"
            );
            for k in store.list()? {
                if tenant.as_deref().is_some_and(|t| k.tenant != t) {
                    continue;
                }
                println!(
                    "{:<16}  {:<12}  {:<10}  {:<16}  {:<20}  {:<20}  {:<20}  {:<7}  {}",
                    k.id,
                    k.tenant,
                    k.role.as_str(),
                    scope_text(&k).unwrap_or_else(|| "-".into()),
                    k.created_at,
                    k.expires_at.as_deref().unwrap_or("-"),
                    k.last_used_at.as_deref().unwrap_or("-"),
                    if k.revoked_at.is_some() { "yes" } else { "no" },
                    k.label.as_deref().unwrap_or("")
                );
            }
        }
        KeyCommand::Rotate { id, expires_in_days } => {
            let old = store.get(&id)?.ok_or_else(|| KeyError::NotFound(id.clone()))?;
            let (record, key) = store.rotate(&id, days(expires_in_days)?)?;
            audit_cli(
                data_dir,
                "key.rotate",
                &old,
                json!({ "old": key_json(&old), "new": key_json(&record) }),
            )?;
            eprintln!("key {id} revoked; its replacement is {}", record.id);
            println!("{key}");
        }
        KeyCommand::Revoke { id } => {
            let record = store.revoke(&id)?;
            audit_cli(data_dir, "key.revoke", &record, key_json(&record))?;
            eprintln!("key {id} revoked");
        }
    }
    Ok(())
}

/// `cxlake audit verify`: prints a summary, or fails naming the first bad record.
pub fn run_audit_verify(data_dir: &std::path::Path) -> anyhow::Result<()> {
    match audit::verify(data_dir) {
        Ok(v) => {
            println!(
                "audit log OK: {} records in {} file(s); last hash {}",
                v.records, v.files, v.last_hash
            );
            Ok(())
        }
        Err(bad) => anyhow::bail!("audit log does NOT verify: first bad record: {bad}"),
    }
}
