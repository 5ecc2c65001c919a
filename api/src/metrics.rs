//! Prometheus metrics, `GET /metrics` in the text exposition format: what an operator needs to
//! see that money flows (notifications by provider and outcome, events appended, command
//! latency), that screens are connected (subscriptions open) and that reports are fresh
//! (projection lag), and how busy the database pool is.
//!
//! The metrics are process-wide, like the process they describe. Values that are cheaper to
//! read than to track (lag, pool, events appended) are read when scraped.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::app::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    provider: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProjectionLabels {
    projection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadLabels {
    served_by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HostLabels {
    host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: String,
}

struct Metrics {
    registry: Registry,
    /// Advanced at each scrape by what the store counted since the last one.
    events_appended: Counter,
    command_seconds: Family<CommandLabels, Histogram>,
    notifications: Family<NotificationLabels, Counter>,
    inbox_recovered: Family<NotificationLabels, Counter>,
    projection_lag: Family<ProjectionLabels, Gauge>,
    subscriptions_open: Gauge,
    db_connections: Family<PoolLabels, Gauge>,
    db_primary: Family<HostLabels, Gauge>,
    replica_reads: Family<ReadLabels, Counter>,
    report_invariants_broken: Counter,
    report_invariants_broken_seen: AtomicU64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("feeledger");
    let events_appended = Counter::default();
    registry.register("events_appended", "Events appended to the log by this process", events_appended.clone());
    let command_seconds: Family<CommandLabels, Histogram> =
        Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_5, 2.0, 14)));
    registry.register(
        "command_duration_seconds",
        "Time to decide and append a GraphQL mutation, by command and outcome (ok, error)",
        command_seconds.clone(),
    );
    let notifications = Family::<NotificationLabels, Counter>::default();
    registry.register(
        "notifications",
        "Payment notifications received, by provider and outcome (recorded, duplicate, unmatched, ignored, rejected)",
        notifications.clone(),
    );
    let inbox_recovered = Family::<NotificationLabels, Counter>::default();
    registry.register(
        "inbox_recovered",
        "Notifications left unfinished by an interruption and finished later, by provider and outcome \
         (recorded, unmatched, superseded by the provider's retry, ignored, rejected)",
        inbox_recovered.clone(),
    );
    let projection_lag = Family::<ProjectionLabels, Gauge>::default();
    registry.register("projection_lag", "Events committed but not yet applied, per projection", projection_lag.clone());
    let subscriptions_open = Gauge::default();
    registry.register("subscriptions_open", "GraphQL subscriptions open on this node", subscriptions_open.clone());
    let db_connections = Family::<PoolLabels, Gauge>::default();
    registry.register(
        "db_connections",
        "Database pool connections by state (in_use, idle, max)",
        db_connections.clone(),
    );
    let db_primary = Family::<HostLabels, Gauge>::default();
    registry.register(
        "db_primary",
        "1 for the PostgreSQL host this node writes to (host:port); no series while no host accepts writes",
        db_primary.clone(),
    );
    let replica_reads = Family::<ReadLabels, Counter>::default();
    registry.register(
        "replica_reads",
        "Reads that may use the read replica, by where they were served (replica; primary: the replica lagged or failed)",
        replica_reads.clone(),
    );
    let report_invariants_broken = Counter::default();
    registry.register(
        "report_invariants_broken",
        "Reports refused because their lines did not add up to their totals (each is logged as an error)",
        report_invariants_broken.clone(),
    );
    Metrics {
        registry,
        events_appended,
        command_seconds,
        notifications,
        inbox_recovered,
        projection_lag,
        subscriptions_open,
        db_connections,
        db_primary,
        replica_reads,
        report_invariants_broken,
        report_invariants_broken_seen: AtomicU64::new(0),
    }
});

/// Records one GraphQL mutation.
pub fn command(name: &str, ok: bool, took: Duration) {
    let labels = CommandLabels { command: name.to_owned(), outcome: if ok { "ok" } else { "error" }.to_owned() };
    METRICS.command_seconds.get_or_create(&labels).observe(took.as_secs_f64());
}

/// Records one payment notification and what became of it.
pub fn notification(provider: &str, outcome: &str) {
    let labels = NotificationLabels { provider: provider.to_owned(), outcome: outcome.to_owned() };
    METRICS.notifications.get_or_create(&labels).inc();
}

/// Records one interrupted notification finished by the inbox recovery.
pub fn inbox_recovered(provider: &str, outcome: &str) {
    let labels = NotificationLabels { provider: provider.to_owned(), outcome: outcome.to_owned() };
    METRICS.inbox_recovered.get_or_create(&labels).inc();
}

/// Counts an open subscription for as long as it lives.
#[derive(Debug)]
pub struct OpenSubscription(());

impl OpenSubscription {
    pub fn open() -> Self {
        METRICS.subscriptions_open.inc();
        OpenSubscription(())
    }
}

impl Drop for OpenSubscription {
    fn drop(&mut self) {
        METRICS.subscriptions_open.dec();
    }
}

/// The metrics now, in the Prometheus text format.
pub async fn render(state: &AppState) -> String {
    let metrics = &*METRICS;
    let counts = state.ledger.store().take_counts();
    metrics.events_appended.inc_by(counts.events_appended);
    let broken = feeledger_projections::invariants::broken_total();
    let seen = metrics.report_invariants_broken_seen.swap(broken, Ordering::Relaxed);
    metrics.report_invariants_broken.inc_by(broken.saturating_sub(seen));

    match state.runner.statuses().await {
        Ok(statuses) => {
            for status in statuses {
                let labels = ProjectionLabels { projection: status.name.to_owned() };
                metrics.projection_lag.get_or_create(&labels).set(status.lag);
            }
        }
        Err(error) => tracing::warn!(%error, "cannot read projection lag for /metrics"),
    }
    let pool = state.ledger.store().pool_usage();
    for (name, value) in [("in_use", pool.in_use), ("idle", pool.idle), ("max", pool.max)] {
        metrics.db_connections.get_or_create(&PoolLabels { state: name.to_owned() }).set(i64::from(value));
    }
    for (served_by, count) in [("replica", counts.replica_reads), ("primary", counts.primary_reads_instead)] {
        metrics.replica_reads.get_or_create(&ReadLabels { served_by: served_by.to_owned() }).inc_by(count);
    }
    metrics.db_primary.clear();
    if let Some(host) = state.ledger.store().primary_host() {
        metrics.db_primary.get_or_create(&HostLabels { host }).set(1);
    }

    let mut text = String::new();
    if let Err(error) = encode(&mut text, &metrics.registry) {
        tracing::error!(%error, "cannot encode the metrics");
    }
    text
}
