//! Leader election through a `coordination.k8s.io/v1` Lease, so several operator replicas can
//! run and exactly one reconciles. Takeover uses optimistic concurrency (resourceVersion), so
//! two candidates can never both win.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// A candidate for the lease.
pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

impl LeaderElection {
    /// A candidate `identity` for lease `name`.
    pub fn new(api: Api<Lease>, name: String, identity: String, lease_duration: Duration) -> Self {
        LeaderElection {
            api,
            name,
            identity,
            lease_duration,
        }
    }

    fn spec(&self, previous: Option<&LeaseSpec>) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let ours =
            previous.and_then(|p| p.holder_identity.as_deref()) == Some(self.identity.as_str());
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_duration.as_secs() as i32),
            acquire_time: if ours {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            // The first holder is not a transition; every change of holder after that is.
            lease_transitions: Some(match previous {
                None => 0,
                Some(p) => p.lease_transitions.unwrap_or(0) + i32::from(!ours),
            }),
            ..LeaseSpec::default()
        }
    }

    /// Takes or renews the lease if it is free, expired or ours. `Ok(false)`: someone else holds it.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(None)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or("");
        let duration =
            SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
        let expired = spec
            .renew_time
            .as_ref()
            .and_then(|t| t.0.checked_add(duration).ok())
            .is_none_or(|deadline| deadline < Timestamp::now());
        if !(holder.is_empty() || holder == self.identity || expired) {
            return Ok(false);
        }
        let updated = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(self.spec(Some(&spec))),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &updated)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Waits until this candidate holds the lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    return;
                }
                Ok(false) => tracing::debug!(lease = %self.name, "another replica leads; waiting"),
                Err(error) => tracing::warn!(%error, "cannot read the leader lease"),
            }
            tokio::time::sleep(self.lease_duration / 3).await;
        }
    }

    /// Renews the lease until it is lost; returns when it is.
    pub async fn hold(&self) {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.lease_duration / 3).await;
            match self.try_acquire().await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %self.name, "leader lease taken by another replica");
                    return;
                }
                Err(error) if last_renewal.elapsed() < self.lease_duration => {
                    tracing::warn!(%error, "cannot renew the leader lease; retrying");
                }
                Err(error) => {
                    tracing::error!(%error, "leader lease expired without renewal");
                    return;
                }
            }
        }
    }
}
