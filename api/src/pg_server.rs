//! The Postgres wire protocol (`serve --pg-listen`, default 127.0.0.1:5433).
//!
//! Built on `datafusion-postgres` / `pgwire`, with cxlake's own startup:
//!
//! - **Authentication**: cleartext password (use TLS off loopback); the
//!   password is an API key of role `analyst` or `admin`, the user name is
//!   the key's tenant (a platform-wide key: the tenant to read, or `*` for
//!   every tenant), the database is `cxlake`.
//! - **Session**: after authentication the connection gets its own
//!   sandboxed session ([`services::sql`]): only its tenant's rows,
//!   read-only, bounded. The planned session is shared by the tenant's
//!   queries (HTTP and Postgres), so each connection works on its own copy
//!   of its state: what a connection `SET`s (time zone, statement timeout;
//!   [`settings`]) stays in that connection.
//! - **Key**: re-checked before every statement (a lookup in the cached key
//!   store), so a revoked or expired key stops working on open connections
//!   too: the statement fails with `FATAL 28000` and the connection closes.
//! - **Stopping a statement** ([`stop`]): a cancel request with the
//!   connection's key ([`cancel`]), the connection's `statement_timeout`, or
//!   its client going away stop the running statement, which frees its
//!   concurrency slot at once.
//! - **Statements**: a guard hook runs first in every protocol phase
//!   (simple query, extended parse, extended execute) and refuses anything
//!   [`warehouse::sandbox::check_statement`] refuses; `SET` of client
//!   parameters, `SHOW`, transactions and cursors go to the stock hooks.
//! - **Runtime**: each connection runs on the SQL runtime, where pgwire
//!   parses and plans its statements; the threads that acknowledge ingest
//!   only accept the socket.
//! - **Catalog**: `pg_catalog` and `information_schema`, so `psql`'s `\dt`
//!   and `\d`, DBeaver, Metabase and Grafana can list tables and columns.

use std::fmt::Debug;
use std::sync::Arc;

use anyhow::Context as _;
use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use datafusion_postgres::{DfSessionService, Parser};
use futures::Sink;
use pgwire::api::auth::{
    DefaultServerParameterProvider, LoginInfo, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::CancelHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{FieldInfo, Response};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ErrorHandler, PgWireConnectionState, PgWireServerHandlers, Type};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use warehouse::bounds::BoundError;
use warehouse::sandbox::{Scope, check_statement};

use crate::state::AppState;
use services::keys::{Principal, TenantScope};
use services::sql::require_sql_role;

pub mod audit;
mod cancel;
mod settings;
mod stop;

/// The database name clients connect to.
pub use services::sql::DATABASE;

/// The Postgres catalog (`pg_catalog`, `information_schema` as Postgres
/// tools read them) on an analyst session, over HTTP too.
pub fn setup_catalog(ctx: &SessionContext) -> datafusion::error::Result<()> {
    datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog(
        ctx,
        DATABASE,
        datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider,
    )
    .map(|_| ())
    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
}

type DfStatement = (String, Option<(Statement, LogicalPlan)>);

/// The connection's session, set once the password checked out.
struct Conn {
    service: Arc<DfSessionService>,
    /// The key it logged in with, checked again before each statement.
    key_id: String,
    /// Its running statement, for cancel requests.
    current: Arc<stop::Current>,
    /// A second handle on the client's socket, to notice it closing while a
    /// statement runs (pgwire reads the socket only between statements).
    peer: Option<Arc<tokio::net::TcpStream>>,
    _cancel_key: cancel::Registration,
}

fn fatal(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("FATAL".into(), code.into(), message)))
}

fn conn<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Conn>> {
    client
        .session_extensions()
        .get::<Conn>()
        .ok_or_else(|| fatal("28000", "not authenticated".into()))
}

/// The connection's session, once its key is checked again: a key revoked
/// or expired since login ends the connection (a FATAL error closes it).
fn live_conn<C: ClientInfo + ?Sized>(state: &AppState, client: &C) -> PgWireResult<Arc<Conn>> {
    let conn = conn(client)?;
    if let Err(lapse) = state.keys.standing(&conn.key_id) {
        tracing::info!(key = %conn.key_id, %lapse, "postgres statement refused: the key lapsed");
        return Err(fatal(
            "28000",
            format!("the API key of this connection {lapse}; connect again with a live key"),
        ));
    }
    Ok(conn)
}

fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new("ERROR".into(), code.into(), message)))
}

/// The pgwire handlers shared by every connection.
pub struct Handlers {
    state: Arc<AppState>,
    queries: Arc<Queries>,
    cancels: Arc<cancel::Registry>,
    errors: Arc<ErrorCodes>,
}

impl std::fmt::Debug for Handlers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("pg_server::Handlers")
    }
}

impl Handlers {
    pub fn new(state: Arc<AppState>) -> anyhow::Result<Self> {
        // A parser over an empty session answers the two questions that do
        // not depend on data: parameter types and result schema of a plan.
        let empty = Arc::new(SessionContext::new());
        let describer = DfSessionService::new(empty).query_parser();
        Ok(Self {
            queries: Arc::new(Queries {
                state: state.clone(),
                parser: Arc::new(TenantParser {
                    state: state.clone(),
                    describer,
                }),
            }),
            state,
            cancels: Arc::new(cancel::Registry::default()),
            errors: Arc::new(ErrorCodes),
        })
    }

    /// The handlers of one connection: the shared ones, and a startup that
    /// hands the connection its socket watch.
    fn connection(
        self: &Arc<Self>,
        peer: Option<Arc<tokio::net::TcpStream>>,
        key_id: Arc<std::sync::OnceLock<String>>,
    ) -> ConnHandlers {
        ConnHandlers {
            shared: self.clone(),
            startup: Arc::new(KeyStartup {
                state: self.state.clone(),
                cancels: self.cancels.clone(),
                peer,
                key_id,
            }),
        }
    }
}

/// The handlers [`pgwire::tokio::process_socket`] gets for one connection.
struct ConnHandlers {
    shared: Arc<Handlers>,
    startup: Arc<KeyStartup>,
}

impl PgWireServerHandlers for ConnHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.shared.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.shared.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.startup.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.shared.cancels.clone()
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.shared.errors.clone()
    }
}

/// Gives the engine's bounds their Postgres error codes (pgwire sends
/// every engine error as `XX000`, internal error), so drivers can tell a
/// timeout from a bug.
#[derive(Debug)]
struct ErrorCodes;

impl ErrorHandler for ErrorCodes {
    fn on_error<C>(&self, _client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        let PgWireError::ApiError(e) = error else {
            return;
        };
        let Some(df) = e.downcast_ref::<datafusion::error::DataFusionError>() else {
            return;
        };
        let code = match BoundError::find(df) {
            Some(BoundError::Timeout(_)) => "57014",
            Some(BoundError::TooManyRows(_)) => "54000",
            Some(BoundError::Busy(_)) => "53000",
            Some(BoundError::ReadOnly(_)) => "25006",
            // program_limit_exceeded: the query asked for a value or a
            // result past what this server builds.
            Some(BoundError::ValueTooLarge { .. } | BoundError::ResultTooLarge(_)) => "54000",
            // admin_shutdown
            Some(BoundError::ShuttingDown) => "57P01",
            None => match df.find_root() {
                datafusion::error::DataFusionError::ResourcesExhausted(_) => "53200",
                _ => return,
            },
        };
        *error = user_error(code, df.to_string());
    }
}

/// Cleartext password = API key; user = tenant. One per connection.
struct KeyStartup {
    state: Arc<AppState>,
    cancels: Arc<cancel::Registry>,
    peer: Option<Arc<tokio::net::TcpStream>>,
    /// The id of the key the connection signed in with, once it has.
    key_id: Arc<std::sync::OnceLock<String>>,
}

impl KeyStartup {
    fn login(&self, user: Option<&str>, database: Option<&str>, password: &str) -> Result<(Principal, Scope), String> {
        if let Some(db) = database.filter(|d| *d != DATABASE && !d.is_empty()) {
            return Err(format!("database \"{db}\" does not exist; connect to \"{DATABASE}\""));
        }
        let principal = self
            .state
            .keys
            .authenticate(password.trim())
            .ok_or_else(|| "password authentication failed: the password must be an API key".to_string())?;
        require_sql_role(&principal).map_err(|p| p.detail.clone())?;
        let user = user.unwrap_or("");
        let scope = match &principal.tenant {
            TenantScope::One(t) if t == user => Scope::Tenant(t.clone()),
            TenantScope::One(t) => {
                return Err(format!("this key is for tenant {t}: connect with user name \"{t}\""));
            }
            TenantScope::All if user == "*" || user.is_empty() => Scope::Platform,
            TenantScope::All => match services::tenant::TenantId::parse(user) {
                Some(t) => Scope::Tenant(t.as_str().to_string()),
                None => return Err(format!("user name {user:?} is not a tenant id (or * for every tenant)")),
            },
        };
        Ok((principal, scope))
    }

    /// The connection's own session: a copy of the tenant's planned one
    /// (tables, views, bounds and memory pool shared; configuration its own).
    async fn session(&self, principal: &Principal, scope: &Scope) -> anyhow::Result<Arc<SessionContext>> {
        let shared = self
            .state
            .sql
            .session(&self.state.warehouse, &self.state.data_dir, principal.role, scope)
            .await
            .map_err(|p| anyhow::anyhow!("{}", p.detail))?;
        Ok(Arc::new(SessionContext::new_with_state(shared.state())))
    }

    fn service(&self, ctx: Arc<SessionContext>, principal: &Principal, scope: &Scope) -> Arc<DfSessionService> {
        let hooks: Vec<Arc<dyn QueryHook>> = vec![
            Arc::new(ReadOnlyGuard),
            Arc::new(crate::pg_server::audit::QueryAudit::new(
                self.state.audit.clone(),
                principal,
                scope,
            )),
            Arc::new(CursorStatementHook),
            Arc::new(settings::SessionSettings),
            Arc::new(SetShowHook),
            Arc::new(TransactionStatementHook),
        ];
        Arc::new(DfSessionService::new_with_hooks(ctx, hooks))
    }
}

#[async_trait]
impl StartupHandler for KeyStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        use futures::SinkExt;
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::CleartextPassword))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(pwd) => {
                let pwd = pwd.into_password()?;
                let login = LoginInfo::from_client_info(client);
                let (user, database) = (login.user().map(str::to_string), login.database().map(str::to_string));
                let (principal, scope) = match self.login(user.as_deref(), database.as_deref(), &pwd.password) {
                    Ok(ok) => ok,
                    Err(reason) => {
                        tracing::info!(user = ?user, %reason, "postgres login refused");
                        self.state
                            .audit
                            .record(
                                services::audit::sign_in("postgres", Err((&pwd.password, &reason)))
                                    .from_addr(client.socket_addr()),
                            )
                            .await;
                        return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                            "FATAL".into(),
                            "28P01".into(),
                            reason,
                        ))));
                    }
                };
                let ctx = self.session(&principal, &scope).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot build a SQL session");
                    user_error("XX000", format!("cannot open a session: {e}"))
                })?;
                // As in Postgres, a bad value in the startup packet refuses
                // the connection rather than surprising a later query.
                let startup = settings::startup_settings(client.metadata())
                    .map_err(|e| fatal("22023", ErrorInfo::from(e).message))?;
                settings::forget_unchecked(client.metadata_mut());
                for setting in &startup {
                    settings::apply(setting, &ctx, client.metadata_mut());
                }
                let service = self.service(ctx, &principal, &scope);
                let current = Arc::new(stop::Current::default());
                let (pid, secret, registration) = self.cancels.register(client.protocol_version(), &current);
                client.set_pid_and_secret_key(pid, secret);
                tracing::info!(key = %principal.key_id, scope = ?scope, pid, "postgres session opened");
                let _ = self.key_id.set(principal.key_id.clone());
                self.state
                    .audit
                    .record(services::audit::sign_in("postgres", Ok(&principal)).from_addr(client.socket_addr()))
                    .await;
                client.session_extensions().insert(Conn {
                    service,
                    key_id: principal.key_id.clone(),
                    current,
                    peer: self.peer.clone(),
                    _cancel_key: registration,
                });
                let mut parameters = DefaultServerParameterProvider::default();
                parameters.time_zone = settings::time_zone_shown(client.metadata());
                finish_authentication(client, &parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Runs first in every phase; refuses what is not read-only.
struct ReadOnlyGuard;

fn guard(statement: &Statement) -> Option<PgWireResult<()>> {
    check_statement(statement)
        .err()
        .map(|e| Err(user_error("25006", e.to_string())))
}

#[async_trait]
impl QueryHook for ReadOnlyGuard {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        guard(statement).map(|r| r.map(|()| Response::EmptyQuery))
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        guard(statement).map(|r| r.map(|()| unreachable_plan()))
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _plan: &LogicalPlan,
        _params: &ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        guard(statement).map(|r| r.map(|()| Response::EmptyQuery))
    }
}

/// `guard` only ever returns errors; this satisfies the types.
fn unreachable_plan() -> LogicalPlan {
    LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(datafusion::common::DFSchema::empty()),
    })
}

/// Dispatches every query to the connection's own session, watched by
/// the statement's [`stop::Watch`].
struct Queries {
    state: Arc<AppState>,
    parser: Arc<TenantParser>,
}

/// `response` with its rows (if any) ended early when the statement stops.
fn watched(response: Response, watch: &stop::Watch, timeout: Option<std::time::Duration>) -> Response {
    match response {
        Response::Query(mut query) => {
            let rows = std::mem::replace(query.data_rows(), Box::pin(futures::stream::empty()));
            *query.data_rows() = Box::pin(watch.rows(timeout, rows));
            Response::Query(query)
        }
        other => other,
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = live_conn(&self.state, client)?;
        let watch = stop::Watch::begin(&conn.current, conn.peer.clone());
        let timeout = settings::statement_timeout(client.metadata());
        let responses = watch
            .run(
                timeout,
                SimpleQueryHandler::do_query(conn.service.as_ref(), client, query),
            )
            .await?;
        // Read again: a SET earlier in this same message counts.
        let timeout = settings::statement_timeout(client.metadata());
        Ok(responses.into_iter().map(|r| watched(r, &watch, timeout)).collect())
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = DfStatement;
    type QueryParser = TenantParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = live_conn(&self.state, client)?;
        let watch = stop::Watch::begin(&conn.current, conn.peer.clone());
        let timeout = settings::statement_timeout(client.metadata());
        let response = watch
            .run(
                timeout,
                ExtendedQueryHandler::do_query(conn.service.as_ref(), client, portal, max_rows),
            )
            .await?;
        Ok(watched(response, &watch, timeout))
    }
}

/// Parses with the connection's session (plans see its tables only).
struct TenantParser {
    state: Arc<AppState>,
    describer: Arc<Parser>,
}

#[async_trait]
impl QueryParser for TenantParser {
    type Statement = DfStatement;

    async fn parse_sql<C>(&self, client: &C, sql: &str, types: &[Option<Type>]) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let conn = live_conn(&self.state, client)?;
        conn.service.query_parser().parse_sql(client, sql, types).await
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.describer.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.describer.get_result_schema(stmt, column_format)
    }
}

/// Loads a PEM certificate chain and PKCS#8 key for TLS.
pub fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> anyhow::Result<pgwire::tokio::TlsAcceptor> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading private key {}", key.display()))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("certificate and key do not match")?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts Postgres connections on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
) -> anyhow::Result<()> {
    let handlers = Arc::new(Handlers::new(state)?);
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                tracing::warn!(error = %e, "postgres accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The connection runs on the SQL runtime: pgwire parses and plans a
        // statement inside the connection's task, so planning a huge
        // statement takes SQL threads, never the ones that acknowledge
        // ingest. The socket moves to that runtime's reactor with it.
        let socket = match socket.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot hand a postgres connection to the SQL runtime");
                continue;
            }
        };
        let key_id: Arc<std::sync::OnceLock<String>> = Arc::default();
        let connection = connection(handlers.clone(), socket, peer, tls.clone(), key_id.clone());
        let task = match handlers.state.sql.engine().runtime() {
            Some(runtime) => runtime.spawn(connection),
            None => tokio::spawn(connection),
        };
        let state = handlers.state.clone();
        tokio::spawn(async move {
            let abort = task.abort_handle();
            tokio::select! {
                _ = task => {}
                // Aborting the connection's task drops its socket: an idle
                // session ends too, not only at its next statement.
                lapse = key_lapsed(&state, &key_id) => {
                    abort.abort();
                    tracing::info!(%peer, key = %key_id.get().map_or("", String::as_str), %lapse, "postgres connection closed: its key lapsed");
                }
            }
        });
    }
}

/// One connection, from the socket's hand-over to its end.
async fn connection(
    handlers: Arc<Handlers>,
    socket: std::net::TcpStream,
    peer: std::net::SocketAddr,
    tls: Option<pgwire::tokio::TlsAcceptor>,
    key_id: Arc<std::sync::OnceLock<String>>,
) {
    let socket = match tokio::net::TcpStream::from_std(socket) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot register a postgres connection with the SQL runtime");
            return;
        }
    };
    let watch = match watch_handle(&socket) {
        Ok(w) => Some(Arc::new(w)),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot watch a postgres socket; a vanished client's statement runs to its bounds");
            None
        }
    };
    let conn_handlers = handlers.connection(watch, key_id);
    if let Err(e) = pgwire::tokio::process_socket(socket, tls, conn_handlers).await {
        tracing::debug!(%peer, error = %e, "postgres connection ended with an error");
    }
}

/// How often a connection's key is checked while the connection is idle.
const KEY_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Returns once the key the connection signed in with is revoked, expired
/// or gone: within [`KEY_CHECK_EVERY`] of that, also when no statement comes.
async fn key_lapsed(state: &AppState, key_id: &std::sync::OnceLock<String>) -> services::keys::KeyLapse {
    let mut tick = tokio::time::interval(KEY_CHECK_EVERY);
    loop {
        tick.tick().await;
        if let Some(id) = key_id.get()
            && let Err(lapse) = state.keys.standing(id)
        {
            return lapse;
        }
    }
}

/// A second handle on `socket` (a duplicate of its descriptor), registered
/// on its own, so that a statement can wait for the client to hang up
/// while pgwire owns the connection.
fn watch_handle(socket: &tokio::net::TcpStream) -> std::io::Result<tokio::net::TcpStream> {
    use std::os::fd::AsFd as _;
    let fd = socket.as_fd().try_clone_to_owned()?;
    let std_socket = std::net::TcpStream::from(fd);
    std_socket.set_nonblocking(true)?;
    tokio::net::TcpStream::from_std(std_socket)
}
