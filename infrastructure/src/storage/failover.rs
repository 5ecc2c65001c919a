//! Several PostgreSQL hosts: finding the primary and following it through a failover.
//!
//! sqlx connects to one host, so a libpq-style URL naming several
//! (`postgres://user@h1:5432,h2:5433/feeledger?target_session_attrs=read-write`) is split here
//! into one set of connect options per host. The store's pool connects to the host that accepts
//! writes; a watcher asks that host every [`PRIMARY_CHECK`] whether it still does, and when it
//! does not (it is gone, or it was demoted), probes every host and points the pool at the one
//! that is now the primary (`Pool::set_connect_options`): new connections, the `LISTEN`
//! connection and the projection leases (which connect with the pool's options) follow it.
//! Connections to the old primary die with it and the pool discards them.
//!
//! Promotion itself is not done here: that is the job of a person or a failover manager
//! (docs/OPERATIONS.md, "PostgreSQL with a standby").

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::ConnectOptions as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use tokio::sync::watch;

use super::StoreError;

/// How often the watcher asks the current primary whether it still is one.
pub const PRIMARY_CHECK: Duration = Duration::from_millis(500);
/// How long one host may take to connect and answer a probe before it counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The most hosts a URL may name.
pub const HOSTS_MAX: usize = 16;

/// One host of a URL, as written (`db1`, `10.0.0.5`, `[::1]`) with its port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Which kind of server a URL wants, libpq's `target_session_attrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSession {
    /// `read-write` or `primary`: the server that accepts writes (the default).
    ReadWrite,
    /// `any`: whichever answers first (a read replica URL).
    Any,
    /// `standby` or `prefer-standby`: a server in recovery, or the primary if none answers
    /// (a read replica URL).
    PreferStandby,
}

/// A `postgres://` URL naming one or several hosts.
#[derive(Clone, PartialEq, Eq)]
pub struct PgHosts {
    hosts: Vec<HostPort>,
    /// The URL with `{HOST}` where the host list was and `target_session_attrs` removed.
    template: String,
    pub target: TargetSession,
}

impl fmt::Debug for PgHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The template holds the password.
        f.debug_struct("PgHosts").field("hosts", &self.hosts).field("target", &self.target).finish_non_exhaustive()
    }
}

const HOST_MARK: &str = "{HOST}";
const DEFAULT_PORT: u16 = 5432;

impl PgHosts {
    /// Parses `postgres://[user[:password]@]host[:port][,host[:port]]…[/database][?params]`.
    /// `target_session_attrs` is `read-write` (also `primary`; the default), `any`, `standby`
    /// or `prefer-standby`; every other parameter is passed to each connection as written.
    pub fn parse(url: &str) -> Result<PgHosts, StoreError> {
        let bad = |why: &str| StoreError::BadUrl(format!("{}: {why}", super::redact_url(url)));
        let scheme_end = url.find("://").ok_or_else(|| bad("no scheme"))? + 3;
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let (credentials, host_list) = match authority.rfind('@') {
            Some(at) => (&authority[..=at], &authority[at + 1..]),
            None => ("", authority),
        };
        let mut hosts = Vec::new();
        for part in host_list.split(',') {
            hosts.push(parse_host_port(part).ok_or_else(|| bad(&format!("bad host {part:?}")))?);
        }
        if hosts.len() > HOSTS_MAX {
            return Err(bad(&format!("at most {HOSTS_MAX} hosts")));
        }
        let (path, query) = rest[authority_end..].split_once('?').unwrap_or((&rest[authority_end..], ""));
        let mut target = TargetSession::ReadWrite;
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("target_session_attrs", value)) => {
                    target = match value {
                        "read-write" | "primary" => TargetSession::ReadWrite,
                        "any" => TargetSession::Any,
                        "standby" | "prefer-standby" => TargetSession::PreferStandby,
                        other => return Err(bad(&format!("target_session_attrs={other} is not supported"))),
                    }
                }
                _ => kept.push(pair),
            }
        }
        let query = if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) };
        let template = format!("{}{credentials}{HOST_MARK}{path}{query}", &url[..scheme_end]);
        let parsed = PgHosts { hosts, template, target };
        // Fail now, on every host, rather than at the first failover.
        for host in &parsed.hosts {
            parsed.options(host)?;
        }
        Ok(parsed)
    }

    pub fn hosts(&self) -> &[HostPort] {
        &self.hosts
    }

    /// The connect options of one host.
    pub fn options(&self, host: &HostPort) -> Result<PgConnectOptions, StoreError> {
        let url = self.template.replacen(HOST_MARK, &host.to_string(), 1);
        PgConnectOptions::from_str(&url).map_err(StoreError::db("parsing the PostgreSQL URL"))
    }
}

fn parse_host_port(text: &str) -> Option<HostPort> {
    let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
        let (v6, after) = bracketed.split_once(']')?;
        (format!("[{v6}]"), after.strip_prefix(':'))
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (text.to_owned(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok().filter(|p| *p > 0)?,
        None => DEFAULT_PORT,
    };
    Some(HostPort { host, port })
}

/// What one host said when probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRole {
    Primary,
    Standby,
}

/// Connects to `options` and asks whether the server is in recovery, within [`PROBE_TIMEOUT`].
pub async fn probe(options: &PgConnectOptions) -> Result<(HostRole, PgConnection), String> {
    let attempt = async {
        let mut connection = options.connect().await.map_err(|e| e.to_string())?;
        let role = role_of(&mut connection).await.map_err(|e| e.to_string())?;
        Ok((role, connection))
    };
    tokio::time::timeout(PROBE_TIMEOUT, attempt).await.unwrap_or_else(|_| Err("no answer in time".into()))
}

/// Whether the server of `connection` is the primary (`pg_is_in_recovery()` is false).
pub async fn role_of(connection: &mut PgConnection) -> Result<HostRole, sqlx::Error> {
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()").fetch_one(connection).await?;
    Ok(if in_recovery { HostRole::Standby } else { HostRole::Primary })
}

/// Probes every host at once and returns the first (in the URL's order) that has `wanted`,
/// or, with `fallback_to_primary`, the primary when no host has it.
pub async fn find(hosts: &PgHosts, wanted: HostRole, fallback_to_primary: bool) -> Result<HostPort, StoreError> {
    let mut probes = tokio::task::JoinSet::new();
    for (index, host) in hosts.hosts().iter().enumerate() {
        let options = hosts.options(host)?;
        probes.spawn(async move {
            // The probe's connection is dropped: only its answer is needed.
            (index, probe(&options).await.map(|(role, _)| role))
        });
    }
    let mut answers: Vec<(usize, Result<HostRole, String>)> = probes.join_all().await;
    answers.sort_by_key(|(index, _)| *index);
    let with_role = |role: HostRole| answers.iter().find(|(_, a)| a.as_ref().is_ok_and(|r| *r == role));
    let chosen = with_role(wanted).or_else(|| fallback_to_primary.then(|| with_role(HostRole::Primary)).flatten());
    if let Some((index, _)) = chosen {
        let primaries = answers.iter().filter(|(_, a)| matches!(a, Ok(HostRole::Primary))).count();
        if primaries > 1 {
            tracing::error!(
                primaries,
                "several hosts accept writes (the old primary came back as a primary?): using the first; \
                 fence the other one"
            );
        }
        return Ok(hosts.hosts()[*index].clone());
    }
    let tried = answers
        .iter()
        .map(|(index, answer)| {
            let host = &hosts.hosts()[*index];
            match answer {
                Ok(HostRole::Primary) => format!("{host}: primary"),
                Ok(HostRole::Standby) => format!("{host}: standby"),
                Err(error) => format!("{host}: {error}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(StoreError::NoPrimary(tried))
}

/// Where the pool connects now: the primary's host, or `None` while no host accepts writes.
pub type PrimaryWatch = watch::Receiver<Option<HostPort>>;

/// Keeps `pool` pointed at the primary among `hosts`, until the pool is closed.
pub(super) async fn follow_primary(
    pool: PgPool,
    hosts: Arc<PgHosts>,
    mut current: HostPort,
    primary: watch::Sender<Option<HostPort>>,
) {
    let mut monitor: Option<PgConnection> = None;
    while !pool.is_closed() {
        tokio::time::sleep(PRIMARY_CHECK).await;
        if still_primary(&hosts, &current, &mut monitor).await {
            continue;
        }
        monitor = None;
        match find(&hosts, HostRole::Primary, false).await {
            Ok(found) => {
                let options = match hosts.options(&found) {
                    Ok(options) => options,
                    Err(error) => {
                        tracing::error!(%error, "cannot use the new primary's options");
                        continue;
                    }
                };
                // Announced before the pool connects there: a reader that reached the new
                // primary sees the announcement after its read (the live feed relies on it).
                announce(&primary, Some(found.clone()));
                if found != current {
                    tracing::warn!(db.primary.from = %current, db.primary.to = %found, "the PostgreSQL primary moved: following it");
                    pool.set_connect_options(with_session_settings(options));
                    current = found;
                }
            }
            Err(error) => {
                if primary.borrow().is_some() {
                    tracing::warn!(%error, "no PostgreSQL host accepts writes: waiting for a primary");
                }
                announce(&primary, None);
            }
        }
    }
}

/// Tells the watchers (the live feed, `/readyz`) only when the answer changed.
fn announce(primary: &watch::Sender<Option<HostPort>>, now: Option<HostPort>) {
    primary.send_if_modified(|known| {
        let changed = *known != now;
        *known = now;
        changed
    });
}

/// Asks the current primary, on a connection kept for this, whether it still is one.
async fn still_primary(hosts: &PgHosts, current: &HostPort, monitor: &mut Option<PgConnection>) -> bool {
    if let Some(connection) = monitor.as_mut() {
        match tokio::time::timeout(PROBE_TIMEOUT, role_of(connection)).await {
            Ok(Ok(HostRole::Primary)) => return true,
            Ok(Ok(HostRole::Standby)) | Ok(Err(_)) | Err(_) => return false,
        }
    }
    let Ok(options) = hosts.options(current) else { return false };
    match probe(&options).await {
        Ok((HostRole::Primary, connection)) => {
            *monitor = Some(connection);
            true
        }
        _ => false,
    }
}

/// The per-session settings every feeledger connection carries (see `postgres.rs`).
pub(super) fn with_session_settings(options: PgConnectOptions) -> PgConnectOptions {
    options
        .application_name("feeledger")
        .options([("idle_in_transaction_session_timeout", super::postgres::IDLE_IN_TRANSACTION_TIMEOUT_MS)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_may_name_several_hosts_each_with_its_port() {
        let hosts = PgHosts::parse(
            "postgres://app:pw@db1:5432,db2:5433,db3/feeledger?target_session_attrs=read-write&sslmode=disable",
        )
        .unwrap();
        let named: Vec<String> = hosts.hosts().iter().map(ToString::to_string).collect();
        assert_eq!(named, ["db1:5432", "db2:5433", "db3:5432"]);
        assert_eq!(hosts.target, TargetSession::ReadWrite);
        let options = hosts.options(&hosts.hosts()[1]).unwrap();
        assert_eq!(options.get_host(), "db2");
        assert_eq!(options.get_port(), 5433);
        assert_eq!(options.get_database(), Some("feeledger"));
        assert_eq!(options.get_username(), "app");
        assert!(!format!("{hosts:?}").contains("pw"), "the password never prints");
    }

    #[test]
    fn one_host_and_ipv6_hosts_parse_too() {
        let one = PgHosts::parse("postgres://db/feeledger").unwrap();
        assert_eq!(one.hosts(), [HostPort { host: "db".into(), port: 5432 }]);
        let v6 = PgHosts::parse("postgresql://u@[::1]:5433,[fe80::1]/x?target_session_attrs=any").unwrap();
        assert_eq!(v6.hosts()[0], HostPort { host: "[::1]".into(), port: 5433 });
        assert_eq!(v6.hosts()[1].port, 5432);
        assert_eq!(v6.target, TargetSession::Any);
        assert_eq!(
            PgHosts::parse("postgres://r@a,b/x?target_session_attrs=prefer-standby").unwrap().target,
            TargetSession::PreferStandby
        );
    }

    #[test]
    fn bad_host_lists_and_unknown_targets_are_refused_without_the_password() {
        for url in [
            "postgres://u:secret@db1:5432,/x",
            "postgres://u:secret@db1:notaport/x",
            "postgres://u:secret@db1/x?target_session_attrs=read-only",
        ] {
            let error = PgHosts::parse(url).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }
}
