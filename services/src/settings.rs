//! Tenant settings: the knobs the KPI definitions leave to each business.
//!
//! | field | default | used by |
//! |---|---|---|
//! | `time_zone` | `UTC` | local dates in `from`/`to`, time buckets (IANA name) |
//! | `sla_target_s` | 120 | `sla_attainment`, `conversations.sla_met` |
//! | `attribution_window_days` | 7 | attributing orders without `conversation_id` |
//! | `hourly_rates` | none | `labor_cost`, `cost_per_conversation` |
//! | `free_text` | `store` | CSAT comments and message text at rest: `store`, `encrypt` (AES-256-GCM, tenant key) or `drop` |
//! | `pseudonymize_customer_ids` | `false` | `customer_id` and `unit_id` replaced by a keyed hash at ingest |
//! | `chatwoot_webhook_secrets` | none | `{"<Chatwoot account id>": "<the webhook's secret>"}`: webhooks of that account must carry a valid `X-Chatwoot-Signature` |
//!
//! The last two are applied at ingest, before the write-ahead log (see
//! `ingest::privacy` and `docs/gdpr.md`); they change what is stored from
//! then on, not what was stored before.
//!
//! `hourly_rates` is a list of `{"team": "t1", "rate": 20.0, "currency": "EUR"}`;
//! an entry without `team` is the rate of every team without its own entry.
//! Online hours of a team without any rate are reported as `unrated_hours`.
//!
//! On disk: `<data_dir>/settings/<tenant>.json`, the JSON of
//! [`TenantSettings`], replaced atomically (temp file, fsync, rename, fsync
//! of the directory), so a crash leaves either the old or the new file. A
//! tenant without a file has the defaults. `GET /v1/settings` answers the
//! same document `PUT /v1/settings` takes, so a client can read, change
//! one field and write back.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::timezone::Tz;
use ingest::privacy::{FreeText, PolicySource, PrivacyPolicy};
use serde::{Deserialize, Serialize};

use crate::tenant::TenantId;

/// One tenant's settings (see the module docs for the fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TenantSettings {
    /// IANA time zone the tenant reports in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// First-response target of `sla_attainment`, seconds.
    pub sla_target_s: f64,
    /// How long before an order a conversation may be to be credited with it.
    pub attribution_window_days: u32,
    /// Hourly labour rate per team; `team` absent = every other team.
    pub hourly_rates: Vec<HourlyRate>,
    /// What happens to free text (CSAT comments, message text) at ingest.
    pub free_text: FreeText,
    /// Replace customer ids (and experiment unit ids) by a keyed hash at ingest.
    pub pseudonymize_customer_ids: bool,
    /// Per Chatwoot account id, the secret Chatwoot signs that account's
    /// webhooks with (shown on the webhook in Chatwoot's settings).
    pub chatwoot_webhook_secrets: std::collections::BTreeMap<String, String>,
}

/// The hourly labour rate of one team (or, without `team`, the default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourlyRate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub rate: f64,
    /// ISO 4217, e.g. `EUR`.
    pub currency: String,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            time_zone: "UTC".into(),
            sla_target_s: 120.0,
            attribution_window_days: 7,
            hourly_rates: Vec::new(),
            free_text: FreeText::Store,
            pseudonymize_customer_ids: false,
            chatwoot_webhook_secrets: Default::default(),
        }
    }
}

/// Largest accepted SLA target (one day) and attribution window.
pub const MAX_SLA_TARGET_S: f64 = 86_400.0;
pub const MAX_ATTRIBUTION_WINDOW_DAYS: u32 = 365;

/// A setting that cannot be accepted: which field and why.
#[derive(Debug, Clone, PartialEq)]
pub struct InvalidSetting {
    pub field: String,
    pub reason: String,
}

impl TenantSettings {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let bad = |field: &str, reason: String| {
            Err(InvalidSetting {
                field: field.to_string(),
                reason,
            })
        };
        if let Err(reason) = parse_time_zone(&self.time_zone) {
            return bad("time_zone", reason);
        }
        if !(self.sla_target_s > 0.0 && self.sla_target_s <= MAX_SLA_TARGET_S) {
            return bad(
                "sla_target_s",
                format!("must be a number of seconds in (0, {MAX_SLA_TARGET_S}], e.g. 120"),
            );
        }
        if !(1..=MAX_ATTRIBUTION_WINDOW_DAYS).contains(&self.attribution_window_days) {
            return bad(
                "attribution_window_days",
                format!("must be a whole number of days in [1, {MAX_ATTRIBUTION_WINDOW_DAYS}], e.g. 7"),
            );
        }
        let mut seen: Vec<Option<&str>> = Vec::new();
        for (i, r) in self.hourly_rates.iter().enumerate() {
            let field = format!("hourly_rates[{i}]");
            if let Some(team) = &r.team
                && (team.is_empty() || team.len() > 256 || team.chars().any(char::is_control))
            {
                return bad(
                    &format!("{field}.team"),
                    "must be a team name of 1 to 256 printable characters, or absent for the default rate".into(),
                );
            }
            if !(r.rate >= 0.0 && r.rate.is_finite()) {
                return bad(&format!("{field}.rate"), "must be a non-negative number".into());
            }
            if !(r.currency.len() == 3 && r.currency.bytes().all(|b| b.is_ascii_uppercase())) {
                return bad(
                    &format!("{field}.currency"),
                    "must be an ISO 4217 code of three capital letters, e.g. EUR".into(),
                );
            }
            if seen.contains(&r.team.as_deref()) {
                return bad(
                    &format!("{field}.team"),
                    match &r.team {
                        Some(t) => format!("team {t:?} has more than one rate"),
                        None => "more than one default rate (entry without team)".into(),
                    },
                );
            }
            seen.push(r.team.as_deref());
        }
        for (account, secret) in &self.chatwoot_webhook_secrets {
            let field = format!("chatwoot_webhook_secrets.{account}");
            if account.is_empty() || account.len() > 20 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return bad(
                    &field,
                    "the key must be a Chatwoot account id (digits), e.g. \"1\"".into(),
                );
            }
            if secret.is_empty() || secret.len() > 256 || secret.chars().any(char::is_control) {
                return bad(
                    &field,
                    "must be the webhook's secret as Chatwoot shows it (1 to 256 printable characters)".into(),
                );
            }
        }
        Ok(())
    }

    /// The settings as the audit log keeps them: webhook secrets replaced
    /// by a fingerprint, so reading the log does not give them away.
    pub fn for_audit(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        for (account, secret) in &self.chatwoot_webhook_secrets {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(secret.as_bytes());
            let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
            v["chatwoot_webhook_secrets"][account] = serde_json::json!(format!("sha256:{short}…"));
        }
        v
    }

    /// The reporting time zone; the defaults' `UTC` if the stored name no
    /// longer parses (it was validated when stored).
    pub fn tz(&self) -> Tz {
        parse_time_zone(&self.time_zone).unwrap_or_else(|_| utc())
    }

    /// The rules for personal data at ingest.
    pub fn privacy_policy(&self) -> PrivacyPolicy {
        PrivacyPolicy {
            free_text: self.free_text,
            pseudonymize_customer_ids: self.pseudonymize_customer_ids,
        }
    }

    /// The SLA target in whole microseconds, the unit of the lake's timestamps.
    pub fn sla_target_us(&self) -> i64 {
        (self.sla_target_s * 1e6).round() as i64
    }
}

fn utc() -> Tz {
    // "+00:00" is a fixed offset arrow's Tz always understands.
    "+00:00"
        .parse()
        .unwrap_or_else(|_| unreachable!("+00:00 is a valid offset"))
}

/// An IANA time zone name (`Europe/Berlin`, `UTC`); fixed offsets such as
/// `+08:00` are refused because they ignore daylight saving time.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    let looks_like_offset = name.starts_with(['+', '-']) || name.is_empty();
    if looks_like_offset || name.len() > 64 {
        return Err(format!(
            "{name:?} is not an IANA time zone name; use one like Europe/Berlin, Asia/Shanghai or UTC"
        ));
    }
    name.parse::<Tz>().map_err(|_| {
        format!("{name:?} is not an IANA time zone name; use one like Europe/Berlin, Asia/Shanghai or UTC")
    })
}

/// Errors reading or writing the settings store.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("settings file {path} is not valid settings JSON: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// `<data_dir>/settings/<tenant>.json`.
pub fn settings_path(data_dir: &Path, tenant: &TenantId) -> PathBuf {
    data_dir.join("settings").join(format!("{}.json", tenant.as_str()))
}

/// The tenant's settings; the defaults when none were stored.
pub fn load(data_dir: &Path, tenant: &TenantId) -> Result<TenantSettings, SettingsError> {
    let path = settings_path(data_dir, tenant);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TenantSettings::default()),
        Err(source) => return Err(SettingsError::Io { path, source }),
    };
    let settings: TenantSettings = serde_json::from_slice(&bytes).map_err(|e| SettingsError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    settings.validate().map_err(|e| SettingsError::Corrupt {
        path,
        reason: format!("{}: {}", e.field, e.reason),
    })?;
    Ok(settings)
}

/// Writers of the same tenant take turns; readers never wait (rename is atomic).
static WRITE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Replaces the tenant's settings durably (see [`crate::fsutil::write_atomic`]).
/// `settings` must have passed [`TenantSettings::validate`].
pub fn store(data_dir: &Path, tenant: &TenantId, settings: &TenantSettings) -> Result<(), SettingsError> {
    let path = settings_path(data_dir, tenant);
    let io = |source: std::io::Error| SettingsError::Io {
        path: path.clone(),
        source,
    };
    let mut body = serde_json::to_vec_pretty(settings).map_err(|e| io(std::io::Error::other(e)))?;
    body.push(b'\n');
    let _guard = WRITE_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    crate::fsutil::write_atomic(&path, &body).map_err(io)
}

/// Where the ingest pipeline gets each tenant's privacy policy: the
/// settings file, re-read only when it changed (its modification time and
/// length are compared on each call, a `stat` per tenant per batch). An
/// unreadable file means the strictest policy rather than a silent
/// "store everything".
pub fn privacy_policy_source(data_dir: &Path) -> PolicySource {
    // Identity of the file as last read: modified time, length and (a
    // rename replaces the file) inode.
    type Stamp = (Option<std::time::SystemTime>, u64, u64);
    fn stamp(m: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let ino = 0;
        (m.modified().ok(), m.len(), ino)
    }
    let data_dir = data_dir.to_path_buf();
    let cache: std::sync::Mutex<std::collections::HashMap<String, (Stamp, PrivacyPolicy)>> = Default::default();
    Arc::new(move |tenant: &str| {
        let Some(t) = TenantId::parse(tenant) else {
            return PrivacyPolicy::default();
        };
        let path = settings_path(&data_dir, &t);
        let now = match std::fs::metadata(&path) {
            Ok(m) => Some(stamp(&m)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PrivacyPolicy::default(),
            Err(_) => None,
        };
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(now), Some((seen, policy))) = (now, cache.get(tenant))
            && now == *seen
            && now.0.is_some()
        {
            return *policy;
        }
        let policy = match load(&data_dir, &t) {
            Ok(s) => s.privacy_policy(),
            Err(e) => {
                tracing::error!(error = %e, "tenant settings unreadable; dropping free text and pseudonymizing ids");
                PrivacyPolicy {
                    free_text: FreeText::Drop,
                    pseudonymize_customer_ids: true,
                }
            }
        };
        if let Some(now) = now {
            cache.insert(tenant.to_string(), (now, policy));
        }
        policy
    })
}

#[cfg(test)]
mod tests;
