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
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(router);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    axum::serve(listener, app).await
}

async fn metrics(State(router): State<Arc<Router>>) -> String {
    router.metrics.render()
}

/// Ready when partitions are assigned and a rule set is loaded.
async fn readyz(State(router): State<Arc<Router>>) -> (StatusCode, String) {
    let assigned = router.metrics.assigned_partitions.get();
    let loaded = router.is_rules_loaded();
    if assigned > 0 && loaded {
        (StatusCode::OK, "ready".into())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: assigned partitions {assigned}, rule set loaded {loaded}"),
        )
    }
}
