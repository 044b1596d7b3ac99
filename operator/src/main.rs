//! `streamsplit-operator`: see `--help`.

mod allocator;
mod cli;
mod controller;
mod held_status;
mod http;
mod leader;
mod metrics;
mod policy;
mod publisher;
mod reconciler;
mod rollout;
mod router_pool;
mod status;
mod topic_claims;
mod topic_owners;
mod topics;
mod validation;
mod verdicts;

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use clap::Parser;
use kube::{Client, CustomResourceExt};
use streamsplit_rules::crd::SplitRule;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command, LogFormat, RunArgs};

fn main() -> ExitCode {
    allocator::limit_arenas();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crdgen { kind }) => match serde_yaml::to_string(&match kind {
            cli::CrdKind::SplitRule => SplitRule::crd(),
            cli::CrdKind::RouterPool => router_pool::RouterPool::crd(),
        }) {
            Ok(yaml) => {
                print!("{yaml}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: cannot render the CRD: {error}");
                ExitCode::from(1)
            }
        },
        Some(Command::Run) | None => {
            init_logging(cli.log_format);
            match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    let code = runtime.block_on(run(cli.run));
                    // Blocking validations still running must not hold the exit.
                    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
                    code
                }
                Err(error) => {
                    eprintln!("error: cannot start the async runtime: {error}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = terminate.recv() => tracing::info!("SIGTERM received"),
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let metrics = metrics::Metrics::new();
    let health = Arc::new(http::Health {
        metrics: metrics.clone(),
        started: AtomicBool::new(false),
    });
    tokio::spawn(http::serve(args.metrics_addr, Arc::clone(&health)));

    let client = match Client::try_default().await {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot connect to the Kubernetes API (in-cluster config or KUBECONFIG)");
            return ExitCode::from(2);
        }
    };
    let properties = match streamsplit_rules::client_properties::collect(
        &args.kafka_properties,
        &args.kafka_properties_files,
        &args.kafka_property_files,
    ) {
        Ok(properties) => properties,
        Err(error) => {
            tracing::error!(%error, "cannot read the Kafka client properties");
            return ExitCode::from(2);
        }
    };
    let mut kafka = rdkafka::ClientConfig::new();
    kafka.set("bootstrap.servers", &args.brokers);
    for (key, value) in &properties {
        kafka.set(key, value);
    }
    let defaults = topics::TopicDefaults {
        partitions: args.default_partitions,
        replication_factor: args.default_replication_factor,
    };
    let topics = match topics::TopicManager::new(kafka, defaults) {
        Ok(topics) => topics,
        Err(error) => {
            tracing::error!(%error, "cannot create the Kafka admin client");
            return ExitCode::from(2);
        }
    };
    let identity = args.identity.clone().unwrap_or_else(|| {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "streamsplit-operator".into());
        leader::unique_identity(&host)
    });

    let mut election = args.leader_election.then(|| {
        leader::LeaderThread::start(
            args.namespace.clone(),
            args.lease_name.clone(),
            identity.clone(),
            args.lease_duration,
        )
    });
    if let Some(election) = &mut election {
        health
            .started
            .store(true, std::sync::atomic::Ordering::Release);
        tokio::select! {
            acquired = &mut election.acquired => if acquired.is_err() {
                tracing::error!("the leader election ended before leading");
                return ExitCode::from(2);
            },
            _ = shutdown_signal() => return ExitCode::SUCCESS,
        }
        metrics.leader.set(1);
    }

    let settings = controller::ControllerSettings {
        watch_namespace: args.watch_namespace.clone(),
        namespace: args.namespace.clone(),
        configmap_prefix: args.configmap_prefix.clone(),
        topic_deletion_timeout: args.topic_deletion_timeout,
        resync_interval: args.resync_interval,
        identity,
        shard_target: args.bundle_shard_target_bytes,
    };
    tracing::info!(namespace = %args.namespace, watch = ?args.watch_namespace, "reconciling SplitRules");
    let (lost_lease, release) = match election {
        Some(election) => (Some(election.lost), Some(election.release)),
        None => (None, None),
    };
    let lost_lease = async {
        match lost_lease {
            Some(lost) => {
                let _ = lost.await;
            }
            None => std::future::pending().await,
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let controller = controller::run(client, topics, settings, health, async move {
        let _ = stop_rx.await;
    });
    tokio::pin!(controller);
    let code = tokio::select! {
        _ = &mut controller => ExitCode::SUCCESS,
        _ = shutdown_signal() => {
            // Stop reconciling at once; in-flight reconciles get a short grace (their writes are
            // idempotent and the next leader redoes whatever is abandoned), then the lease goes.
            let _ = stop_tx.send(());
            if tokio::time::timeout(SHUTDOWN_GRACE, controller).await.is_err() {
                tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight reconciles abandoned at shutdown");
            }
            if let Some(release) = release {
                release.release(SHUTDOWN_GRACE).await;
            }
            ExitCode::SUCCESS
        }
        _ = lost_lease => {
            tracing::error!("lost leadership; exiting so this replica restarts as a standby");
            ExitCode::from(1)
        }
    };
    metrics.leader.set(0);
    code
}

/// How long in-flight reconciles may finish after SIGTERM, and how long releasing the lease may
/// take: together well inside the pod's termination grace period (30 s by default).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
