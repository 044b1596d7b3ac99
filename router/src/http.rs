//! `/metrics`, `/healthz` and `/readyz`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::run::Router;

/// Serves the endpoints until the process ends.
pub async fn serve(addr: SocketAddr, router: Arc<Router>) -> std::io::Result<()> {
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(router);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await
}

async fn metrics(State(router): State<Arc<Router>>) -> String {
    router.metrics.render()
}

/// Alive unless the pipeline has had work without progress for longer than `--stall-timeout`
/// (a broken client Kubernetes should restart).
async fn healthz(State(router): State<Arc<Router>>) -> (StatusCode, String) {
    match router.health.liveness() {
        Ok(()) => (StatusCode::OK, "ok".into()),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
    }
}

/// Ready when partitions are assigned, a rule set is loaded and exception records can be
/// written.
async fn readyz(State(router): State<Arc<Router>>) -> (StatusCode, String) {
    let assigned = router.metrics.assigned_partitions.get();
    let loaded = router.is_rules_loaded();
    let exception_problem = router.health.exception_topic_problem();
    match exception_problem {
        None if assigned > 0 && loaded => (StatusCode::OK, "ready".into()),
        problem => {
            let kafka = router
                .health
                .kafka_problem()
                .filter(|_| assigned == 0)
                .map(|p| format!(", Kafka: {p}"));
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not ready: assigned partitions {assigned}, rule set loaded {loaded}{}{}",
                    problem.map(|p| format!(", {p}")).unwrap_or_default(),
                    kafka.unwrap_or_default()
                ),
            )
        }
    }
}
