//! RFC 9457 problem details: every HTTP error is
//! `application/problem+json` with a stable `type` and a `detail` that says
//! what to change. A [`Problem`] is a [`ServiceError`] on its way out:
//! this is the one place that maps one to the other.

use std::ops::{Deref, DerefMut};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use services::ServiceError;

/// One HTTP error.
#[derive(Debug, Clone)]
pub struct Problem(pub ServiceError);

impl From<ServiceError> for Problem {
    fn from(e: ServiceError) -> Self {
        Problem(e)
    }
}

impl Deref for Problem {
    type Target = ServiceError;
    fn deref(&self) -> &ServiceError {
        &self.0
    }
}

impl DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ServiceError {
        &mut self.0
    }
}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Problem(ServiceError::new(status, kind, title, detail))
    }

    pub fn with_retry_after(self, seconds: u32) -> Self {
        Problem(self.0.with_retry_after(seconds))
    }

    /// See [`ServiceError::not_durable`].
    pub fn not_durable(title: &'static str, e: &ingest::pipeline::IngestError) -> Self {
        Problem(ServiceError::not_durable(title, e))
    }

    pub fn with_extra(self, extra: Value) -> Self {
        Problem(self.0.with_extra(extra))
    }

    pub fn unauthorized() -> Self {
        Problem(ServiceError::unauthorized())
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem(ServiceError::forbidden(detail))
    }

    pub fn bad_request(kind: &'static str, detail: impl Into<String>) -> Self {
        Problem(ServiceError::bad_request(kind, detail))
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Problem(ServiceError::internal(detail))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(e) = self;
        let mut body = json!({
            "type": format!("/problems/{}", e.kind),
            "title": e.title,
            "status": e.status.as_u16(),
            "detail": e.detail,
        });
        if let (Some(Value::Object(extra)), Value::Object(b)) = (e.extra, &mut body) {
            b.extend(extra);
        }
        let mut resp = (e.status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = e.retry_after_s {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if e.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
