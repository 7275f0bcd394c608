//! The one startup path, shared by `roster serve`, the tests and the benchmark (zero2prod's
//! `Application::build` / `run_until_stopped`): connect, migrate, build the application, bind,
//! start the projector, serve.

use crate::app::App;
use crate::clock::Clock;
use crate::config::Config;
use crate::http;
use crate::mail::{MailError, Mailer};
use crate::lane::Lane;
use crate::websocket::Sockets;
use roster_store::db;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything a server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The database.
    pub database: DatabaseSettings,
    /// Address to listen on, e.g. `127.0.0.1:8080`; port 0 picks a free port
    /// ([`Application::address`] tells which).
    pub bind: String,
    /// What the API needs to know about its deployment.
    pub config: Config,
}

/// Where the database is and how many connections to keep.
#[derive(Clone)]
pub struct DatabaseSettings {
    /// A `postgres://` URL.
    pub url: String,
    /// Pool size (default 20).
    pub max_connections: u32,
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("DatabaseSettings").field("max_connections", &self.max_connections).finish_non_exhaustive()
    }
}

impl DatabaseSettings {
    /// `url` with the default pool size.
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), max_connections: 20 }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be reached: the error names host, port, database, user and
    /// the cause (never the password).
    // Transparent: the wrapped error is also the source, and a report of the chain
    // (`{:#}`) printed it twice with "{0}".
    #[error(transparent)]
    Connect(#[from] db::ConnectError),
    /// A migration failed.
    #[error("applying migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The address could not be bound (in use, not local, malformed).
    #[error("binding {0} (choose another address with ROSTER_BIND or --bind): {1}")]
    Bind(String, std::io::Error),
    /// A mail setting is wrong (it names the variable).
    #[error(transparent)]
    Mail(#[from] MailError),
}

/// A built server: migrated database, bound listener, application ready to serve.
pub struct Application {
    app: App,
    mailer: Option<Mailer>,
    listener: tokio::net::TcpListener,
    address: SocketAddr,
}

impl Application {
    /// Connects to the database, applies pending migrations, builds the application reading
    /// time from `clock`, and binds the listener. Nothing is served until
    /// [`Application::run_until_stopped`].
    ///
    /// Errors: [`StartupError`].
    pub async fn build(settings: Settings, clock: Arc<dyn Clock>) -> Result<Self, StartupError> {
        let pool = db::connect(&settings.database.url, settings.database.max_connections).await?;
        db::migrate(&pool).await?;
        let listener = tokio::net::TcpListener::bind(&settings.bind).await.map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let address = listener.local_addr().map_err(|e| StartupError::Bind(settings.bind.clone(), e))?;
        let app = App::new(pool, settings.config, clock);
        let mailer = Mailer::new(&app)?;
        Ok(Self { app, mailer, listener, address })
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The application (for tests: its clock's view and its projector's fail point).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Runs the projector (and the mailer, when mail is on) and serves HTTP until `shutdown`
    /// resolves; in-flight requests are finished first, and open websockets are closed (code 1001).
    ///
    /// Errors: what the listener reports, or that the websocket lane's runtime could not start
    /// ([`Lane::start`]).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let config = self.app.config().clone();
        // First, so that a lane that cannot start leaves no task running.
        let lane = Lane::start(config.websocket_nice)?;
        let projector = self.app.projector().clone().spawn();
        let mailer = self.mailer.map(|mailer| tokio::spawn(mailer.run()));
        let (sockets, closer) = Sockets::new(lane);
        let router = http::router(self.app, sockets);
        // Upgraded websockets are no longer the server's connections: they are closed here,
        // with a close frame, rather than cut when the process exits.
        let (stopped, stopping) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            shutdown.await;
            let _ = stopped.send(());
        };
        let sockets_closed = async move {
            if stopping.await.is_ok() {
                closer.close_all().await;
            }
        };
        let (served, ()) = tokio::join!(crate::serve::serve(self.listener, router, &config, shutdown), sockets_closed);
        projector.abort();
        if let Some(mailer) = mailer {
            mailer.abort();
        }
        served
    }
}
