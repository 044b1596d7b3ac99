//! Roll-out acknowledgement: the router renews a Lease naming the bundle version it has live
//! (see `streamsplit_rules::router_lease`), at once after every swap and every renewal period
//! otherwise, and deletes it on a graceful stop so that the operator counts it out immediately.
//!
//! The router's Kubernetes rights are this one thing: create, patch and delete Leases in the
//! operator's namespace. Failing to report never affects routing; it is logged once per outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use streamsplit_rules::router_lease::{
    lease_name, PERIODS_PER_LEASE, POOL_LABEL, VERSION_ANNOTATION,
};

use crate::run::Router;

/// Field manager of the router's writes.
const FIELD_MANAGER: &str = "streamsplit-router";
/// How often the live version is compared with the last report.
const VERSION_CHECK: Duration = Duration::from_millis(200);
/// Longest wait for the Lease deletion at shutdown.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where and as whom the router reports.
#[derive(Clone, Debug)]
pub struct RolloutLeaseSettings {
    /// The operator's namespace.
    pub namespace: String,
    /// The router's pool.
    pub pool: String,
    /// The router's identity (pod name).
    pub identity: String,
    /// Renewal period.
    pub interval: Duration,
}

/// A router's roll-out Lease.
pub struct RolloutLease {
    api: Api<Lease>,
    name: String,
    settings: RolloutLeaseSettings,
}

impl RolloutLease {
    /// Connects with the in-cluster service account or KUBECONFIG.
    pub async fn connect(settings: RolloutLeaseSettings) -> Result<Self, kube::Error> {
        let client = kube::Client::try_default().await?;
        Ok(RolloutLease {
            api: Api::namespaced(client, &settings.namespace),
            name: lease_name(&settings.identity),
            settings,
        })
    }

    /// Reports the live version until the task is dropped.
    pub async fn run(self: Arc<Self>, router: Arc<Router>) {
        let mut reported: Option<String> = None;
        let mut renewed = Instant::now();
        let mut failing = false;
        loop {
            let live = router.rules.load().version.clone();
            let due = renewed.elapsed() >= self.settings.interval;
            if reported.as_deref() != Some(&*live) || due {
                match self.renew(&live).await {
                    Ok(()) => {
                        if failing {
                            tracing::info!(lease = %self.name, "roll-out Lease renewed again");
                        }
                        failing = false;
                        reported = Some(live.to_string());
                    }
                    Err(error) => {
                        if !failing {
                            tracing::warn!(lease = %self.name, %error, "cannot renew the roll-out Lease; routing is unaffected, the operator will count this router as gone");
                        }
                        failing = true;
                    }
                }
                renewed = Instant::now();
            }
            tokio::time::sleep(VERSION_CHECK).await;
        }
    }

    async fn renew(&self, version: &str) -> Result<(), kube::Error> {
        let seconds = self.settings.interval.as_secs_f64() * f64::from(PERIODS_PER_LEASE);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "labels": {
                    POOL_LABEL: self.settings.pool,
                    "app.kubernetes.io/part-of": "streamsplit",
                    "app.kubernetes.io/component": "router",
                },
                "annotations": { VERSION_ANNOTATION: version },
            },
            "spec": {
                "holderIdentity": self.settings.identity,
                "leaseDurationSeconds": seconds.ceil().max(1.0) as i32,
                "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                    k8s_openapi::jiff::Timestamp::now()
                ),
            },
        });
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(lease),
            )
            .await
            .map(drop)
    }

    /// Deletes the Lease (graceful stop: the router leaves its pool's count at once).
    pub async fn remove(&self) {
        let deleted = tokio::time::timeout(
            REMOVE_TIMEOUT,
            self.api.delete(&self.name, &DeleteParams::default()),
        )
        .await;
        match deleted {
            Ok(Ok(_)) => tracing::info!(lease = %self.name, "roll-out Lease removed"),
            Ok(Err(error)) => {
                tracing::warn!(lease = %self.name, %error, "cannot remove the roll-out Lease; it expires by itself")
            }
            Err(_) => {
                tracing::warn!(lease = %self.name, "removing the roll-out Lease timed out; it expires by itself")
            }
        }
    }
}
