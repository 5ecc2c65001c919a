//! A real `feeledger serve` process, for tests that kill one: the binary beside the test
//! executable, a clean `FEELEDGER_*` environment, the listening address read from its log.
#![allow(clippy::zombie_processes, reason = "nodes are killed and reaped on drop")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a node may take to migrate and start listening.
pub const START_PATIENCE: Duration = Duration::from_secs(60);

/// The `feeledger` binary beside this test's own executable (`cargo test --workspace` builds it
/// for the api crate's tests; otherwise `cargo build --bin feeledger`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("feeledger");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bin feeledger` (cargo test --workspace does)",
        path.display()
    );
    path
}

/// `feeledger` on `database_url` with only the given settings in its environment.
pub fn feeledger(database_url: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars() {
        if name.starts_with("FEELEDGER_") {
            command.env_remove(name);
        }
    }
    command.env("FEELEDGER_DATABASE_URL", database_url);
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// A serving node; killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Node {
    pub child: Child,
    /// `http://127.0.0.1:port`
    pub base: String,
}

impl Node {
    /// Starts `feeledger serve` on a free port and returns once it says it is serving.
    pub fn start(database_url: &str, env: &[(&str, &str)], extra_args: &[&str]) -> Node {
        let mut child = feeledger(database_url, env)
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let deadline = Instant::now() + START_PATIENCE;
        while let Some(Ok(line)) = lines.next() {
            if let Ok(log) = serde_json::from_str::<Value>(&line)
                && log["message"] == "feeledger is serving"
            {
                let base = format!("http://{}", log["listen"].as_str().unwrap());
                // Keep draining the log so the node never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines.by_ref() {});
                return Node { child, base };
            }
            assert!(Instant::now() < deadline, "the node did not start in time");
        }
        panic!("the node exited before serving");
    }

    /// SIGKILL: no shutdown hook, no flush, whatever was in flight is cut off.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `feeledger migrate` on `database_url`.
pub fn migrate(database_url: &str, env: &[(&str, &str)]) {
    let output = feeledger(database_url, env).arg("migrate").output().unwrap();
    assert!(output.status.success(), "migrate: {}", String::from_utf8_lossy(&output.stderr));
}

/// `feeledger tokens issue ARGS…`
pub fn token(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let output = feeledger(database_url, env).args(["tokens", "issue"]).args(args).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// POSTs a GraphQL document to the node at `base`, failing the test on any error; returns `data`.
pub async fn graphql(base: &str, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["errors"].is_null(), "{query}: {body:#}");
    body["data"].clone()
}
