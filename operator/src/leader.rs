//! Leader election through a `coordination.k8s.io/v1` Lease, so several operator replicas can
//! run and exactly one reconciles. Takeover uses optimistic concurrency (resourceVersion), so
//! two candidates can never both win.
//!
//! Safety margin: a standby may take over at `renewTime + leaseDuration` (by its own clock).
//! The leader stops acting once [`renew_deadline`] has passed since the *start* of its last
//! successful renewal (whose `renewTime` it wrote at that start), i.e. a third of the lease
//! duration before anyone may take over: that third covers clock skew between nodes and the
//! time to stop. Every renewal call is itself bounded by the time left until that deadline.
//!
//! The election runs on its own thread, runtime and API connection ([`LeaderThread`]), so the
//! controller's work can never delay a renewal.

use std::time::Duration;

use tokio::time::Instant;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, PostParams};

/// The election, running on its own thread and runtime: controller work (a cold start decoding
/// and publishing 50 000 rules) can neither delay a renewal on the runtime nor queue it behind
/// status writes on the API connection.
pub struct LeaderThread {
    /// Resolves once this replica leads (errors if the election could not start).
    pub acquired: tokio::sync::oneshot::Receiver<()>,
    /// Resolves when leadership is lost (or the thread ended).
    pub lost: tokio::sync::oneshot::Receiver<()>,
    /// Gives the lease up.
    pub release: LeaseRelease,
}

/// Gives the lease up at shutdown.
pub struct LeaseRelease(tokio::sync::oneshot::Sender<tokio::sync::oneshot::Sender<()>>);

impl LeaseRelease {
    /// Releases the lease (so a standby takes over at once), waiting up to `within` for it.
    pub async fn release(self, within: Duration) {
        let (done_tx, done) = tokio::sync::oneshot::channel();
        if self.0.send(done_tx).is_ok() {
            let _ = tokio::time::timeout(within, done).await;
        }
    }
}

impl LeaderThread {
    /// Starts campaigning for lease `name` in `namespace` as `identity`.
    pub fn start(
        namespace: String,
        name: String,
        identity: String,
        lease_duration: Duration,
    ) -> Self {
        let (acquired_tx, acquired) = tokio::sync::oneshot::channel();
        let (lost_tx, lost) = tokio::sync::oneshot::channel();
        let (release, release_rx) =
            tokio::sync::oneshot::channel::<tokio::sync::oneshot::Sender<()>>();
        let spawned = std::thread::Builder::new()
            .name("leader-election".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the leader election runtime");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let client = match kube::Client::try_default().await {
                        Ok(client) => client,
                        Err(error) => {
                            tracing::error!(%error, "leader election cannot reach the Kubernetes API");
                            return;
                        }
                    };
                    let election = LeaderElection::new(
                        Api::namespaced(client, &namespace),
                        name,
                        identity,
                        lease_duration,
                    );
                    let since = election.acquire().await;
                    if acquired_tx.send(()).is_err() {
                        return;
                    }
                    tokio::select! {
                        _ = election.hold(since) => {
                            let _ = lost_tx.send(());
                        }
                        Ok(done) = release_rx => {
                            election.release().await;
                            let _ = done.send(());
                        }
                    }
                });
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the leader election thread");
        }
        LeaderThread {
            acquired,
            lost,
            release: LeaseRelease(release),
        }
    }
}

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

    /// Waits until this candidate holds the lease; returns when the winning attempt started
    /// (the `renewTime` it wrote), from which [`LeaderElection::hold`] counts.
    pub async fn acquire(&self) -> Instant {
        loop {
            let started = Instant::now();
            match self.try_acquire().await {
                Ok(true) => {
                    tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
                    return started;
                }
                Ok(false) => tracing::debug!(lease = %self.name, "another replica leads; waiting"),
                Err(error) => tracing::warn!(%error, "cannot read the leader lease"),
            }
            tokio::time::sleep(retry_period(self.lease_duration)).await;
        }
    }

    /// Renews the lease until leadership can no longer be guaranteed; returns then. `since`:
    /// when the last successful acquisition started.
    pub async fn hold(&self, since: Instant) {
        let deadline = renew_deadline(self.lease_duration);
        let mut last_renewal = since;
        loop {
            tokio::time::sleep(retry_period(self.lease_duration)).await;
            let started = Instant::now();
            let left = deadline.saturating_sub(last_renewal.elapsed());
            match tokio::time::timeout(left, self.try_acquire()).await {
                Ok(Ok(true)) => last_renewal = started,
                Ok(Ok(false)) => {
                    tracing::error!(lease = %self.name, "leader lease taken by another replica");
                    return;
                }
                Ok(Err(error)) if last_renewal.elapsed() < deadline => {
                    tracing::warn!(%error, "cannot renew the leader lease; retrying");
                }
                Ok(Err(error)) => {
                    tracing::error!(%error, renew_deadline = ?deadline, "leader lease not renewed within the renew deadline");
                    return;
                }
                Err(_) => {
                    tracing::error!(renew_deadline = ?deadline, "leader lease not renewed within the renew deadline");
                    return;
                }
            }
        }
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once instead of waiting for
    /// it to expire: the holder is cleared, which [`LeaderElection::try_acquire`] treats as free.
    pub async fn release(&self) {
        let lease = match self.api.get_opt(&self.name).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "cannot read the leader lease to release it");
                return;
            }
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        let released = Lease {
            metadata: lease.metadata.clone(),
            spec: Some(spec),
        };
        match self
            .api
            .replace(&self.name, &PostParams::default(), &released)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.name, "leader lease released"),
            Err(error) => {
                tracing::warn!(%error, "cannot release the leader lease; it expires by itself")
            }
        }
    }
}

/// How long after the start of its last successful renewal the leader stops acting: two thirds
/// of the lease duration.
pub fn renew_deadline(lease_duration: Duration) -> Duration {
    lease_duration * 2 / 3
}

/// Time between renewal (and acquisition) attempts: several attempts fit in the renew deadline.
pub fn retry_period(lease_duration: Duration) -> Duration {
    lease_duration / 6
}

/// An identity unique to this process: `base` (pod or host name) and a random suffix, so two
/// operators on one host (or with one HOSTNAME) never share an identity and both lead.
pub fn unique_identity(base: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{base}_{:08x}", hasher.finish() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_stops_a_third_of_the_lease_before_a_takeover_and_retries_in_between() {
        let lease = Duration::from_secs(15);
        assert_eq!(renew_deadline(lease), Duration::from_secs(10));
        assert_eq!(lease - renew_deadline(lease), Duration::from_secs(5));
        assert!(retry_period(lease) * 3 < renew_deadline(lease));
    }

    #[test]
    fn identities_differ_between_processes_with_the_same_host_name() {
        let (a, b) = (unique_identity("node-1"), unique_identity("node-1"));
        assert!(a.starts_with("node-1_") && b.starts_with("node-1_"));
        assert_ne!(a, b);
    }
}
