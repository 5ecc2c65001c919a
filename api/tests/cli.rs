//! The `feeledger` binary as people run it.
#![allow(
    clippy::unwrap_used,
    clippy::zombie_processes,
    reason = "tests fail loudly; servers are killed and reaped on drop"
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use feeledger_infrastructure::test_support::TestDatabase;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_feeledger");

/// `feeledger` with no FEELEDGER_* settings inherited from the environment.
fn feeledger(dir: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command.current_dir(dir);
    for (name, _) in std::env::vars() {
        if name.starts_with("FEELEDGER_") {
            command.env_remove(name);
        }
    }
    command
}

struct Server {
    child: Child,
    base: String,
    /// Everything the server logged after it started serving (JSON lines).
    log: std::sync::Arc<std::sync::Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Stops the server and returns its whole log after start-up.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `feeledger serve --listen 127.0.0.1:0` and reads the bound address from its JSON log.
fn start(command: Command) -> Server {
    start_with(command, &[])
}

/// Like [`start`], with more `serve` arguments; the rest of the log is kept in `Server::log`.
fn start_with(mut command: Command, serve_args: &[&str]) -> Server {
    let mut child = command
        .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0"])
        .args(serve_args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(line) = stderr.next() {
        let line = line.unwrap();
        if let Ok(log) = serde_json::from_str::<Value>(&line)
            && log["message"] == "feeledger is serving"
        {
            let base = format!("http://{}", log["listen"].as_str().unwrap());
            let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let drain = {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    for line in stderr.map_while(Result::ok) {
                        let mut kept = kept.lock().unwrap();
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                })
            };
            return Server { child, base, log: kept, drain: Some(drain) };
        }
        assert!(Instant::now() < deadline, "the server did not start in time");
    }
    panic!("the server exited before serving");
}

fn issue_token(dir: &Path, args: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut command = feeledger(dir);
    command.args(["tokens", "issue"]).args(args);
    if let Some(url) = database_url {
        command.env("FEELEDGER_DATABASE_URL", url);
    }
    command.output().unwrap()
}

async fn graphql(base: &str, token: &str, query: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn serve_with_no_settings_creates_feeledger_db_and_accepts_tokens_issued_by_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(feeledger(dir.path()));
    assert!(dir.path().join("feeledger.db").exists(), "the embedded default is a SQLite file in the working directory");

    let ready = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), 200);

    let output = issue_token(dir.path(), &["--role", "admin"], None);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    assert_eq!(token.lines().count(), 1, "the token alone on stdout");
    let body = graphql(
        &server.base,
        token.trim(),
        "mutation { configureAgency(input: { code: \"H34.22.6\", name: \"UBND\", bankBin: \"970415\", accountNumber: \"1133\", accountName: \"UBND\", retainsFees: false, counters: [\"quay-1\"] }) { code } }",
    )
    .await;
    assert_eq!(body["data"]["configureAgency"]["code"], "H34.22.6", "{body:#}");
}

#[tokio::test]
async fn a_token_for_a_role_without_its_scope_is_refused_with_a_message_and_a_failure_exit() {
    let dir = tempfile::tempdir().unwrap();
    let output = issue_token(dir.path(), &["--role", "officer"], None);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--agency"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = issue_token(dir.path(), &["--role", "officer", "--agency", "not an agency"], None);
    assert!(!output.status.success());
}

#[tokio::test]
async fn the_database_url_switches_the_service_to_postgresql() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut command = feeledger(dir.path());
    command.env("FEELEDGER_DATABASE_URL", &db.url);
    let server = start(command);
    assert!(!dir.path().join("feeledger.db").exists(), "no SQLite file when PostgreSQL is configured");
    let output = issue_token(dir.path(), &["--role", "admin"], Some(&db.url));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let body = graphql(
        &server.base,
        token.trim(),
        "mutation { configureAgency(input: { code: \"H34.22.6\", name: \"UBND\", bankBin: \"970415\", accountNumber: \"1133\", accountName: \"UBND\", retainsFees: false, counters: [\"quay-1\"] }) { code } }",
    )
    .await;
    assert!(body["errors"].is_null(), "{body:#}");
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().unwrap();
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE event_type = 'AgencyConfigured'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "the agency was recorded in PostgreSQL");
    pool.close().await;
}

#[tokio::test]
async fn serve_demo_loads_the_demo_agency_once_and_prints_working_tokens() {
    let dir = tempfile::tempdir().unwrap();
    for run in 0..2 {
        let mut command = feeledger(dir.path());
        let mut child = command
            .args(["--log-format", "json", "serve", "--listen", "127.0.0.1:0", "--demo"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut admin = None;
        let mut graphiql = None;
        for line in stdout.lines() {
            let line = line.unwrap();
            if let Some(rest) = line.trim().strip_prefix("GraphiQL:") {
                graphiql = Some(rest.trim().trim_end_matches("/graphql").to_owned());
            }
            if let Some(rest) = line.trim().strip_prefix("admin ") {
                admin = Some(rest.trim().to_owned());
                break;
            }
        }
        let server = Server {
            child,
            base: graphiql.expect("the demo prints the GraphiQL URL"),
            log: Default::default(),
            drain: None,
        };
        let admin = admin.expect("the demo prints an admin token");
        let body = graphql(
            &server.base,
            &admin,
            "query { feeSchedules(agencyCode: \"H34.22.6\") { version fees { kind } } agency(code: \"H34.22.6\") { name bankBin counters } }",
        )
        .await;
        assert_eq!(body["data"]["agency"]["bankBin"], "970415", "run {run}: {body:#}");
        let versions = body["data"]["feeSchedules"].as_array().unwrap();
        assert_eq!(versions.len(), 1, "run {run}: loading the demo twice publishes nothing new");
        let kinds: Vec<&str> =
            versions[0]["fees"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
        assert!(kinds.contains(&"PHI") && kinds.contains(&"LE_PHI"));
        drop(server);
    }
}

#[tokio::test]
async fn statements_import_once_and_projections_rebuild_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "account_number,booked_on,amount,direction,description,bank_reference,transaction_id\n\
               113366668888,2026-10-01,3000,credit,\"IBFT H34.22.6-261001-0001\",FT1,FT1\n\
               113366668888,2026-10-01,8000,credit,chuyen tien,FT2,FT2\n";
    std::fs::write(dir.path().join("sao-ke.csv"), csv).unwrap();
    let import = |args: &[&str]| feeledger(dir.path()).args(["statements", "import"]).args(args).output().unwrap();
    let first = import(&["sao-ke.csv"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "account 113366668888 (csv): 2 lines, 2 new, 0 already imported"
    );
    let again = import(&["sao-ke.csv", "--format", "csv"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "account 113366668888 (csv): 2 lines, 0 new, 2 already imported"
    );
    std::fs::write(dir.path().join("bad.csv"), "account_number,booked_on,amount,direction\n1,2026-10-01,12.5,credit\n")
        .unwrap();
    let bad = import(&["bad.csv"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("12.5"), "{}", String::from_utf8_lossy(&bad.stderr));

    // A bank's own XLSX export, recognised from its content whatever its name; its balances are
    // checked, and the next statement must continue from its closing balance.
    use feeledger_infrastructure::statement::fixtures::{Export, ExportLine, bank_xlsx};
    use feeledger_infrastructure::statement::{Bank, Direction};
    let line = |day: u32, dong: i64, direction: Direction, id: &str| ExportLine {
        booked_on: chrono::NaiveDate::from_ymd_opt(2026, 10, day).unwrap(),
        amount: feeledger_domain::money::Vnd::new(dong).unwrap(),
        direction,
        description: format!("IBFT {id}"),
        bank_id: id.into(),
        counterparty_name: None,
        counterparty_account: None,
    };
    let october = Export {
        account: "113366668888".into(),
        account_name: "VP".into(),
        opening: 1_000_000,
        lines: vec![line(2, 150_000, Direction::Credit, "FT3"), line(2, 11_000, Direction::Debit, "FT4")],
    };
    std::fs::write(dir.path().join("lich-su.bin"), bank_xlsx(Bank::Vietinbank, &october)).unwrap();
    let xlsx = import(&["lich-su.bin"]);
    assert!(xlsx.status.success(), "{}", String::from_utf8_lossy(&xlsx.stderr));
    assert_eq!(
        String::from_utf8_lossy(&xlsx.stdout).trim(),
        "account 113366668888 (vietinbank): 2 lines, 2 new, 0 already imported, opening balance 1000000, closing balance 1139000 (checked)"
    );
    let broken = Export { opening: 1_139_001, lines: vec![line(3, 5_000, Direction::Credit, "FT5")], ..october };
    std::fs::write(dir.path().join("next.xlsx"), bank_xlsx(Bank::Bidv, &broken)).unwrap();
    let refused = import(&["next.xlsx", "--format", "bidv"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("closes at 1139000 but the statement for 2026-10-03 to 2026-10-03 opens at 1139001"),
        "{stderr}"
    );
    let unknown = import(&["next.xlsx", "--format", "xlsx"]);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("expected one of auto, csv, camt053, mt940"));

    let rebuild = feeledger(dir.path()).args(["projections", "rebuild", "treasury"]).output().unwrap();
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    assert!(String::from_utf8_lossy(&rebuild.stderr).contains("rebuilt treasury into generation 2"));
    let status = feeledger(dir.path()).args(["projections", "status"]).output().unwrap();
    let table = String::from_utf8_lossy(&status.stdout);
    for name in ["treasury", "payments", "cashless", "receipts"] {
        assert!(table.contains(name), "{table}");
    }
    let unknown = feeledger(dir.path()).args(["projections", "rebuild", "nope"]).output().unwrap();
    assert!(!unknown.status.success());
}

#[tokio::test]
async fn a_payers_full_id_number_never_appears_in_the_logs_or_in_what_an_officer_sees() {
    const FULL_ID: &str = "079201008870";
    let dir = tempfile::tempdir().unwrap();
    let mut command = feeledger(dir.path());
    command.env("RUST_LOG", "debug");
    let server = start_with(command, &["--demo"]);
    let officer = issue_token(dir.path(), &["--role", "officer", "--agency", "H34.22.6", "--counter", "quay-1"], None);
    let officer = String::from_utf8(officer.stdout).unwrap();
    let officer = officer.trim();

    let mut seen_by_officer = Vec::new();
    let assess = format!(
        "mutation {{ assessFees(input: {{ caseCode: \"H34.22.6-240426-0002\", agencyCode: \"H34.22.6\", \
         procedureName: \"Chứng thực bản sao\", payer: {{ name: \"VÕ ĐẶNG NGỌC GIÀ\", idNumber: \"{FULL_ID}\" }}, \
         lines: [{{ feeCode: \"P-SAOY-2TRANG\", quantity: 1 }}] }}) {{ status payer {{ name maskedId }} }} }}"
    );
    let body = graphql(&server.base, officer, &assess).await;
    assert_eq!(body["data"]["assessFees"]["payer"]["maskedId"], "******8870", "{body:#}");
    seen_by_officer.push(body);
    seen_by_officer.push(
        graphql(
            &server.base,
            officer,
            "mutation { recordPayment(input: { caseCode: \"H34.22.6-240426-0002\", amount: \"2000\", channel: POS, \
             reference: \"POS-1\", idempotencyKey: \"pos-1\" }) { status } }",
        )
        .await,
    );
    seen_by_officer.push(
        graphql(
            &server.base,
            officer,
            "{ case(code: \"H34.22.6-240426-0002\") { payer { maskedId } } \
             caseHistory(code: \"H34.22.6-240426-0002\") { events { type data } } }",
        )
        .await,
    );
    // A rejected command with the number in it is logged as rejected, without the number.
    seen_by_officer.push(graphql(&server.base, officer, &assess).await);
    for body in &seen_by_officer {
        assert!(!body.to_string().contains(FULL_ID), "an officer saw the full number: {body:#}");
    }

    let log = server.stop();
    assert!(log.contains("H34.22.6-240426-0002"), "the debug log records the case's activity:\n{log}");
    assert!(!log.contains(FULL_ID), "the full identity number is in the log:\n{log}");
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_with_exit_code_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(feeledger(dir.path()));
    let ready = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let pid = server.child.id().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "a clean stop exits 0: {status:?}");
    let log = server.stop();
    assert!(log.contains("feeledger stopped"), "{log}");
}

#[test]
fn a_settings_file_is_read_and_a_bad_value_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feeledger.toml"), "database_url = \"sqlite://from-file.db\"\n").unwrap();
    let migrated = feeledger(dir.path()).arg("migrate").output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(dir.path().join("from-file.db").exists(), "the file's database_url was used");

    // The environment overrides the file.
    let migrated =
        feeledger(dir.path()).arg("migrate").env("FEELEDGER_DATABASE_URL", "sqlite://from-env.db").output().unwrap();
    assert!(migrated.status.success());
    assert!(dir.path().join("from-env.db").exists());

    std::fs::write(dir.path().join("feeledger.toml"), "listn = \"0.0.0.0:8080\"\n").unwrap();
    let typo = feeledger(dir.path()).arg("migrate").output().unwrap();
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("listn"), "{}", String::from_utf8_lossy(&typo.stderr));

    std::fs::write(dir.path().join("feeledger.toml"), "qr_ttl_minutes = 0\ntoken_secret = \"too-short\"\n").unwrap();
    let bad = feeledger(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("FEELEDGER_TOKEN_SECRET") || stderr.contains("FEELEDGER_QR_TTL_MINUTES"), "{stderr}");
    assert!(!stderr.contains("too-short"), "a secret is never echoed: {stderr}");
}

/// `${NAME:?message}`, `${NAME:-default}` and `${NAME}` in a compose value, as Compose would
/// substitute them from `vars`.
fn compose_substitute(value: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let expression = &rest[start + 2..end];
        let name = expression.split([':', '-', '?']).next().unwrap();
        let default = expression.split_once(":-").map(|(_, d)| d).unwrap_or("");
        let set = vars.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
        assert!(set.is_some() || !expression.contains(":?"), "compose requires {name}");
        out.push_str(set.unwrap_or(default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_compose_file_is_valid_and_its_node_environment_starts_the_binary_as_the_application_role() {
    use yaml_rust2::{Yaml, YamlLoader};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let compose = std::fs::read_to_string(root.join("docker-compose.yml")).unwrap();
    let docs = YamlLoader::load_from_str(&compose).expect("docker-compose.yml is valid YAML");
    let services = &docs[0]["services"];
    for service in ["postgres", "postgres-replica", "migrate", "feeledger-1", "feeledger-2", "proxy"] {
        assert!(!services[service].is_badvalue(), "service {service} is missing");
    }
    for mount in [&services["proxy"]["volumes"][0], &services["postgres"]["volumes"][1]] {
        let file = mount.as_str().unwrap().split(':').next().unwrap();
        assert!(root.join(file).exists(), "{file} is mounted but missing");
    }
    assert_eq!(services["feeledger-1"]["environment"], services["feeledger-2"]["environment"]);
    let Yaml::Hash(environment) = &services["feeledger-1"]["environment"] else { panic!("node environment") };

    let vars =
        [("FEELEDGER_NODE_PASSWORD", "node-password"), ("FEELEDGER_TOKEN_SECRET", "0123456789abcdef0123456789abcdef")];
    let mut node_env: Vec<(String, String)> = Vec::new();
    for (name, value) in environment {
        let name = name.as_str().unwrap().to_owned();
        assert!(feeledger_api::cli::ENV_VARS.contains(&name.as_str()), "{name} is not a setting");
        node_env.push((name, compose_substitute(value.as_str().unwrap(), &vars)));
    }

    let Some(db) = TestDatabase::postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let migrated = feeledger(dir.path()).arg("migrate").env("FEELEDGER_DATABASE_URL", &db.url).output().unwrap();
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let owner = sqlx::PgPool::connect(&db.url).await.unwrap();
    let login = format!("feeledger_test_node_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE ROLE {login} LOGIN PASSWORD 'node-password' IN ROLE feeledger_app"))
        .execute(&owner)
        .await
        .unwrap();
    // The compose URLs, pointed at this machine's test database instead of the `postgres` and
    // `postgres-replica` services.
    let (_, test_host_and_db) = db.url.rsplit_once('@').unwrap();
    let mut command = feeledger(dir.path());
    for (name, value) in &node_env {
        let value = if name == "FEELEDGER_DATABASE_URL" {
            let both = "postgres://feeledger_node:node-password@postgres:5432,postgres-replica:5432/feeledger?";
            assert!(value.starts_with(both), "{value}");
            format!("postgres://{login}:node-password@{test_host_and_db}")
        } else if name == "FEELEDGER_READ_DATABASE_URL" {
            assert!(value.starts_with("postgres://feeledger_node:node-password@postgres-replica:5432/"), "{value}");
            format!("postgres://{login}:node-password@{test_host_and_db}")
        } else {
            value.clone()
        };
        command.env(name, value);
    }
    let server = start(command);
    let ready = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), 200);
    let log = server.stop();
    assert!(!log.contains("unknown setting"), "{log}");
    sqlx::query(&format!("DROP ROLE {login}")).execute(&owner).await.unwrap();
    owner.close().await;
}

#[tokio::test]
async fn audit_verify_exits_0_on_an_intact_log_and_1_naming_the_tampered_event() {
    let dir = tempfile::tempdir().unwrap();
    // Some history: the demo's agency, schedule and sample case.
    let server = start_with(feeledger(dir.path()), &["--demo"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !server.log.lock().unwrap().contains("demo data loaded") {
        assert!(Instant::now() < deadline, "the demo data was not loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);

    let verify = feeledger(dir.path()).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(stdout.starts_with("intact:"), "{stdout}");

    let export = feeledger(dir.path()).args(["export", "events"]).output().unwrap();
    assert!(export.status.success());
    std::fs::write(dir.path().join("events.jsonl"), &export.stdout).unwrap();
    let offline = feeledger(dir.path()).args(["audit", "verify", "--file", "events.jsonl"]).output().unwrap();
    assert_eq!(offline.status.code(), Some(0), "{}", String::from_utf8_lossy(&offline.stdout));

    // A superuser of the file changes the sample case's assessment behind the application's back.
    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("feeledger.db").display())).await.unwrap();
    let (position, stream): (i64, String) = sqlx::query_as(
        "SELECT global_position, stream_id FROM events WHERE event_type = 'FeeAssessed' ORDER BY global_position LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("DROP TRIGGER events_no_update").execute(&pool).await.unwrap();
    sqlx::query(
        "UPDATE events SET payload = json_set(payload, '$.procedure_name', 'forged') WHERE global_position = $1",
    )
    .bind(position)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let verify = feeledger(dir.path()).args(["audit", "verify"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert_eq!(verify.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with(&format!(
            "TAMPERED: sqlite://feeledger.db: stream {stream} at position {position}: payload changed"
        )),
        "{stdout}"
    );
    // The copy exported before the change still verifies: it is the evidence.
    let offline = feeledger(dir.path()).args(["audit", "verify", "--file", "events.jsonl"]).output().unwrap();
    assert_eq!(offline.status.code(), Some(0));
}

#[test]
fn reports_print_the_declaration_and_refuse_a_bad_month_or_an_unknown_voucher() {
    let dir = tempfile::tempdir().unwrap();
    let report = |args: &[&str]| feeledger(dir.path()).arg("reports").args(args).output().unwrap();
    let declaration = report(&["declaration", "--agency", "H34.22.6", "--month", "2026-10"]);
    assert!(declaration.status.success(), "{}", String::from_utf8_lossy(&declaration.stderr));
    let text = String::from_utf8_lossy(&declaration.stdout);
    assert!(text.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(text.contains("Số tiền phải nộp NSNN") && text.contains("Tổng cộng"), "{text}");
    let xlsx = report(&["settlement", "--agency", "H34.22.6", "--year", "2026", "--format", "xlsx"]);
    assert!(xlsx.status.success() && xlsx.stdout.starts_with(b"PK"));
    let bad_month = report(&["declaration", "--agency", "H34.22.6", "--month", "2026-13"]);
    assert!(!bad_month.status.success());
    assert!(String::from_utf8_lossy(&bad_month.stderr).contains("YYYY-MM"));
    let unknown = report(&["voucher", "00000000-0000-0000-0000-000000000001"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no remittance"));
}
