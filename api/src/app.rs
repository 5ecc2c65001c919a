//! Building and running the service: `Application::build(settings)` connects and migrates the
//! database, prepares tokens and the GraphQL schema, and binds the listener (port 0 in tests).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use feeledger_infrastructure::inbox::Inbox;
use feeledger_infrastructure::ledger::Ledger;
use feeledger_infrastructure::live_feed::LiveFeed;
use feeledger_infrastructure::payment_intake::PaymentIntake;
use feeledger_infrastructure::settings::{ProviderSecrets, Settings};
use feeledger_infrastructure::statement_store::StatementStore;
use feeledger_infrastructure::storage::{Storage, StoreError, StoreOptions, redact_url};
use feeledger_infrastructure::tasks::Tasks;
use feeledger_projections::reconciliation::Reconciliations;
use feeledger_projections::runner::Runner;
use feeledger_projections::treasury::TreasuryReports;

use crate::auth::{AuthError, TokenService};
use crate::clock::Clock;
use crate::graphql::{ApiContext, FeeledgerSchema, build_schema};
use crate::http;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database {url}: {source}")]
    Database {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot prepare bearer tokens: {0}")]
    Tokens(#[from] AuthError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        #[source]
        source: std::io::Error,
    },
}

/// What every request handler shares. Cheap to clone: one reference count (axum clones the
/// state for every request, and its services each hold a store, whose clone is several).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppServices>);

impl std::ops::Deref for AppState {
    type Target = AppServices;
    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct AppServices {
    pub schema: FeeledgerSchema,
    pub tokens: TokenService,
    pub ledger: Ledger,
    pub live: LiveFeed,
    pub clock: Clock,
    pub intake: PaymentIntake,
    pub inbox: Inbox,
    /// The intermediaries' signing keys.
    pub providers: ProviderSecrets,
    pub runner: Runner,
    /// The services behind GraphQL, also used by the download routes.
    pub context: ApiContext,
    /// Whether the client address is taken from `X-Forwarded-For` (behind our own proxy).
    pub trust_forwarded_for: bool,
    /// The background tasks (live feed, projections, QR expiry, inbox recovery, daily seals),
    /// stopped when the service stops.
    pub tasks: Tasks,
}

/// Connects to the database named in `settings` and applies the migrations.
pub async fn open_store(settings: &Settings) -> Result<Storage, StartError> {
    let url = redact_url(&settings.database_url);
    let options = StoreOptions { max_connections: settings.database_max_connections, ..StoreOptions::default() };
    let mut store = Storage::connect(&settings.database_url, options)
        .await
        .map_err(|source| StartError::Database { url: url.clone(), source })?;
    if let Some(read_url) = &settings.read_database_url {
        store = store
            .with_read_replica(read_url, options)
            .await
            .map_err(|source| StartError::Database { url: redact_url(read_url), source })?;
    }
    let schema = if settings.migrate { store.migrate().await } else { store.check_schema().await };
    schema.map_err(|source| StartError::Database { url: url.clone(), source })?;
    store.check_transaction_counter().await.map_err(|source| StartError::Database { url, source })?;
    Ok(store)
}

impl std::fmt::Debug for AppServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppServices").field("ledger", &self.ledger).finish_non_exhaustive()
    }
}

/// Seals each finished day's digest (see `feeledger_infrastructure::audit`), checking every
/// hour. Every node may run it: only one seal per day lands.
fn start_daily_seals(store: Storage, tasks: &Tasks) {
    tasks.spawn("daily_seals", async move {
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            if let Err(error) = feeledger_infrastructure::audit::seal_complete_days(&store, chrono::Utc::now()).await {
                tracing::warn!(%error, "sealing the daily digests failed; retrying in an hour");
            }
        }
    });
}

#[derive(Debug)]
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
}

impl Application {
    pub async fn build(settings: &Settings) -> Result<Application, StartError> {
        // One clock for what commands decide and when their events are recorded.
        let clock = Clock::system();
        let store = open_store(settings).await?.with_clock(clock.clone());
        let tokens = TokenService::load(settings.token_secret.as_ref(), &store).await?;
        let tasks = Tasks::default();
        let live = LiveFeed::start(store.clone(), Duration::from_millis(settings.live_poll_ms.max(10)), &tasks);
        let inbox = Inbox::new(store.clone());
        let ledger = Ledger::new(store);
        crate::qr_expiry::start(ledger.clone(), &live, clock.clone(), &tasks);
        start_daily_seals(ledger.store().clone(), &tasks);
        let intake = PaymentIntake::new(ledger.clone());
        let runner = Runner::new(ledger.store().clone(), Duration::from_millis(settings.live_poll_ms.max(10)))
            .with_tasks(tasks.clone());
        if settings.run_projections {
            runner.spawn_all();
        }
        let statements = StatementStore::new(ledger.store().clone());
        let context = ApiContext {
            ledger: ledger.clone(),
            intake: intake.clone(),
            runner: runner.clone(),
            treasury: TreasuryReports::new(runner.documents().clone()).with_calendar(
                feeledger_domain::working_days::WorkingCalendar::vietnam()
                    .with_non_working_days(settings.non_working_days.iter().copied()),
            ),
            reconciliations: Reconciliations::new(runner.clone(), statements.clone()).with_batch_rules(
                feeledger_domain::batch_matching::BatchRules {
                    card_fee_max_per_mille: settings.card_fee_max_per_mille,
                    ..feeledger_domain::batch_matching::BatchRules::default()
                },
            ),
            statements,
            cashless_target_percent: settings.cashless_target_percent,
            live: crate::live_routes::LiveRoutes::start(&live, &tasks),
            clock: clock.clone(),
            qr_ttl_seconds: settings.qr_ttl_seconds,
            public_limit: crate::rate_limit::PublicRateLimit::new(
                settings.public_rate_per_client_per_minute,
                settings.public_rate_global_per_minute,
            ),
            public_base_url: settings.public_base_url.as_ref().map(|url| url.trim_end_matches('/').to_owned()),
            imports: tokio::sync::broadcast::channel(256).0,
        };
        let schema = build_schema(context.clone());
        let listener = tokio::net::TcpListener::bind(&settings.listen)
            .await
            .map_err(|source| StartError::Listen { address: settings.listen.clone(), source })?;
        let providers = settings.providers.clone();
        let state = AppState(Arc::new(AppServices {
            schema,
            tokens,
            ledger,
            live,
            clock,
            intake,
            inbox,
            providers,
            runner,
            context,
            trust_forwarded_for: settings.trust_forwarded_for,
            tasks,
        }));
        crate::webhooks::start_inbox_recovery(
            state.clone(),
            Duration::from_secs(settings.inbox_recovery_after_seconds),
        );
        Ok(Application { listener, state })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight and stops the
    /// background tasks.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let tasks = self.state.tasks.clone();
        let router = http::router(self.state);
        let served = axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        tasks.shutdown().await;
        served
    }
}
