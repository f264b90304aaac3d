//! `POST /v1/webhooks/chatwoot`: Chatwoot's webhooks, mapped onto the
//! event contract (`ingest::chatwoot`) and ingested durably.
//!
//! Chatwoot sends no Authorization header, so the route authenticates
//! itself, in one of two ways:
//!
//! - **Signature.** Chatwoot signs each webhook with the webhook's secret:
//!   `X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "{timestamp}.{body}">`
//!   with the Unix seconds in `X-Chatwoot-Timestamp`. When the tenant's
//!   settings hold a secret for the webhook's account
//!   (`chatwoot_webhook_secrets`), a signed webhook must match it and be at
//!   most [`MAX_SKEW_S`] old or ahead; it then needs no key, only
//!   `?tenant=`.
//! - **Key in the URL** (`?key=`), for Chatwoot versions that do not sign
//!   and accounts without a configured secret.
//!
//! A signature that does not match is refused even when the URL also
//! carries a valid key: the body was changed or did not come from the
//! account's Chatwoot.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use ingest::decode::Rejection;
use ingest::metrics::WebhookOutcome;
use serde::Deserialize;
use serde_json::json;

use crate::problem::Problem;
use crate::state::AppState;
use services::keys::require_role;
use services::keys::{Role, TenantScope};
use services::tenant::TenantId;

/// How far a signed webhook's timestamp may be from the server's clock:
/// wide enough for clock skew and Chatwoot's job queue, narrow enough that
/// a captured request cannot be replayed for long.
pub const MAX_SKEW_S: i64 = 300;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/webhooks/chatwoot", post(post_chatwoot))
}

#[derive(Debug, Deserialize)]
struct ChatwootParams {
    tenant: Option<String>,
    key: Option<String>,
    /// The Chatwoot account the webhook is configured in: display ids are
    /// numbered per account, so ids are namespaced by it.
    account: Option<String>,
}

/// `POST /v1/webhooks/chatwoot?tenant=T&account=A[&key=K]`. Every outcome
/// is counted in `/metrics`: Chatwoot does not retry and shows no delivery
/// errors, so a refused webhook is visible only there.
async fn post_chatwoot(
    State(state): State<Arc<AppState>>,
    Query(params): Query<ChatwootParams>,
    headers: HeaderMap,
    // Read up to the configured body limit (not axum's 2 MiB default):
    // Chatwoot does not retry, so an e-mail with a large HTML body refused
    // here would be lost.
    body: axum::body::Body,
) -> Result<Response, Problem> {
    let (result, outcome) = match chatwoot_webhook(&state, params, headers, body).await {
        Ok((response, outcome)) => (Ok(response), outcome),
        Err((problem, outcome)) => (Err(problem), outcome),
    };
    state.ingestor.metrics().count_chatwoot_webhook(outcome);
    result
}

type Refused = (Problem, WebhookOutcome);

fn unauthorized(detail: impl Into<String>) -> Refused {
    (
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid API key",
            detail,
        ),
        WebhookOutcome::Unauthorized,
    )
}

fn bad_signature(detail: impl Into<String>) -> Refused {
    (
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "Webhook signature rejected",
            detail,
        ),
        WebhookOutcome::BadSignature,
    )
}

/// `X-Chatwoot-Signature` and `X-Chatwoot-Timestamp`, when both are sent.
struct Signed<'a> {
    signature: &'a str,
    timestamp: &'a str,
}

impl<'a> Signed<'a> {
    fn from_headers(headers: &'a HeaderMap) -> Option<Self> {
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        Some(Signed {
            signature: get("x-chatwoot-signature")?,
            timestamp: get("x-chatwoot-timestamp").unwrap_or(""),
        })
    }

    /// Checks the signature against `secret` over `"{timestamp}.{body}"`
    /// (in constant time) and the timestamp against `now_s`.
    fn verify(&self, secret: &str, body: &[u8], now_s: i64) -> Result<(), String> {
        let hex = self.signature.strip_prefix("sha256=").unwrap_or(self.signature);
        let tag = decode_hex(hex).ok_or("X-Chatwoot-Signature must be sha256=<64 hex digits>")?;
        let sent: i64 = self
            .timestamp
            .parse()
            .map_err(|_| "X-Chatwoot-Timestamp must be the Unix time in seconds Chatwoot signed")?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let mut message = Vec::with_capacity(self.timestamp.len() + 1 + body.len());
        message.extend_from_slice(self.timestamp.as_bytes());
        message.push(b'.');
        message.extend_from_slice(body);
        ring::hmac::verify(&key, &message, &tag).map_err(|_| {
            "the signature does not match this account's webhook secret (chatwoot_webhook_secrets in /v1/settings): \
             the secret differs from the one Chatwoot shows for the webhook, or the body was changed"
                .to_string()
        })?;
        let skew = now_s - sent;
        if skew.abs() > MAX_SKEW_S {
            return Err(format!(
                "signed {skew} s from the server's time; at most {MAX_SKEW_S} s are accepted (check both clocks)"
            ));
        }
        Ok(())
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The webhook secret the tenant configured for `account`, if any.
async fn secret_of(state: &AppState, tenant: &str, account: &str) -> Result<Option<String>, Refused> {
    let Some(tenant) = TenantId::parse(tenant) else {
        return Ok(None);
    };
    let settings = state
        .load_settings(&tenant)
        .await
        .map_err(|p| (Problem::from(p), WebhookOutcome::NotDurable))?;
    Ok(settings.chatwoot_webhook_secrets.get(account).cloned())
}

async fn chatwoot_webhook(
    state: &Arc<AppState>,
    params: ChatwootParams,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<(Response, WebhookOutcome), Refused> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(params.key.as_deref());
    let signed = Signed::from_headers(&headers);
    let how_to = "Chatwoot sends no Authorization header: configure the webhook's secret in /v1/settings \
                  (chatwoot_webhook_secrets) and use /v1/webhooks/chatwoot?tenant=<tenant>&account=<Chatwoot account id>, \
                  or put a service key in the URL, /v1/webhooks/chatwoot?key=<key>&account=<Chatwoot account id>; \
                  create one with `cxlake key create --tenant T --role service`";
    // With a key, the key names the tenant; without one, a signature can
    // stand in for it, and the tenant comes from the URL.
    let tenant = match presented {
        Some(k) => {
            let principal = state.keys.authenticate(k).ok_or_else(|| unauthorized(how_to))?;
            require_role(&principal, &[Role::Admin, Role::Service], "sending events")
                .map_err(|p| (Problem::from(p), WebhookOutcome::Forbidden))?;
            match (&principal.tenant, params.tenant) {
                (TenantScope::One(t), None) => t.clone(),
                (scope, Some(t)) if scope.allows(&t) => t,
                (_, Some(t)) => {
                    return Err((
                        Problem::forbidden(format!("this key cannot send events of tenant {t}")),
                        WebhookOutcome::Forbidden,
                    ));
                }
                (TenantScope::All, None) => {
                    return Err((
                        Problem::bad_request("missing-tenant", "a platform-wide key must name the tenant: ?tenant=T"),
                        WebhookOutcome::BadBody,
                    ));
                }
            }
        }
        None if signed.is_some() => params
            .tenant
            .clone()
            .ok_or_else(|| unauthorized(format!("a signed webhook names its tenant: ?tenant=T. {how_to}")))?,
        None => return Err(unauthorized(how_to)),
    };
    let limit = state.limits.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        (
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Body too large",
                format!(
                    "the webhook body is larger than the configured max_body_bytes ({limit} bytes); raise max_body_bytes (CXLAKE_MAX_BODY_BYTES) to take it"
                ),
            ),
            WebhookOutcome::TooLarge,
        )
    })?;
    let payload: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        (
            Problem::bad_request("bad-body", format!("the body must be a Chatwoot webhook (JSON): {e}")),
            WebhookOutcome::BadBody,
        )
    })?;
    let account = ingest::chatwoot::account(params.account.as_deref(), &payload).map_err(|errors| {
        (
            rejected("the webhook does not say which Chatwoot account it comes from", errors),
            WebhookOutcome::Account,
        )
    })?;
    match (secret_of(state, &tenant, &account).await?, &signed) {
        (Some(secret), Some(signed)) => signed
            .verify(&secret, &body, chrono::Utc::now().timestamp())
            .map_err(bad_signature)?,
        // Chatwoot versions that do not sign: the key in the URL.
        (Some(_), None) if presented.is_some() => {}
        (None, _) if presented.is_some() => {}
        (Some(_), None) => return Err(unauthorized(how_to)),
        (None, Some(_)) => {
            return Err(unauthorized(format!(
                "no webhook secret is configured for Chatwoot account {account} of tenant {tenant} \
                 (chatwoot_webhook_secrets in /v1/settings). {how_to}"
            )));
        }
        (None, None) => return Err(unauthorized(how_to)),
    }

    let now_us = chrono::Utc::now().timestamp_micros();
    let mut why = WebhookOutcome::Unmapped;
    let mapped = ingest::chatwoot::map_webhook(&tenant, Some(&account), &payload).and_then(|m| match m {
        ingest::chatwoot::Mapped::Events(events) => {
            for e in &events {
                state.limits.check_occurred_at(e, now_us).map_err(|outside| {
                    why = WebhookOutcome::OutsideWindow;
                    vec![outside]
                })?;
            }
            Ok(ingest::chatwoot::Mapped::Events(events))
        }
        ignored => Ok(ignored),
    });
    let events = match mapped {
        Ok(ingest::chatwoot::Mapped::Events(events)) => events,
        Ok(ingest::chatwoot::Mapped::Ignored(what)) => {
            let body = json!({ "accepted": 0, "duplicates": 0, "ignored": what });
            return Ok((axum::Json(body).into_response(), WebhookOutcome::Ignored));
        }
        Err(errors) => {
            return Err((
                rejected("the webhook could not be mapped onto an event; see rejected", errors),
                why,
            ));
        }
    };
    let outcome = state
        .ingestor
        // One webhook can carry several events; the counts are of events.
        .ingest(events.into_iter().enumerate().map(|(i, e)| (i + 1, e)).collect())
        .await
        .map_err(|e| (Problem::not_durable("Event not stored", &e), WebhookOutcome::NotDurable))?;
    let body = json!({
        "accepted": outcome.accepted,
        // As `/v1/events` answers it: answers whose `data_as_of.seq` is
        // at least this count these events.
        "seq": outcome.seq,
        "duplicates": outcome.duplicate_lines.len(),
        "erased": outcome.erased_lines.len(),
    });
    Ok((axum::Json(body).into_response(), WebhookOutcome::Accepted))
}

/// 422 naming each field that could not be mapped.
fn rejected(detail: &str, errors: Vec<ingest::contract::FieldError>) -> Problem {
    let rejected: Vec<Rejection> = errors
        .into_iter()
        .map(|e| Rejection {
            line: 1,
            field: e.field,
            reason: e.reason,
        })
        .collect();
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "batch-rejected",
        "Webhook rejected",
        detail.to_string(),
    )
    .with_extra(json!({ "accepted": 0, "rejected": rejected }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let mut message = format!("{timestamp}.").into_bytes();
        message.extend_from_slice(body);
        let tag = ring::hmac::sign(&key, &message);
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256={hex}")
    }

    #[test]
    fn a_signature_over_timestamp_and_body_verifies_and_any_change_breaks_it() {
        let body = br#"{"event":"message_created","id":1}"#;
        let now = 1_772_496_000;
        let good = sign("s3cret", "1772496000", body);
        let ok = |signature: &str, timestamp: &str, body: &[u8], secret: &str| {
            Signed { signature, timestamp }.verify(secret, body, now)
        };
        assert_eq!(ok(&good, "1772496000", body, "s3cret"), Ok(()));
        // Without the prefix too (some proxies strip it).
        assert_eq!(
            ok(good.trim_start_matches("sha256="), "1772496000", body, "s3cret"),
            Ok(())
        );
        assert!(ok(&good, "1772496000", body, "other").is_err());
        assert!(ok(&good, "1772496001", body, "s3cret").is_err());
        assert!(ok(&good, "1772496000", br#"{"event":"message_created","id":2}"#, "s3cret").is_err());
        assert!(ok("sha256=zz", "1772496000", body, "s3cret").is_err());
        assert!(ok(&good, "", body, "s3cret").is_err());
    }

    #[test]
    fn a_signed_webhook_older_or_further_ahead_than_the_skew_is_refused() {
        let body = b"{}";
        let at = |t: i64| {
            let ts = t.to_string();
            let sig = sign("k", &ts, body);
            Signed {
                signature: &sig,
                timestamp: &ts,
            }
            .verify("k", body, 10_000)
            .is_ok()
        };
        assert!(at(10_000 - MAX_SKEW_S));
        assert!(at(10_000 + MAX_SKEW_S));
        assert!(!at(10_000 - MAX_SKEW_S - 1));
        assert!(!at(10_000 + MAX_SKEW_S + 1));
    }
}
