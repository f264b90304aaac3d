//! The one error type of the services: what went wrong, said so a client
//! can act on it. `api` renders it as RFC 9457 problem details
//! (`application/problem+json`) with a stable `type` and a `detail` that
//! says what to change.

use http::StatusCode;
use serde_json::Value;

/// One failed request.
#[derive(Debug, Clone)]
pub struct ServiceError {
    pub status: StatusCode,
    /// Stable machine-readable slug; the `type` URI is `/problems/<kind>`.
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extra members (e.g. the rejected lines of an atomic batch).
    pub extra: Option<Value>,
    /// Seconds after which a retry may succeed (`Retry-After`).
    pub retry_after_s: Option<u32>,
}

impl ServiceError {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            title,
            detail: detail.into(),
            extra: None,
            retry_after_s: None,
        }
    }

    pub fn with_retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds);
        self
    }

    /// Events that could not be made durable: nothing of them was
    /// accepted, and the client should send them again after a moment.
    /// `title` names them ("Events", "Exposure", …).
    pub fn not_durable(title: &'static str, e: &ingest::pipeline::IngestError) -> Self {
        use ingest::pipeline::IngestError;
        let (kind, detail) = match e {
            IngestError::Backpressure { .. } => (
                "ingest-backpressure",
                format!(
                    "the lake is not keeping up ({e}); nothing of this request was accepted, retry it after the delay in Retry-After"
                ),
            ),
            _ => (
                "not-durable",
                format!("the events could not be made durable ({e}); nothing of this request was accepted, retry it"),
            ),
        };
        Self::new(StatusCode::SERVICE_UNAVAILABLE, kind, title, detail).with_retry_after(1)
    }

    pub fn with_extra(mut self, extra: Value) -> Self {
        self.extra = Some(extra);
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Missing or invalid API key",
            "send `Authorization: Bearer <key>`; create a key with `cxlake key create --tenant T --role R`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "This key may not do that", detail)
    }

    /// A parameter the request got wrong: 400 `invalid-parameter`, naming
    /// it in `detail` and in the `parameter` member.
    pub fn invalid_parameter(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::bad_request("invalid-parameter", format!("{name}: {detail}"))
            .with_extra(serde_json::json!({ "parameter": name }))
    }

    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, "Bad request", detail)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", detail)
    }

    /// An internal error from `e`, logged with `what` failed.
    pub fn failed(what: &str, e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "{what}");
        Self::internal(e.to_string())
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl std::error::Error for ServiceError {}
