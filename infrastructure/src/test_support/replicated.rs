//! A PostgreSQL primary and its streaming replica, made for one test in a temporary directory on
//! spare ports, and taken down (stopped, directory removed) when dropped, even when the test
//! fails.
//!
//! The server binaries are found in `FEELEDGER_TEST_PG_BIN`, else in the newest
//! `/usr/lib/postgresql/*/bin`. Without them the test is skipped with a loud message; under CI
//! (`CI=true`) it fails instead, as the other PostgreSQL tests do. As root, every server
//! command runs as the `postgres` user (PostgreSQL refuses to run as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

pub const PG_BIN_VAR: &str = "FEELEDGER_TEST_PG_BIN";

/// How the replica confirms commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replication {
    /// `synchronous_standby_names = '*'`, `synchronous_commit = on`: a commit returns once the
    /// replica has flushed it.
    Synchronous,
    /// The primary does not wait for the replica.
    Asynchronous,
}

#[derive(Debug, Clone, Copy)]
enum Role {
    Primary,
    Replica,
}

/// One server of the pair.
#[derive(Debug)]
pub struct Server {
    pub port: u16,
    data: PathBuf,
    log: PathBuf,
}

impl Server {
    /// `postgres://postgres@127.0.0.1:PORT/database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

#[derive(Debug)]
pub struct ReplicatedCluster {
    pub primary: Server,
    pub replica: Server,
    bin: PathBuf,
    as_postgres: bool,
    dir: Option<tempfile::TempDir>,
}

impl ReplicatedCluster {
    /// Creates and starts a primary and a replica made with `pg_basebackup -R`, and waits until
    /// the replica streams (and, when synchronous, is the synchronous standby). `None`
    /// (announced loudly) when the server binaries are missing.
    ///
    /// # Panics
    /// Under CI when the binaries are missing, or when a server cannot be made.
    pub async fn start(replication: Replication) -> Option<ReplicatedCluster> {
        let bin = server_binaries()?;
        let as_postgres = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("feeledger-ha-")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        if as_postgres {
            run(Command::new("chown").args(["postgres:", &dir.path().display().to_string()]));
        }
        let (primary_port, replica_port) = (spare_port(), spare_port());
        let server = |name: &str, port| Server {
            port,
            data: dir.path().join(name),
            log: dir.path().join(format!("{name}.log")),
        };
        let mut cluster = ReplicatedCluster {
            primary: server("primary", primary_port),
            replica: server("replica", replica_port),
            bin,
            as_postgres,
            dir: Some(dir),
        };
        let socket_dir = cluster.dir().display().to_string();
        let primary_data = cluster.primary.data.display().to_string();
        cluster.pg(
            "initdb",
            &["-D", &primary_data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        );
        let synchronous = match replication {
            Replication::Synchronous => "synchronous_standby_names = '*'\nsynchronous_commit = on\n",
            Replication::Asynchronous => "",
        };
        append(
            &cluster.primary.data.join("postgresql.conf"),
            &format!(
                "port = {primary_port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{socket_dir}'\n\
                 fsync = off\nshared_buffers = 16MB\nmax_connections = 150\nwal_level = replica\n\
                 wal_retrieve_retry_interval = 200ms\n{synchronous}"
            ),
        );
        cluster.start_on_a_spare_port(Role::Primary);
        let primary_port = cluster.primary.port;
        cluster.pg(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &primary_port.to_string(),
                "-U",
                "postgres",
                "-D",
                &cluster.replica.data.display().to_string(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
        );
        append(&cluster.replica.data.join("postgresql.conf"), &format!("port = {replica_port}\n"));
        cluster.start_on_a_spare_port(Role::Replica);
        cluster.wait_for_streaming(replication).await;
        Some(cluster)
    }

    /// Both servers, primary first, as one libpq-style URL:
    /// `postgres://postgres@127.0.0.1:P1,127.0.0.1:P2/database?target_session_attrs=read-write`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@{},{}/{database}?target_session_attrs=read-write",
            self.primary.host(),
            self.replica.host()
        )
    }

    /// Creates a database on the primary (the replica gets it by replication).
    pub async fn create_database(&self, name: &str) {
        let mut connection = connect(&self.primary.url("postgres")).await;
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut connection).await.unwrap_or_else(|e| {
            panic!("cannot create database {name}: {e}");
        });
        let _ = connection.close().await;
    }

    /// Kills the primary as a power cut would: `pg_ctl stop -m immediate` (no shutdown
    /// checkpoint, sessions cut).
    pub async fn crash_primary(&self) {
        self.pg_async("pg_ctl", &["-D", &self.primary.data.display().to_string(), "-m", "immediate", "stop"]).await;
    }

    /// Promotes the replica, as a failover manager would: first it stops waiting for a
    /// synchronous standby (it has none now: commits would wait for ever), then `pg_ctl
    /// promote`. Returns when it accepts writes.
    pub async fn promote_replica(&self) {
        let mut replica = connect(&self.replica.url("postgres")).await;
        sqlx::query("ALTER SYSTEM SET synchronous_standby_names = ''")
            .execute(&mut replica)
            .await
            .unwrap_or_else(|e| panic!("cannot reset synchronous_standby_names: {e}"));
        sqlx::query("SELECT pg_reload_conf()").execute(&mut replica).await.unwrap_or_else(|e| panic!("reload: {e}"));
        let _ = replica.close().await;
        self.pg_async("pg_ctl", &["-D", &self.replica.data.display().to_string(), "-w", "-t", "30", "promote"]).await;
    }

    /// Stops the replica cleanly (it receives nothing more until started again).
    pub async fn stop_replica(&self) {
        self.pg_async("pg_ctl", &["-D", &self.replica.data.display().to_string(), "-m", "fast", "-w", "stop"]).await;
    }

    /// Starts the replica again (still a standby).
    pub async fn start_replica(&self) {
        let (data, log) = (self.replica.data.display().to_string(), self.replica.log.display().to_string());
        self.pg_async("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "30", "start"]).await;
    }

    /// Waits until the replica has replayed everything the primary has written so far.
    pub async fn wait_until_replayed(&self) {
        let mut primary = connect(&self.primary.url("postgres")).await;
        let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
            .fetch_one(&mut primary)
            .await
            .unwrap_or_else(|e| panic!("pg_current_wal_lsn: {e}"));
        let _ = primary.close().await;
        let mut replica = connect(&self.replica.url("postgres")).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let replayed: bool = sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                .bind(&written)
                .fetch_one(&mut replica)
                .await
                .unwrap_or_else(|e| panic!("pg_last_wal_replay_lsn: {e}"));
            if replayed {
                break;
            }
            assert!(Instant::now() < deadline, "the replica never replayed {written}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = replica.close().await;
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new("/nonexistent"), |d| d.path())
    }

    /// Starts one server. A port that was free when chosen can be taken before the server binds
    /// it (by another test's server or connection); then the server is given another port and
    /// started again, up to five times. Any other failure panics with the server's log.
    fn start_on_a_spare_port(&mut self, role: Role) {
        for attempt in 1..=5 {
            let server = match role {
                Role::Primary => &self.primary,
                Role::Replica => &self.replica,
            };
            let (data, log) = (server.data.display().to_string(), server.log.display().to_string());
            let output = self
                .command("pg_ctl")
                .args(["-D", &data, "-l", &log, "-w", "-t", "30", "start"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run pg_ctl: {e}"));
            if output.status.success() {
                return;
            }
            let log_text = std::fs::read_to_string(&server.log).unwrap_or_default();
            let port_taken = log_text.contains("could not bind") || log_text.contains("could not create any TCP/IP");
            assert!(
                port_taken && attempt < 5,
                "pg_ctl start of the {role:?} on port {} failed: {}\n--- {log} ---\n{log_text}",
                server.port,
                String::from_utf8_lossy(&output.stderr)
            );
            let port = spare_port();
            append(&server.data.join("postgresql.conf"), &format!("port = {port}\n"));
            // A fresh log, so that the next attempt's failure is read from its own lines.
            let _ = std::fs::remove_file(&server.log);
            match role {
                Role::Primary => self.primary.port = port,
                Role::Replica => self.replica.port = port,
            }
        }
    }

    async fn wait_for_streaming(&self, replication: Replication) {
        let wanted = match replication {
            Replication::Synchronous => "sync",
            Replication::Asynchronous => "async",
        };
        let mut primary = connect(&self.primary.url("postgres")).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state: Option<String> =
                sqlx::query_scalar("SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming' LIMIT 1")
                    .fetch_optional(&mut primary)
                    .await
                    .unwrap_or_else(|e| panic!("pg_stat_replication: {e}"));
            if state.as_deref() == Some(wanted) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the replica never streamed ({state:?}): see {}",
                self.replica.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = primary.close().await;
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn pg(&self, program: &str, args: &[&str]) {
        run(self.command(program).args(args));
    }

    async fn pg_async(&self, program: &str, args: &[&str]) {
        let mut command = tokio::process::Command::from(self.command(program));
        let output = command.args(args).output().await.unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for ReplicatedCluster {
    fn drop(&mut self) {
        for server in [&self.primary, &self.replica] {
            if server.data.join("postmaster.pid").exists() {
                let data = server.data.display().to_string();
                let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
            }
        }
        // The directory goes with its TempDir.
        self.dir.take();
    }
}

/// A connection to one server (superuser, trust auth).
pub async fn connect(url: &str) -> sqlx::PgConnection {
    let options: PgConnectOptions = url.parse().unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
    options.connect().await.unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"))
}

fn server_binaries() -> Option<PathBuf> {
    let configured = std::env::var(PG_BIN_VAR).ok().filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    let found = configured.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|entry| Some((entry.file_name().to_str()?.parse().ok()?, entry.path().join("bin"))))
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    });
    match found {
        Some(bin) if ["initdb", "pg_ctl", "pg_basebackup", "postgres"].iter().all(|p| bin.join(p).exists()) => {
            Some(bin)
        }
        _ => {
            let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !in_ci,
                "the PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) are missing under CI: set {PG_BIN_VAR}"
            );
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: replication tests did not run: no PostgreSQL server binaries. Install postgresql or set {PG_BIN_VAR} ***\n"
            );
            None
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A port nobody listens on now. It is taken below the kernel's ephemeral range (32768–60999
/// on Linux), where the client side of the tests' many connections never lands, and checked
/// free by binding it; each call moves on from a start that differs between processes.
fn spare_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let seed = std::process::id().wrapping_mul(7_919)
        ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let _ = NEXT.compare_exchange(u32::MAX, seed % COUNT, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..COUNT {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % COUNT;
        let port = u16::try_from(FIRST + offset).expect("the range is below 65536");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no spare port between {FIRST} and {}", FIRST + COUNT)
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    file.write_all(text.as_bytes()).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

fn run(command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
