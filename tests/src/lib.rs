//! `spawn_app()`: the whole feeledger service on a random port, on a fresh SQLite file or a
//! fresh PostgreSQL database, with a small GraphQL client and tokens for every role.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, reason = "test support fails loudly")]

pub mod node;
pub mod province;
pub mod traffic;
pub mod wire;

use feeledger_api::app::{AppState, Application};
use feeledger_api::auth::{Role, TokenRequest};
use feeledger_domain::codes::{AgencyCode, CounterId};
use feeledger_infrastructure::settings::Settings;
pub use feeledger_infrastructure::test_support::TestDatabase;
use serde_json::{Value, json};

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub client: reqwest::Client,
    pub database: TestDatabase,
}

/// Starts the service on `database` (migrated on start) and returns once it listens.
pub async fn spawn_app(database: TestDatabase) -> TestApp {
    let settings = Settings { database_url: database.url.clone(), listen: "127.0.0.1:0".into(), ..Settings::default() };
    let app = Application::build(&settings).await.unwrap_or_else(|e| panic!("building the app failed: {e}"));
    let address = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { address, state, client: reqwest::Client::new(), database }
}

/// The app on SQLite, then (when configured) on PostgreSQL.
pub async fn spawn_each_backend() -> Vec<TestApp> {
    let mut apps = Vec::new();
    for database in TestDatabase::each_backend().await {
        apps.push(spawn_app(database).await);
    }
    apps
}

/// The app on SQLite, then (when configured) on PostgreSQL, with settings adjusted by `adjust`.
pub async fn spawn_each_backend_with(adjust: impl Fn(&mut Settings)) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for database in TestDatabase::each_backend().await {
        apps.push(spawn_app_with(database, &adjust).await);
    }
    apps
}

impl TestApp {
    /// How many events the log holds: "a refused request appended nothing" is this number
    /// unchanged.
    pub async fn event_count(&self) -> i64 {
        self.state.ledger.store().head().await.unwrap().event_count
    }

    pub fn backend(&self) -> &'static str {
        self.database.backend_name
    }

    pub fn token(&self, role: Role, agency: Option<&str>, counter: Option<&str>) -> String {
        let request = TokenRequest::new(
            role,
            agency.map(|a| AgencyCode::parse(a).unwrap()),
            counter.map(|c| CounterId::parse(c).unwrap()),
        );
        self.state.tokens.issue(&request, chrono::Utc::now()).unwrap()
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, None, None)
    }

    pub fn officer(&self, agency: &str) -> String {
        self.token(Role::Officer, Some(agency), Some("quay-1"))
    }

    /// POSTs a GraphQL document and returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self.client.post(format!("{}/graphql", self.address)).json(&json!({
            "query": query,
            "variables": variables,
        }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Like [`TestApp::graphql`] but fails the test on any GraphQL error; returns `data`.
    pub async fn graphql_ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.graphql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "[{}] unexpected errors: {body:#}", self.backend());
        body["data"].clone()
    }

    /// The `extensions.code` of the first error, failing the test when there is none.
    pub async fn graphql_error_code(&self, token: Option<&str>, query: &str, variables: Value) -> String {
        let body = self.graphql(token, query, variables).await;
        let code = body["errors"][0]["extensions"]["code"].as_str();
        assert!(code.is_some(), "[{}] expected an error with a code, got {body:#}", self.backend());
        code.unwrap_or_default().to_owned()
    }

    /// Makes the database refuse, inside the append, every `event_type` event of one stream
    /// (`on`), or stops refusing it (`!on`): a multi-stream transaction then fails after the
    /// streams before that one were written, which shows whether anything of it is kept.
    pub async fn fail_inserts_of(&self, event_type: &str, stream_id: &str, on: bool) {
        use sqlx::Connection as _;
        let url = &self.database.url;
        let statements: Vec<String> = match (self.backend(), on) {
            ("postgres", true) => vec![
                "CREATE FUNCTION feeledger_test_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'injected failure in the middle of a transaction'; END $$"
                    .into(),
                format!(
                    "CREATE TRIGGER feeledger_test_fail BEFORE INSERT ON events FOR EACH ROW \
                     WHEN (NEW.event_type = '{event_type}' AND NEW.stream_id = '{stream_id}') \
                     EXECUTE FUNCTION feeledger_test_fail()"
                ),
            ],
            ("postgres", false) => {
                vec!["DROP TRIGGER feeledger_test_fail ON events".into(), "DROP FUNCTION feeledger_test_fail()".into()]
            }
            (_, true) => vec![format!(
                "CREATE TRIGGER feeledger_test_fail BEFORE INSERT ON events \
                 WHEN NEW.event_type = '{event_type}' AND NEW.stream_id = '{stream_id}' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure in the middle of a transaction'); END"
            )],
            (_, false) => vec!["DROP TRIGGER feeledger_test_fail".into()],
        };
        if self.backend() == "postgres" {
            let mut connection = sqlx::PgConnection::connect(url).await.unwrap();
            for statement in statements {
                sqlx::query(&statement).execute(&mut connection).await.unwrap();
            }
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await.unwrap();
            for statement in statements {
                sqlx::query(&statement).execute(&mut connection).await.unwrap();
            }
        }
    }

    /// Sets up agency `code` with the demo-like schedule used by the tests.
    pub async fn configure_agency(&self, code: &str) {
        let admin = self.admin();
        self.graphql_ok(
            &admin,
            "mutation($input: ConfigureAgencyInput!) { configureAgency(input: $input) { code } }",
            json!({ "input": {
                "code": code, "name": format!("UBND {code}"), "bankBin": "970415",
                "accountNumber": "113366668888", "accountName": "UBND PHUONG TRAN HUNG DAO",
                "retainsFees": true, "counters": ["quay-1", "quay-2"]
            }}),
        )
        .await;
        self.graphql_ok(
            &admin,
            "mutation($input: FeeScheduleInput!) { publishFeeSchedule(input: $input) { version } }",
            json!({ "input": { "agencyCode": code, "effectiveFrom": "2024-01-01", "fees": [
                { "feeCode": "P-SAOY", "name": "Phí chứng thực bản sao", "kind": "PHI", "unitAmount": "1000", "retentionPercent": "90" },
                { "feeCode": "LP-TRICHLUC", "name": "Lệ phí trích lục hộ tịch", "kind": "LE_PHI", "unitAmount": 8000, "retentionPercent": "0" }
            ]}}),
        )
        .await;
    }
}

pub const CASE_FIELDS: &str = "code agencyCode status total paid outstanding overpaid version \
    lines { feeCode kind quantity unitAmount amount } payer { name maskedId } \
    events { position streamVersion type recordedAt actor data }";

/// Starts the service with settings adjusted by `adjust` (e.g. a short QR lifetime).
pub async fn spawn_app_with(database: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings =
        Settings { database_url: database.url.clone(), listen: "127.0.0.1:0".into(), ..Settings::default() };
    adjust(&mut settings);
    let app = Application::build(&settings).await.unwrap_or_else(|e| panic!("building the app failed: {e}"));
    let address = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { address, state, client: reqwest::Client::new(), database }
}

/// A GraphQL-over-WebSocket (graphql-transport-ws) client for tests: one subscription per
/// connection, enough to watch what a screen would see.
pub mod ws {
    use futures::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

    /// A test screen's read buffer to start with (see [`Subscription::connect`]).
    const CLIENT_READ_BUFFER_BYTES: usize = 4 * 1024;

    type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

    #[derive(Debug)]
    pub struct Subscription {
        socket: Socket,
    }

    impl Subscription {
        /// Connects with `token`, subscribes with `query`, and returns once acknowledged.
        pub async fn start(address: &str, token: &str, query: &str, variables: Value) -> Subscription {
            Subscription::connect(address, token, query, variables).await.unwrap()
        }

        /// [`Subscription::start`] that reports a failure (refused connection, closed before the
        /// acknowledgement) instead of panicking, for load tools that open thousands and retry.
        /// Its read buffer starts small (tungstenite's default zero-fills 128 KiB per socket),
        /// since a screen receives small messages; it grows for a larger one.
        pub async fn connect(
            address: &str,
            token: &str,
            query: &str,
            variables: Value,
        ) -> anyhow::Result<Subscription> {
            let url = format!("{}/graphql/ws", address.replacen("http", "ws", 1));
            let mut request = url.into_client_request()?;
            request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
            let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES);
            let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
            let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
            socket.send(Message::text(init.to_string())).await?;
            loop {
                let message = next_json(&mut socket)
                    .await
                    .ok_or_else(|| anyhow::anyhow!("the connection closed before connection_ack"))?;
                if message["type"] == "connection_ack" {
                    break;
                }
            }
            let subscribe =
                json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
            socket.send(Message::text(subscribe.to_string())).await?;
            Ok(Subscription { socket })
        }

        /// The screens' plain display feed (`GET /live/counter-display`, api/src/display_feed.rs):
        /// connects, subscribes to `counter_id` (of `agency`, for a token not scoped to one) with
        /// `token`, and returns at once; its messages read as a subscription's (`next`).
        pub async fn display_feed(
            address: &str,
            token: &str,
            counter_id: &str,
            agency: Option<&str>,
        ) -> anyhow::Result<Subscription> {
            let mut feed = Subscription::raw_socket(address, "/live/counter-display").await?;
            let subscribe = json!({ "type": "subscribe", "payload": {
                "authorization": format!("Bearer {token}"), "counterId": counter_id, "agencyCode": agency } });
            feed.send_raw(&subscribe.to_string()).await?;
            Ok(feed)
        }

        /// A WebSocket to `path` that has sent nothing yet (see [`Subscription::send_raw`]), with
        /// the small read buffer of [`Subscription::connect`].
        pub async fn raw_socket(address: &str, path: &str) -> anyhow::Result<Subscription> {
            let url = format!("{}{path}", address.replacen("http", "ws", 1));
            let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER_BYTES);
            let (socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
            Ok(Subscription { socket })
        }

        /// Sends `text` as it is (a test of what the server does with a bad message).
        pub async fn send_raw(&mut self, text: &str) -> anyhow::Result<()> {
            Ok(self.socket.send(Message::text(text.to_owned())).await?)
        }

        /// The next message of any type, or `None` after `timeout` or once the socket closed.
        pub async fn next_message(&mut self, timeout: std::time::Duration) -> Option<Value> {
            tokio::time::timeout(timeout, next_json(&mut self.socket)).await.ok()?
        }

        /// The close code the server ended the socket with, waiting up to `timeout` for it.
        pub async fn close_code(&mut self, timeout: std::time::Duration) -> Option<u16> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                match tokio::time::timeout_at(deadline, self.socket.next()).await.ok()?? {
                    Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        }

        /// The next `next` or `error` payload, or `None` after `timeout`.
        pub async fn next(&mut self, timeout: std::time::Duration) -> Option<Value> {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let message = tokio::time::timeout_at(deadline, next_json(&mut self.socket)).await.ok()??;
                match message["type"].as_str() {
                    Some("next") => return Some(message["payload"].clone()),
                    Some("error") => return Some(json!({ "errors": message["payload"] })),
                    Some("ping") => {
                        let _ = self.socket.send(Message::text(json!({ "type": "pong" }).to_string())).await;
                    }
                    _ => {}
                }
            }
        }

        /// Waits (up to `timeout`) for a payload satisfying `wanted`.
        pub async fn until(&mut self, timeout: std::time::Duration, wanted: impl Fn(&Value) -> bool) -> Value {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let payload = self.next(left).await.expect("the awaited update did not arrive");
                if wanted(&payload) {
                    return payload;
                }
            }
        }
    }

    async fn next_json(socket: &mut Socket) -> Option<Value> {
        loop {
            match socket.next().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
}
