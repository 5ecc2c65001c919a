//! The `feeledger` command line. Every command reads the same settings as the server
//! (`--database-url` / `FEELEDGER_DATABASE_URL`, default `sqlite://feeledger.db`), prints its
//! result on stdout and its errors on stderr, and exits non-zero on failure.
#![allow(clippy::print_stdout, reason = "a CLI prints its results")]

use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use feeledger_domain::codes::{AgencyCode, CaseCode, CounterId};
use feeledger_infrastructure::audit;
use feeledger_infrastructure::ledger::{CaseRecord, Ledger};
use feeledger_infrastructure::settings::{
    DEFAULT_DATABASE_URL, DEFAULT_LISTEN, DEFAULT_QR_TTL_MINUTES, FileSettings, ProviderSecrets, Secret, Settings,
};
use feeledger_infrastructure::storage::{Checkpoint, RecordedEvent, redact_url};

use crate::app::{Application, open_store};
use crate::auth::{Role, TokenRequest, TokenService};
use crate::graphql::scalars::DateTimeScalar;
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "feeledger", version, about = "Cashless fee collection ledger for one-stop counters")]
struct Cli {
    /// Log format on stderr [default: human].
    #[arg(long, global = true, value_enum, env = "FEELEDGER_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Settings file (TOML; see feeledger.example.toml) [default: ./feeledger.toml if present].
    /// The command line and FEELEDGER_* variables override it.
    #[arg(long, global = true, env = "FEELEDGER_CONFIG")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Every setting's environment variable. A test checks the command line declares exactly these
/// and that docker-compose.yml sets no other; at start-up an unknown `FEELEDGER_*` variable (a
/// typo) is reported.
pub const ENV_VARS: &[&str] = &[
    "FEELEDGER_CARD_FEE_MAX_PER_MILLE",
    "FEELEDGER_CASHLESS_TARGET_PERCENT",
    "FEELEDGER_CASSO_CHECKSUM_KEY",
    "FEELEDGER_CONFIG",
    "FEELEDGER_DATABASE_MAX_CONNECTIONS",
    "FEELEDGER_DATABASE_URL",
    "FEELEDGER_LISTEN",
    "FEELEDGER_LIVE_POLL_MS",
    "FEELEDGER_INBOX_RECOVERY_AFTER_SECONDS",
    "FEELEDGER_LOG_FORMAT",
    "FEELEDGER_NO_MIGRATE",
    "FEELEDGER_PAYOS_CHECKSUM_KEY",
    "FEELEDGER_PUBLIC_BASE_URL",
    "FEELEDGER_PUBLIC_RATE_GLOBAL_PER_MINUTE",
    "FEELEDGER_PUBLIC_RATE_PER_CLIENT_PER_MINUTE",
    "FEELEDGER_QR_TTL_MINUTES",
    "FEELEDGER_READ_DATABASE_URL",
    "FEELEDGER_RUN_PROJECTIONS",
    "FEELEDGER_SEPAY_API_KEY",
    "FEELEDGER_SEPAY_HMAC_SECRET",
    "FEELEDGER_TOKEN_SECRET",
    "FEELEDGER_TRUST_FORWARDED_FOR",
    "FEELEDGER_VNPAY_HASH_SECRET",
];

/// `FEELEDGER_*` variables that are not settings (a misspelt one would otherwise be ignored
/// silently). The test suite's own variables are not settings of the service.
fn unknown_env_vars() -> Vec<String> {
    std::env::vars()
        .map(|(name, _)| name)
        .filter(|name| name.starts_with("FEELEDGER_") && !name.starts_with("FEELEDGER_TEST_"))
        .filter(|name| !ENV_VARS.contains(&name.as_str()))
        .collect()
}

/// The settings file, read once before any command runs.
static FILE_SETTINGS: std::sync::OnceLock<FileSettings> = std::sync::OnceLock::new();

fn file_settings() -> &'static FileSettings {
    FILE_SETTINGS.get_or_init(FileSettings::default)
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (GraphQL, webhooks, screens).
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArgs),
    /// Bearer tokens for people and screens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Replay and check the event history.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Export data.
    #[command(subcommand)]
    Export(ExportCommand),
    /// The read models behind the reports.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Bank statements.
    #[command(subcommand)]
    Statements(StatementsCommand),
    /// The State Treasury's and the tax office's forms, from the treasury read model.
    #[command(subcommand)]
    Reports(ReportsCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FileFormat {
    Csv,
    Xlsx,
}

#[derive(Debug, Subcommand)]
enum ReportsCommand {
    /// The monthly fee declaration (01/PHLP) of an agency, as CSV (or XLSX) on stdout.
    Declaration {
        #[arg(long)]
        agency: String,
        /// YYYY-MM.
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "csv")]
        format: FileFormat,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// The yearly settlement of phí (02/PHLP) of an agency.
    Settlement {
        #[arg(long)]
        agency: String,
        #[arg(long)]
        year: i32,
        #[arg(long, value_enum, default_value = "csv")]
        format: FileFormat,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// A remittance's deposit voucher lines (C1-02/NS).
    Voucher {
        remittance_id: uuid::Uuid,
        #[arg(long, value_enum, default_value = "csv")]
        format: FileFormat,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Each projection: version, generation, checkpoint, lag, rebuild in progress.
    Status {
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Rebuilds a projection from position zero into a new generation (the current one keeps
    /// answering), with a progress bar, and switches when caught up.
    Rebuild {
        /// treasury, payments, cashless or receipts.
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum StatementsCommand {
    /// Imports a statement file; lines already imported are left as they are.
    Import {
        file: std::path::PathBuf,
        /// auto, csv, camt053, mt940, vietinbank, vietcombank, bidv or agribank (default: auto,
        /// recognised from the file's content).
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Args)]
struct DatabaseArgs {
    /// postgres://… or sqlite://… (the SQLite file is created if missing) [default:
    /// sqlite://feeledger.db].
    #[arg(long, env = "FEELEDGER_DATABASE_URL")]
    database_url: Option<String>,
    /// PostgreSQL read replica(s) for reads that tolerate one: case reads, exports, audits
    /// (docs/OPERATIONS.md).
    #[arg(long, env = "FEELEDGER_READ_DATABASE_URL")]
    read_database_url: Option<String>,
    /// Signing key for bearer tokens (at least 32 characters). Default: a key generated once
    /// and kept in the database.
    #[arg(long, env = "FEELEDGER_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// Do not migrate on start, only check the schema is current: for a node connecting as
    /// the application role (docs/OPERATIONS.md).
    #[arg(long, env = "FEELEDGER_NO_MIGRATE")]
    no_migrate: bool,
}

impl DatabaseArgs {
    /// Command line and environment first, then the settings file, then the defaults.
    fn settings(&self) -> Settings {
        let file = file_settings();
        let defaults = Settings::default();
        Settings {
            database_url: self
                .database_url
                .clone()
                .or_else(|| file.database_url.clone())
                .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            token_secret: self.token_secret.clone().map(Secret::new).or_else(|| file.token_secret.clone()),
            migrate: !self.no_migrate && file.migrate.unwrap_or(true),
            database_max_connections: file.database_max_connections.unwrap_or(defaults.database_max_connections),
            read_database_url: self.read_database_url.clone().or_else(|| file.read_database_url.clone()),
            ..defaults
        }
    }
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FEELEDGER_LISTEN")]
    listen: Option<String>,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Load the demo agency, counters, account and fee schedule, and print tokens and URLs.
    #[arg(long)]
    demo: bool,
    /// How long a payment QR stays valid, in minutes [default: 15].
    #[arg(long, env = "FEELEDGER_QR_TTL_MINUTES")]
    qr_ttl_minutes: Option<u32>,
    /// How often live subscribers look for events of other nodes without a notification, in
    /// milliseconds [default: 1000].
    #[arg(long, env = "FEELEDGER_LIVE_POLL_MS")]
    live_poll_ms: Option<u64>,
    /// Seconds after which a notification left unfinished (a crash) is finished by the recovery.
    #[arg(long, env = "FEELEDGER_INBOX_RECOVERY_AFTER_SECONDS")]
    inbox_recovery_after_seconds: Option<u64>,
    /// Database connections per node [default: 16].
    #[arg(long, env = "FEELEDGER_DATABASE_MAX_CONNECTIONS")]
    database_max_connections: Option<u32>,
    /// The cashless-rate target, percent [default: 80].
    #[arg(long, env = "FEELEDGER_CASHLESS_TARGET_PERCENT")]
    cashless_target_percent: Option<String>,
    /// The most an acquirer may deduct when settling a day's card payments, in thousandths of
    /// the day's total [default: 30, i.e. 3%].
    #[arg(long, env = "FEELEDGER_CARD_FEE_MAX_PER_MILLE")]
    card_fee_max_per_mille: Option<i64>,
    /// Whether this node may run the projections (one node at a time does) [default: true].
    #[arg(long, env = "FEELEDGER_RUN_PROJECTIONS")]
    run_projections: Option<bool>,
    /// The address people use to reach the service, for printed links.
    #[arg(long, env = "FEELEDGER_PUBLIC_BASE_URL")]
    public_base_url: Option<String>,
    /// Requests a minute one client address may make for the public payment page [default: 60].
    #[arg(long, env = "FEELEDGER_PUBLIC_RATE_PER_CLIENT_PER_MINUTE")]
    public_rate_per_client_per_minute: Option<u32>,
    /// Requests a minute for the public payment page from all clients together [default: 6000].
    #[arg(long, env = "FEELEDGER_PUBLIC_RATE_GLOBAL_PER_MINUTE")]
    public_rate_global_per_minute: Option<u32>,
    /// Take the client address from the last `X-Forwarded-For` entry (behind your own proxy).
    #[arg(long, env = "FEELEDGER_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: Option<bool>,
    #[command(flatten)]
    providers: ProviderArgs,
}

/// The payment intermediaries' keys: from the environment only (a command line is visible to
/// every user of the machine).
#[derive(Debug, Args)]
struct ProviderArgs {
    #[arg(long, hide = true, env = "FEELEDGER_SEPAY_API_KEY", hide_env_values = true)]
    sepay_api_key: Option<String>,
    #[arg(long, hide = true, env = "FEELEDGER_SEPAY_HMAC_SECRET", hide_env_values = true)]
    sepay_hmac_secret: Option<String>,
    #[arg(long, hide = true, env = "FEELEDGER_CASSO_CHECKSUM_KEY", hide_env_values = true)]
    casso_checksum_key: Option<String>,
    #[arg(long, hide = true, env = "FEELEDGER_PAYOS_CHECKSUM_KEY", hide_env_values = true)]
    payos_checksum_key: Option<String>,
    #[arg(long, hide = true, env = "FEELEDGER_VNPAY_HASH_SECRET", hide_env_values = true)]
    vnpay_hash_secret: Option<String>,
}

impl ProviderArgs {
    fn secrets(&self) -> ProviderSecrets {
        let secret = |value: &Option<String>| value.as_ref().filter(|v| !v.is_empty()).map(Secret::new);
        ProviderSecrets {
            sepay_api_key: secret(&self.sepay_api_key),
            sepay_hmac_secret: secret(&self.sepay_hmac_secret),
            casso_checksum_key: secret(&self.casso_checksum_key),
            payos_checksum_key: secret(&self.payos_checksum_key),
            vnpay_hash_secret: secret(&self.vnpay_hash_secret),
        }
    }
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Issue a token and print it alone on stdout.
    Issue {
        #[arg(long, value_enum)]
        role: Role,
        /// The agency the token acts for (required for officer and display).
        #[arg(long)]
        agency: Option<String>,
        /// The counter (required for display; optional for officer).
        #[arg(long)]
        counter: Option<String>,
        /// Who the token is for, recorded as the actor of what it does.
        #[arg(long)]
        subject: Option<String>,
        /// Validity in hours (default: 30 days; 365 days for displays).
        #[arg(long)]
        ttl_hours: Option<i64>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Every event of a case and its state as of an instant, replayed from the log.
    History {
        case_code: String,
        /// RFC 3339 instant (default: now).
        #[arg(long)]
        as_of: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Recompute every hash chain and daily digest; exit 0 when intact, 1 naming the first
    /// bad stream and position otherwise.
    Verify {
        /// Verify an exported file (`feeledger export events`) instead of the database.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Seal every finished day not sealed yet with its daily digest (the server does this
    /// on its own every hour).
    Seal {
        /// Seal up to this Vietnamese calendar day (YYYY-MM-DD; default: yesterday). A day is
        /// only sealable once it is over.
        #[arg(long)]
        through: Option<chrono::NaiveDate>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Print the daily digests, to publish or send to a third party.
    Digests {
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ExportCommand {
    /// All events in commit order as JSON lines on stdout.
    Events {
        /// Start after this global position (default: from the beginning).
        #[arg(long, default_value_t = 0)]
        from: i64,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let file = match FileSettings::load(cli.config.as_deref()) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let log_format = match (cli.log_format, file.log_format.as_deref()) {
        (Some(format), _) => format,
        (None, None | Some("human")) => LogFormat::Human,
        (None, Some("json")) => LogFormat::Json,
        (None, Some(other)) => {
            eprintln!("error: invalid setting log_format in the settings file: {other:?} (human or json)");
            return ExitCode::from(2);
        }
    };
    let _ = FILE_SETTINGS.set(file);
    telemetry::init(log_format);
    for name in unknown_env_vars() {
        tracing::warn!(variable = %name, "unknown setting in the environment, ignored (see docs/OPERATIONS.md)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(database) => {
            let settings = Settings { migrate: true, ..database.settings() };
            open_store(&settings).await?;
            eprintln!("database {} is migrated", redact_url(&settings.database_url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Tokens(TokensCommand::Issue { role, agency, counter, subject, ttl_hours, database }) => {
            let agency = agency.as_deref().map(AgencyCode::parse).transpose()?;
            let counter = counter.as_deref().map(CounterId::parse).transpose()?;
            let settings = database.settings();
            let store = open_store(&settings).await?;
            let tokens = TokenService::load(settings.token_secret.as_ref(), &store).await?;
            let mut request = TokenRequest::new(role, agency, counter);
            request.subject = subject;
            if let Some(hours) = ttl_hours {
                if hours <= 0 {
                    bail!("--ttl-hours must be positive");
                }
                request.ttl = chrono::Duration::hours(hours);
            }
            println!("{}", tokens.issue(&request, Utc::now())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCommand::History { case_code, as_of, format, database }) => {
            audit_history(&case_code, as_of.as_deref(), format, &database).await
        }
        Command::Audit(AuditCommand::Verify { file, database }) => audit_verify(file.as_deref(), &database).await,
        Command::Audit(AuditCommand::Seal { through, database }) => audit_seal(through, &database).await,
        Command::Audit(AuditCommand::Digests { format, database }) => audit_digests(format, &database).await,
        Command::Export(ExportCommand::Events { from, database }) => export_events(from, &database).await,
        Command::Projections(ProjectionsCommand::Status { database }) => projections_status(&database).await,
        Command::Projections(ProjectionsCommand::Rebuild { name, database }) => {
            projections_rebuild(&name, &database).await
        }
        Command::Statements(StatementsCommand::Import { file, format, database }) => {
            statements_import(&file, format.as_deref(), &database).await
        }
        Command::Reports(command) => reports(command).await,
    }
}

/// Writes a form to stdout. The read model is used as it is: when no server has applied the
/// newest events, the command says so on stderr (`feeledger projections status`).
async fn reports(command: ReportsCommand) -> anyhow::Result<ExitCode> {
    use feeledger_domain::declaration::DeclarationPeriod;
    use feeledger_domain::remittance_voucher::CollectionMonth;
    use std::io::Write as _;

    let database = match &command {
        ReportsCommand::Declaration { database, .. }
        | ReportsCommand::Settlement { database, .. }
        | ReportsCommand::Voucher { database, .. } => database,
    };
    let store = open_store(&database.settings()).await?;
    let ledger = Ledger::new(store.clone());
    let runner = feeledger_projections::runner::Runner::new(store, std::time::Duration::from_secs(1));
    if runner.caught_up("treasury", std::time::Duration::from_millis(500)).await.is_err() {
        eprintln!("warning: the treasury read model is behind the log; figures may miss the newest events");
    }
    let treasury = feeledger_projections::treasury::TreasuryReports::new(runner.documents().clone());
    let bytes = match command {
        ReportsCommand::Declaration { agency, month, format, .. } => {
            let agency = AgencyCode::parse(agency.trim())?;
            let month = CollectionMonth::parse(&month).context("--month must be YYYY-MM")?;
            let period = DeclarationPeriod::Month { year: month.year, month: month.month };
            let declaration = treasury.declaration(&agency, period).await?;
            let configured = ledger.agency(&agency).await?.current;
            match format {
                FileFormat::Csv => crate::budget_exports::declaration_csv(&declaration)?,
                FileFormat::Xlsx => crate::budget_exports::declaration_xlsx(&declaration, configured.as_ref())?,
            }
        }
        ReportsCommand::Settlement { agency, year, format, .. } => {
            let agency = AgencyCode::parse(agency.trim())?;
            let declaration = treasury.declaration(&agency, DeclarationPeriod::Year { year }).await?;
            let configured = ledger.agency(&agency).await?.current;
            match format {
                FileFormat::Csv => crate::budget_exports::declaration_csv(&declaration)?,
                FileFormat::Xlsx => crate::budget_exports::declaration_xlsx(&declaration, configured.as_ref())?,
            }
        }
        ReportsCommand::Voucher { remittance_id, format, .. } => {
            let Some(voucher) = treasury.voucher(remittance_id).await? else {
                bail!("no remittance {remittance_id}");
            };
            let configured = ledger.agency(&voucher.agency_code).await?.current;
            match format {
                FileFormat::Csv => crate::budget_exports::voucher_csv(&voucher)?,
                FileFormat::Xlsx => crate::budget_exports::voucher_xlsx(&voucher, configured.as_ref())?,
            }
        }
    };
    std::io::stdout().write_all(&bytes).context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

async fn projections_status(database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&database.settings()).await?;
    let runner = feeledger_projections::runner::Runner::new(store, std::time::Duration::from_secs(1));
    println!("{:<10} {:>7} {:>10} {:>22} {:>10}  REBUILD", "NAME", "VERSION", "GENERATION", "CHECKPOINT", "LAG");
    for status in runner.statuses().await? {
        let rebuild = status.rebuild.map_or_else(
            || "-".to_owned(),
            |r| format!("generation {}: {}/{} events, {}/s", r.generation, r.done, r.total, r.events_per_second),
        );
        println!(
            "{:<10} {:>7} {:>10} {:>22} {:>10}  {rebuild}",
            status.name,
            status.version,
            status.generation,
            status.checkpoint.to_string(),
            status.lag
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn projections_rebuild(name: &str, database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&database.settings()).await?;
    let runner = feeledger_projections::runner::Runner::new(store, std::time::Duration::from_millis(200));
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:40}] {pos}/{len} events  {msg}  ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_owned());
    let mut updates = runner.subscribe_progress();
    let watcher = {
        let bar = bar.clone();
        tokio::spawn(async move {
            while let Ok(progress) = updates.recv().await {
                let p = progress.rebuild;
                bar.set_length(u64::try_from(p.total).unwrap_or(0));
                bar.set_position(u64::try_from(p.done).unwrap_or(0));
                bar.set_message(format!("{} events/s", p.events_per_second));
                if p.finished {
                    break;
                }
            }
        })
    };
    let started = std::time::Instant::now();
    let generation = runner.rebuild_here(name).await?;
    // The switch may have been made by a server's runner building the same generation: then
    // no "finished" progress comes from this process, and the watcher would wait for ever.
    watcher.abort();
    if let Err(error) = watcher.await
        && error.is_panic()
    {
        tracing::error!(%error, "the progress bar's task panicked");
    }
    bar.finish();
    let status = runner.status(name).await?;
    eprintln!(
        "rebuilt {} into generation {generation} in {:.1} s; now answering from it (lag {})",
        status.name,
        started.elapsed().as_secs_f64(),
        status.lag
    );
    // The generation it replaced: deleted after the switch, a chunk per transaction.
    let dropping = std::time::Instant::now();
    let dropped = runner.documents().drop_replaced_generations(name).await?;
    if dropped > 0 {
        eprintln!("dropped the replaced generation's {dropped} documents in {:.1} s", dropping.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

async fn statements_import(
    file: &std::path::Path,
    format: Option<&str>,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    use feeledger_infrastructure::statement::StatementFormat;
    use feeledger_infrastructure::statement_store::{ImportSource, StatementStore};
    let requested: StatementFormat = format.unwrap_or("auto").parse()?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:40}] {pos}/{len} lines  {per_sec}  ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(format!("reading {}", file.display()));
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let format = match requested {
        StatementFormat::Auto => feeledger_infrastructure::statement::detect(&bytes)
            .with_context(|| format!("recognising {}", file.display()))?,
        named => named,
    };
    let statement = feeledger_infrastructure::statement::parse(format, &bytes)
        .with_context(|| format!("parsing {} as {format}", file.display()))?;
    bar.set_length(statement.lines.len() as u64);
    bar.set_prefix(format!("importing {} ({format})", file.display()));
    let store = open_store(&database.settings()).await?;
    let filename = file.file_name().and_then(|n| n.to_str());
    let progress_bar = bar.clone();
    let summary = StatementStore::new(store)
        .import_from(&statement, ImportSource { format: format.as_str(), filename }, Utc::now(), &mut move |done, _| {
            progress_bar.set_position(u64::from(done))
        })
        .await
        .with_context(|| format!("importing {}", file.display()))?;
    bar.finish_and_clear();
    let balances = match (statement.opening_balance, statement.closing_balance) {
        (Some(opening), Some(closing)) => format!(", opening balance {opening}, closing balance {closing} (checked)"),
        _ => String::new(),
    };
    println!(
        "account {} ({format}): {} lines, {} new, {} already imported{balances}",
        statement.account_number, summary.lines, summary.inserted, summary.already_known
    );
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = file_settings();
    let base = args.database.settings();
    let cashless_target_percent = match args.cashless_target_percent.as_deref().or(file.cashless_target_percent.as_deref()) {
        Some(text) => feeledger_domain::money::Percent::parse(text).map_err(|e| {
            anyhow::anyhow!("invalid setting cashless target (FEELEDGER_CASHLESS_TARGET_PERCENT or `cashless_target_percent` in feeledger.toml): {e}")
        })?,
        None => base.cashless_target_percent,
    };
    let settings = Settings {
        listen: args.listen.or_else(|| file.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        qr_ttl_seconds: args
            .qr_ttl_minutes
            .or(file.qr_ttl_minutes)
            .unwrap_or(DEFAULT_QR_TTL_MINUTES)
            .saturating_mul(60),
        live_poll_ms: args.live_poll_ms.or(file.live_poll_ms).unwrap_or(base.live_poll_ms),
        inbox_recovery_after_seconds: args
            .inbox_recovery_after_seconds
            .or(file.inbox_recovery_after_seconds)
            .unwrap_or(base.inbox_recovery_after_seconds),
        database_max_connections: args.database_max_connections.unwrap_or(base.database_max_connections),
        run_projections: args.run_projections.or(file.run_projections).unwrap_or(true),
        public_base_url: args.public_base_url.or_else(|| file.public_base_url.clone()),
        public_rate_per_client_per_minute: args
            .public_rate_per_client_per_minute
            .or(file.public_rate_per_client_per_minute)
            .unwrap_or(base.public_rate_per_client_per_minute),
        public_rate_global_per_minute: args
            .public_rate_global_per_minute
            .or(file.public_rate_global_per_minute)
            .unwrap_or(base.public_rate_global_per_minute),
        trust_forwarded_for: args.trust_forwarded_for.or(file.trust_forwarded_for).unwrap_or(false),
        cashless_target_percent,
        providers: file.providers_under(args.providers.secrets()),
        non_working_days: file.non_working_days.clone().unwrap_or_default(),
        card_fee_max_per_mille: args
            .card_fee_max_per_mille
            .or(file.card_fee_max_per_mille)
            .unwrap_or(base.card_fee_max_per_mille),
        ..base
    };
    settings.validate()?;
    let app = Application::build(&settings).await?;
    let address = app.local_addr()?;
    tracing::info!(listen = %address, database = %redact_url(&settings.database_url), "feeledger is serving");
    if args.demo {
        let tokens = crate::demo::load(app.state()).await.context("loading the demo data")?;
        tracing::info!(agency = crate::demo::AGENCY, "demo data loaded");
        print_demo(&format!("http://{address}"), &tokens);
    }
    // On SIGTERM or Ctrl-C: stop accepting, finish the requests in flight, and give open
    // subscriptions (which never finish by themselves) a grace period. Projections stop where
    // they are: a batch not yet committed is rolled back and redone from the last checkpoint,
    // on this node or, once its lease is free, on another.
    let (stopping, stopped_asking) = tokio::sync::oneshot::channel();
    let signal = async move {
        shutdown_signal().await;
        tracing::info!("stopping: finishing the requests in flight");
        let _ = stopping.send(());
    };
    let grace = async move {
        match stopped_asking.await {
            Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
            Err(_) => std::future::pending().await,
        }
    };
    let tasks = app.state().tasks.clone();
    tokio::select! {
        served = app.run_until_stopped(signal) => served?,
        () = grace => {
            tracing::warn!(grace_seconds = SHUTDOWN_GRACE.as_secs(), "connections still open after the grace period; stopping anyway");
            tasks.shutdown().await;
        }
    }
    tracing::info!("feeledger stopped");
    Ok(ExitCode::SUCCESS)
}

/// How long open connections (live subscriptions) may stay after a stop was asked for.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Prints the demo banner. Write errors are ignored: a server must not stop because whoever
/// started it closed its standard output (`println!` would panic on a broken pipe).
fn print_demo(base: &str, tokens: &crate::demo::DemoTokens) {
    use std::io::Write as _;
    let banner = format!(
        "\nfeeledger demo — agency {agency} ({name})\n  Officer screen:  {base}/counter/{counter}?token={officer}\n  Citizen screen:  {base}/display/{counter}?token={display}\n  Finance page:    {base}/finance?token={finance}\n  Oversight page:  {base}/oversight?token={oversight}\n  Admin page:      {base}/admin?token={admin}\n  GraphiQL:        {base}/graphql\n\n  Tokens (Authorization: Bearer <token>):\n    officer    {officer}\n    display    {display}\n    finance    {finance}\n    auditor    {auditor}\n    admin      {admin}\n    oversight  {oversight}\n\n",
        agency = crate::demo::AGENCY,
        name = crate::demo::AGENCY_NAME,
        counter = crate::demo::COUNTERS[0],
        officer = tokens.officer,
        display = tokens.display,
        finance = tokens.finance,
        auditor = tokens.auditor,
        admin = tokens.admin,
        oversight = tokens.oversight,
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
}

/// Ctrl-C or SIGTERM: stop accepting, finish what is in flight.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}

async fn open_ledger(database: &DatabaseArgs) -> anyhow::Result<Ledger> {
    Ok(Ledger::new(open_store(&database.settings()).await?))
}

async fn audit_history(
    code: &str,
    as_of: Option<&str>,
    format: OutputFormat,
    database: &DatabaseArgs,
) -> anyhow::Result<ExitCode> {
    let code = CaseCode::parse(code)?;
    let as_of = match as_of {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .with_context(|| format!("--as-of {text:?} is not RFC 3339"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let ledger = open_ledger(database).await?;
    let record = ledger.load_case_as_of(&code, as_of).await?;
    if !record.exists() {
        bail!("case {code} has no events at or before {as_of}");
    }
    match format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&history_json(&record, as_of))?),
        OutputFormat::Table => print_history_table(&record, as_of),
    }
    Ok(ExitCode::SUCCESS)
}

fn history_json(record: &CaseRecord, as_of: DateTime<Utc>) -> serde_json::Value {
    let state = &record.state;
    serde_json::json!({
        "case": record.code.to_string(),
        "as_of": DateTimeScalar(as_of).0.to_rfc3339(),
        "state": {
            "status": format!("{:?}", state.status),
            "total": state.total().to_string(),
            "paid": state.paid.to_string(),
            "outstanding": state.outstanding().to_string(),
            "overpaid": state.overpaid().to_string(),
            "qr": state.qr.as_ref().map(|q| serde_json::json!({
                "id": q.qr.qr_id, "amount": q.qr.amount.to_string(), "status": format!("{:?}", q.status)
            })),
            "receipts": state.receipts.iter().map(|r| serde_json::json!({
                "id": r.receipt_id, "template": r.template_symbol, "serial": r.serial, "number": r.number,
                "amount": r.amount.to_string(),
                "cancelled": state.cancelled_receipts.iter().any(|c| c.receipt_id == r.receipt_id),
            })).collect::<Vec<_>>(),
        },
        "events": record.events.iter().map(event_json).collect::<Vec<_>>(),
    })
}

fn event_json(event: &RecordedEvent) -> serde_json::Value {
    let mut data = event.payload.clone();
    crate::graphql::mask_personal_data(&mut data);
    serde_json::json!({
        "position": event.position,
        "stream_version": event.stream_version,
        "type": event.event_type,
        "recorded_at": event.recorded_at.to_rfc3339(),
        "actor": event.metadata.get("actor"),
        "data": data,
    })
}

fn print_history_table(record: &CaseRecord, as_of: DateTime<Utc>) {
    let state = &record.state;
    println!("Case {} as of {}", record.code, as_of.to_rfc3339());
    println!(
        "  status {:?}  total {}  paid {}  outstanding {}  overpaid {}",
        state.status,
        state.total().grouped(),
        state.paid.grouped(),
        state.outstanding().grouped(),
        state.overpaid().grouped()
    );
    println!();
    println!("{:>10}  {:>4}  {:<20}  {:<27}  ACTOR", "POSITION", "VER", "TYPE", "RECORDED AT");
    for event in &record.events {
        let actor = event.metadata.get("actor").and_then(|a| a.as_str()).unwrap_or("-");
        println!(
            "{:>10}  {:>4}  {:<20}  {:<27}  {}",
            event.position,
            event.stream_version,
            event.event_type,
            event.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            actor
        );
    }
}

async fn audit_verify(file: Option<&std::path::Path>, database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} verifying: {pos} events checked  {per_sec}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    let progress = |checked: u64| bar.set_position(checked);
    let (source, report) = match file {
        Some(path) => (path.display().to_string(), audit::verify_file(path, progress)?),
        None => {
            let settings = database.settings();
            let store = open_store(&settings).await?;
            (redact_url(&settings.database_url), audit::verify_store(&*store.for_reads().await, progress).await?)
        }
    };
    bar.finish_and_clear();
    let sealed = match report.last_sealed_day {
        Some(day) => format!("{} days sealed, the last {day}", report.sealed_days),
        None => "no day sealed yet".to_owned(),
    };
    let Some(first) = report.findings.first() else {
        println!(
            "intact: {source}: {} events in {} streams; every hash chain verifies; {sealed}; {} events after it are chained, not yet sealed",
            report.events, report.streams, report.unsealed_events
        );
        return Ok(ExitCode::SUCCESS);
    };
    println!("TAMPERED: {source}: {first}");
    for finding in report.findings.iter().skip(1).take(20) {
        println!("  also: {finding}");
    }
    if report.findings.len() > 21 {
        println!("  … and {} more", report.findings.len() - 21);
    }
    Ok(ExitCode::from(1))
}

async fn audit_seal(through: Option<chrono::NaiveDate>, database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let finished = audit::last_sealable_day(Utc::now());
    let through = through.unwrap_or(finished);
    if through > finished {
        bail!("{through} is not over yet (the last day that can be sealed now is {finished})");
    }
    let store = open_store(&database.settings()).await?;
    let seals = audit::seal_through(&store, through).await?;
    if seals.is_empty() {
        eprintln!("nothing to seal through {through}");
    }
    for seal in &seals {
        println!("{}  {:>8} events  {}", seal.date, seal.events, seal.digest);
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit_digests(format: OutputFormat, database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(&database.settings()).await?;
    let seals = audit::seals(&store).await?;
    match format {
        OutputFormat::Json => {
            for seal in &seals {
                let line = serde_json::json!({
                    "date": seal.date, "events": seal.events, "first_position": seal.first_position,
                    "last_position": seal.last_position, "previous_digest": seal.previous_digest, "digest": seal.digest,
                });
                println!("{line}");
            }
        }
        OutputFormat::Table => {
            println!("{:<10}  {:>8}  {:>21}  DIGEST (SHA-256, chained)", "DATE", "EVENTS", "POSITIONS");
            for seal in &seals {
                let positions = format!("{}–{}", seal.first_position, seal.last_position);
                println!("{:<10}  {:>8}  {:>21}  {}", seal.date, seal.events, positions, seal.digest);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export_events(from: i64, database: &DatabaseArgs) -> anyhow::Result<ExitCode> {
    let ledger = open_ledger(database).await?;
    let store = ledger.store().for_reads().await;
    let mut checkpoint = Checkpoint::START;
    let mut exported = 0u64;
    loop {
        let batch = store.read_all(checkpoint, 1_000).await?;
        let Some(last) = batch.last() else { break };
        checkpoint = last.checkpoint();
        for event in batch.iter().filter(|e| e.position > from) {
            println!("{}", serde_json::to_string(event)?);
            exported += 1;
        }
    }
    eprintln!("exported {exported} events");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_documented_environment_variables_are_exactly_those_the_command_line_reads() {
        fn collect(command: &clap::Command, into: &mut std::collections::BTreeSet<String>) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    into.insert(env.to_string_lossy().into_owned());
                }
            }
            for sub in command.get_subcommands() {
                collect(sub, into);
            }
        }
        let mut declared = std::collections::BTreeSet::new();
        collect(&super::Cli::command(), &mut declared);
        let listed: std::collections::BTreeSet<String> = super::ENV_VARS.iter().map(|v| (*v).to_owned()).collect();
        assert_eq!(declared, listed);
    }
}
