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
