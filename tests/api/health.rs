use feeledger_tests::spawn_each_backend;

#[tokio::test]
async fn health_and_readiness_answer_when_the_database_is_up() {
    for app in spawn_each_backend().await {
        let health = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let ready = app.client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        assert_eq!(ready.status(), 200, "[{}]", app.backend());
        let body: serde_json::Value = ready.json().await.unwrap();
        assert_eq!(body["status"], "ready");
    }
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    for app in spawn_each_backend().await {
        let page = app.client.get(format!("{}/graphql", app.address)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().to_lowercase().contains("graphiql"));
    }
}

#[tokio::test]
async fn metrics_show_commands_notifications_projections_subscriptions_and_the_pool() {
    for app in spawn_each_backend().await {
        app.configure_agency("H34.22.6").await;
        // A notification from a provider whose key is not configured: refused, and counted.
        let refused = app
            .client
            .post(format!("{}/webhooks/payos", app.address))
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 503);
        let response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
        let text = response.text().await.unwrap();
        for expected in [
            "feeledger_events_appended_total ",
            "feeledger_command_duration_seconds_count{command=\"publishFeeSchedule\",outcome=\"ok\"}",
            "feeledger_notifications_total{provider=\"payos\",outcome=\"rejected\"}",
            "feeledger_projection_lag{projection=\"treasury\"}",
            "feeledger_subscriptions_open ",
            "feeledger_db_connections{state=\"idle\"}",
        ] {
            assert!(text.contains(expected), "[{}] {expected:?} missing from:\n{text}", app.backend());
        }
        let appended: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("feeledger_events_appended_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap();
        assert!(appended >= 1, "configuring the agency appended an event");
    }
}

/// The test database's name, from its URL.
fn database_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap().split('?').next().unwrap()
}

#[tokio::test]
async fn when_postgresql_goes_away_requests_fail_with_503_and_the_node_recovers_on_its_own() {
    let Some(db) = feeledger_infrastructure::test_support::TestDatabase::postgres().await else { return };
    let name = database_name(&db.url).to_owned();
    let server = std::env::var(feeledger_infrastructure::test_support::TEST_DATABASE_URL_VAR).unwrap();
    let sepay_key = "sepay-key-for-the-outage-test";
    let app = feeledger_tests::spawn_app_with(db, |settings| {
        settings.providers.sepay_api_key = Some(feeledger_infrastructure::settings::Secret::new(sepay_key));
    })
    .await;
    app.configure_agency("H34.22.6").await;
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(20)).build().unwrap();
    let officer = app.officer("H34.22.6");
    let query = serde_json::json!({ "query": "{ case(code: \"H34.22.6-240426-0009\") { status } }" });
    let ask = || client.post(format!("{}/graphql", app.address)).bearer_auth(&officer).json(&query).send();

    // As if the server restarted: every session of the database ends and none may start.
    let admin = sqlx::PgPool::connect(&server).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false")).execute(&admin).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();

    // The sessions end a moment after they are told to.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{}/readyz", app.address)).send().await.expect("readyz answers, not hangs");
        if ready.status() == 503 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "readyz never reported the outage");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // readyz fails on the first session that ended; on a loaded machine another pooled session
    // may still be alive (and answer) for a moment: wait until none is.
    loop {
        let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = $1")
            .bind(&name)
            .fetch_one(&admin)
            .await
            .unwrap();
        if sessions == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the database's sessions never ended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let down = ask().await.expect("a request fails rather than hangs");
    assert_eq!(down.status(), 503);
    assert!(down.headers().contains_key("retry-after"));
    let body: serde_json::Value = down.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body:#}");
    // A bank notification cannot even be stored: 503 with Retry-After, so the provider retries.
    let notification = client
        .post(format!("{}/webhooks/sepay", app.address))
        .header("Content-Type", "application/json")
        .header("Authorization", format!("Apikey {sepay_key}"))
        .body(r#"{"id":1,"transferType":"in"}"#)
        .send()
        .await
        .expect("a notification fails rather than hangs");
    assert_eq!(notification.status(), 503);
    assert!(notification.headers().contains_key("retry-after"));

    sqlx::query(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true")).execute(&admin).await.unwrap();
    admin.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = client.get(format!("{}/readyz", app.address)).send().await.unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the node never reconnected");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let up = ask().await.unwrap();
    assert_eq!(up.status(), 200);
    let body: serde_json::Value = up.json().await.unwrap();
    assert!(body["errors"].is_null(), "{body:#}");
}
