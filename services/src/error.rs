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

    /// An internal error from `e`, logged with `what` failed; unless `e`
    /// is a query that stopped because a tenant's facts are not built yet
    /// ([`FactsNotReady`]): then 503 with `Retry-After`.
    pub fn failed(what: &str, e: impl std::fmt::Display + 'static) -> Self {
        if let Some(not_ready) = FactsNotReady::in_error(&e) {
            return not_ready.into();
        }
        tracing::error!(error = %e, "{what}");
        Self::internal(e.to_string())
    }
}

/// A request met a tenant whose facts are still being built (the first
/// build after a start, which reads the whole lake): it is answered at
/// once with 503 and `Retry-After`, never left waiting for the build.
#[derive(Debug, Clone, PartialEq)]
pub struct FactsNotReady {
    pub tenant: String,
}

impl std::fmt::Display for FactsNotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the facts of tenant {} are being built from the lake; retry in a second",
            self.tenant
        )
    }
}

impl std::error::Error for FactsNotReady {}

impl FactsNotReady {
    /// As a query error, which keeps it recognizable through DataFusion.
    pub fn into_query_error(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(self))
    }

    /// The `FactsNotReady` that `e` is or wraps, if any.
    pub fn in_error(e: &(dyn std::any::Any + 'static)) -> Option<FactsNotReady> {
        if let Some(n) = e.downcast_ref::<FactsNotReady>() {
            return Some(n.clone());
        }
        let mut source: &(dyn std::error::Error + 'static) = e.downcast_ref::<datafusion::error::DataFusionError>()?;
        // `source()` walks `External`, `Context`, `Shared` and Arrow's wrapping.
        loop {
            if let Some(n) = source.downcast_ref::<FactsNotReady>() {
                return Some(n.clone());
            }
            source = source.source()?;
        }
    }
}

impl From<FactsNotReady> for ServiceError {
    fn from(n: FactsNotReady) -> Self {
        ServiceError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "facts-not-ready",
            "Facts are being built",
            n.to_string(),
        )
        .with_retry_after(1)
    }
}

impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.title, self.detail)
    }
}

impl std::error::Error for ServiceError {}
