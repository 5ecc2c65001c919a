//! Exactly one node runs each projection at a time.
//!
//! On PostgreSQL the lease is a session advisory lock, `pg_try_advisory_lock(FEELEDGER,
//! hashtext(name))`, held on a connection of its own outside the pool: when the holding process
//! dies, PostgreSQL ends its session and frees the lock, and the next node that asks takes the
//! projection over from its last committed checkpoint. The connection's `application_name`
//! names the projection and the holding process, so `pg_stat_activity` shows who runs what.
//!
//! Holding the lease is an optimisation, not what keeps the read models right: every batch
//! commits only if the checkpoint is still the one it started from, so even two runners of one
//! projection (a holder that lost its lease and has not noticed yet) never apply an event twice.
//!
//! On SQLite one process owns the file, and the lease is always granted.

use std::time::Duration;

use super::failover::{self, HostRole};
use super::{Storage, StoreError};
use sqlx::{ConnectOptions as _, PgConnection};

/// The first key of every feeledger advisory lock ("FELG").
const LOCK_NAMESPACE: i32 = 0x4645_4c47;

/// How often a node without the lease asks for it, and a holder checks it still has it.
pub const LEASE_CHECK: Duration = Duration::from_secs(2);

pub enum Lease {
    Postgres(PgConnection),
    Local,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Lease::Postgres(_) => "Lease::Postgres",
            Lease::Local => "Lease::Local",
        })
    }
}

impl Lease {
    /// Waits until this process holds the lease of projection `name`. A node standing by keeps
    /// one connection and asks on it, rather than connecting anew every time.
    pub async fn acquire(store: &Storage, name: &str) -> Lease {
        let Storage::Postgres(pg) = store else { return Lease::Local };
        let mut waiting_logged = false;
        let mut standby: Option<PgConnection> = None;
        loop {
            let asked = match standby.take() {
                Some(connection) => Ok(connection),
                None => connect(pg.pool(), name).await,
            };
            match asked {
                Ok(mut connection) => match try_lock(&mut connection, name).await {
                    Ok(true) => {
                        tracing::info!(projection = name, "holding the projection lease: running it on this node");
                        return Lease::Postgres(connection);
                    }
                    Ok(false) => {
                        if !waiting_logged {
                            tracing::info!(projection = name, "another node runs this projection; standing by");
                            waiting_logged = true;
                        }
                        standby = Some(connection);
                    }
                    // The connection is dropped; the next round opens another.
                    Err(error) => tracing::warn!(projection = name, %error, "cannot ask for the projection lease"),
                },
                Err(error) => tracing::warn!(projection = name, %error, "cannot ask for the projection lease"),
            }
            tokio::time::sleep(LEASE_CHECK).await;
        }
    }

    /// Resolves when the lease is lost: its connection broke, or its server is no longer the
    /// primary (a failover); never, for a local lease.
    pub async fn lost(&mut self) {
        let Lease::Postgres(connection) = self else { return std::future::pending().await };
        loop {
            tokio::time::sleep(LEASE_CHECK).await;
            match failover::role_of(connection).await {
                Ok(HostRole::Primary) => {}
                Ok(HostRole::Standby) => {
                    tracing::warn!("the projection lease's server is now a standby: the lease is lost");
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "the projection lease's connection broke: the lease is lost");
                    return;
                }
            }
        }
    }
}

/// A connection of its own for the lease, named after the projection and this process.
async fn connect(pool: &sqlx::PgPool, name: &str) -> Result<PgConnection, StoreError> {
    let options = pool
        .connect_options()
        .as_ref()
        .clone()
        .application_name(&format!("feeledger projection {name} (pid {})", std::process::id()));
    options.connect().await.map_err(StoreError::db("opening the lease connection"))
}

/// Takes the lock only on the primary: a lease held on a standby (a demoted primary that still
/// answers) would guard nothing.
async fn try_lock(connection: &mut PgConnection, name: &str) -> Result<bool, StoreError> {
    if failover::role_of(connection).await.map_err(StoreError::db("asking the server's role"))? != HostRole::Primary {
        return Err(StoreError::NoPrimary("the lease connection reached a standby".into()));
    }
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1, hashtext($2))")
        .bind(LOCK_NAMESPACE)
        .bind(name)
        .fetch_one(connection)
        .await
        .map_err(StoreError::db("asking for the projection lease"))
}
