//! What stops a running statement: a cancel request, the connection's
//! `statement_timeout`, or its client going away.
//!
//! A statement runs in two parts: planning (inside the query handler) and
//! producing rows (while pgwire writes them to the socket). Both are
//! watched: planning races a [`Watch`], and each row stream is wrapped in a
//! [`Stoppable`] that, once stopped, drops the stream it wraps at once —
//! which drops the plan, stops its tasks and returns its concurrency slot,
//! even while pgwire still holds the portal — and ends with the error.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion_postgres::pgwire;
use futures::{Stream, StreamExt};
use pgwire::api::results::SendableRowStream;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::user_error;

/// Why a statement was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StopReason {
    Cancelled,
    Timeout(Duration),
    ClientGone,
}

impl StopReason {
    /// The error Postgres sends in each case (SQLSTATE 57014,
    /// `query_canceled`, with its wording, which drivers match on).
    pub(super) fn error(self) -> PgWireError {
        match self {
            StopReason::Cancelled => user_error("57014", "canceling statement due to user request".into()),
            StopReason::Timeout(d) => user_error(
                "57014",
                format!(
                    "canceling statement due to statement timeout (statement_timeout = {} ms)",
                    d.as_millis()
                ),
            ),
            // Nobody reads it; it ends the statement.
            StopReason::ClientGone => user_error("08006", "the client closed the connection".into()),
        }
    }
}

/// The stop signal of one statement.
#[derive(Debug, Default)]
pub(super) struct Stop {
    reason: OnceLock<StopReason>,
    notify: Notify,
}

impl Stop {
    /// Stops the statement; the first reason wins.
    pub(super) fn stop(&self, reason: StopReason) {
        if self.reason.set(reason).is_ok() {
            self.notify.notify_waiters();
        }
    }

    async fn stopped(&self) -> StopReason {
        loop {
            // Registered before the check, so a stop in between is not lost.
            let notified = self.notify.notified();
            if let Some(r) = self.reason.get() {
                return *r;
            }
            notified.await;
        }
    }
}

/// The statement a connection runs now, for cancel requests.
#[derive(Debug, Default)]
pub(super) struct Current(Mutex<Option<Arc<Stop>>>);

impl Current {
    /// Starts a statement; a cancel request from now on stops it.
    fn begin(&self) -> Arc<Stop> {
        let stop = Arc::new(Stop::default());
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(stop.clone());
        stop
    }

    /// Cancels the running statement (as Postgres, nothing when idle: the
    /// last statement's signal is then stopped but no longer watched).
    pub(super) fn cancel(&self) {
        if let Some(stop) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            stop.stop(StopReason::Cancelled);
        }
    }
}

/// The watch over one statement.
#[derive(Debug, Clone)]
pub(super) struct Watch {
    stop: Arc<Stop>,
    started: Instant,
    peer: Option<Arc<TcpStream>>,
}

impl Watch {
    pub(super) fn begin(current: &Current, peer: Option<Arc<TcpStream>>) -> Watch {
        Watch {
            stop: current.begin(),
            started: Instant::now(),
            peer,
        }
    }

    /// Resolves with the first reason to stop; `timeout` counts from the
    /// start of the statement.
    fn stopped(&self, timeout: Option<Duration>) -> impl Future<Output = StopReason> + Send + 'static {
        let (stop, peer, started) = (self.stop.clone(), self.peer.clone(), self.started);
        async move {
            let deadline = async {
                match timeout {
                    Some(d) => {
                        tokio::time::sleep_until(started + d).await;
                        StopReason::Timeout(d)
                    }
                    None => std::future::pending().await,
                }
            };
            let gone = async {
                match &peer {
                    Some(p) => {
                        peer_gone(p).await;
                        StopReason::ClientGone
                    }
                    None => std::future::pending().await,
                }
            };
            let reason = tokio::select! {
                r = stop.stopped() => r,
                r = deadline => r,
                r = gone => r,
            };
            stop.stop(reason);
            reason
        }
    }

    /// Runs `work` (planning) unless the statement is stopped first.
    pub(super) async fn run<T>(
        &self,
        timeout: Option<Duration>,
        work: impl Future<Output = PgWireResult<T>>,
    ) -> PgWireResult<T> {
        tokio::select! {
            out = work => out,
            reason = self.stopped(timeout) => Err(reason.error()),
        }
    }

    /// `rows`, ended early with the error once the statement is stopped.
    pub(super) fn rows(&self, timeout: Option<Duration>, rows: SendableRowStream) -> Stoppable {
        Stoppable {
            rows: Some(rows),
            stopped: Box::pin(self.stopped(timeout)),
            unchecked: 0,
        }
    }
}

/// Returns once the client's side of the socket is closed (or failed).
/// Bytes the client sent meanwhile (a pipelined `Sync`) are left for the
/// connection to read; only the readiness is cleared, so this waits for the
/// next event rather than spinning.
async fn peer_gone(peer: &TcpStream) {
    loop {
        match peer.ready(Interest::READABLE).await {
            Ok(ready) if ready.is_read_closed() => return,
            Ok(_) => {
                let _ = peer.try_io(Interest::READABLE, || {
                    Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                });
            }
            Err(_) => return,
        }
    }
}

/// A row stream that a stopped statement ends.
pub(super) struct Stoppable {
    rows: Option<SendableRowStream>,
    stopped: Pin<Box<dyn Future<Output = StopReason> + Send>>,
    /// Rows since the stop signal was last polled.
    unchecked: u32,
}

/// Rows handed on between two polls of the stop signal while the stream is
/// ready (it is polled every time the stream waits).
const CHECK_EVERY: u32 = 256;

impl Stoppable {
    fn poll_stopped(&mut self, cx: &mut Context<'_>) -> Option<PgWireError> {
        self.unchecked = 0;
        match self.stopped.as_mut().poll(cx) {
            Poll::Ready(reason) => {
                // Dropping the rows drops the plan: its tasks stop and its
                // concurrency slot is free before the client reads the error.
                self.rows = None;
                Some(reason.error())
            }
            Poll::Pending => None,
        }
    }
}

impl Stream for Stoppable {
    type Item = PgWireResult<DataRow>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(rows) = this.rows.as_mut() else {
            return Poll::Ready(None);
        };
        match rows.poll_next_unpin(cx) {
            Poll::Ready(Some(row)) => {
                this.unchecked += 1;
                if this.unchecked >= CHECK_EVERY
                    && let Some(e) = this.poll_stopped(cx)
                {
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(row))
            }
            Poll::Ready(None) => {
                this.rows = None;
                Poll::Ready(None)
            }
            // Waiting: the stop signal must be able to wake this task.
            Poll::Pending => match this.poll_stopped(cx) {
                Some(e) => Poll::Ready(Some(Err(e))),
                None => Poll::Pending,
            },
        }
    }
}
