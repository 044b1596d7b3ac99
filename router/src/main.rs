//! `streamsplit-router`: see `--help`.

mod cli;
mod commands;
mod config;
mod http;
mod logging;
mod metrics;
mod rollout_lease;
mod rule_source;
mod run;
mod shutdown;

use std::io::BufReader;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use streamsplit_rules::{compile_manifests_with, load_manifests, ProtectedTopics, RuleSet};

use cli::{Cli, Command, RunArgs};
use run::kafka_config::KafkaSettings;
use run::live_rules::LiveRules;
use run::{Router, RunSettings};

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    match cli.command {
        Command::Check { rules, eval_budget } => {
            match commands::check::check(&rules, eval_budget, &mut std::io::stdout()) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Eval {
            rules,
            input,
            format,
            engine,
            eval_budget,
        } => eval(&rules, input.as_deref(), format, engine.mode(), eval_budget),
        Command::Run(args) => run(*args),
    }
}

fn eval(
    paths: &[std::path::PathBuf],
    input: Option<&std::path::Path>,
    format: cli::InputFormat,
    mode: streamsplit_rules::EvalMode,
    eval_budget: std::time::Duration,
) -> ExitCode {
    let manifests = match load_manifests(paths) {
        Ok(manifests) => manifests,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let (rules, quarantined) = compile_manifests_with(&manifests, mode, &ProtectedTopics::none());
    let rules = rules.with_eval_budget(eval_budget);
    for rule in &quarantined {
        eprintln!("warning: rule {} left out: {}", rule.id, rule.error);
    }
    let stdout = std::io::stdout();
    let result = match input {
        Some(path) => match std::fs::File::open(path) {
            Ok(file) => {
                commands::eval::eval(&rules, format, BufReader::new(file), &mut stdout.lock())
            }
            Err(error) => {
                eprintln!("error: cannot read {}: {error}", path.display());
                return ExitCode::from(2);
            }
        },
        None => commands::eval::eval(&rules, format, std::io::stdin().lock(), &mut stdout.lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async move {
        let metrics = metrics::Metrics::new();
        let protected = ProtectedTopics::of_router(&args.source_topics, &args.exception_topic);
        let router = if !args.pass_through_topic.is_empty() {
            let empty = LiveRules::new(RuleSet::empty(), String::new(), &metrics);
            let mut router = Router::new(empty, true, metrics);
            router.pass_through = Some(run::PassThrough::new(
                &args.pass_through_topic,
                &router.metrics,
            ));
            Arc::new(router)
        } else if let Some(config_dir) = &args.config_dir {
            let empty = LiveRules::new(RuleSet::empty(), String::new(), &metrics);
            let router = Arc::new(Router::new(empty, false, metrics));
            let fallback = args
                .state_dir
                .as_deref()
                .map(config::fallback::FallbackStore::new);
            if fallback.is_none() {
                tracing::warn!("no --state-dir: no fallback copy of the bundle is kept");
            }
            let reloader = config::Reloader::start(
                Arc::clone(&router),
                config_dir.clone(),
                fallback,
                args.engine.mode(),
                args.eval_budget,
                protected,
            );
            if let Err(error) = config::watcher::spawn(reloader, args.config_poll_interval) {
                tracing::error!(%error, "cannot start the config watcher");
                return ExitCode::from(2);
            }
            router
        } else if !args.rules.is_empty() {
            match rule_source::from_manifests(
                &args.rules,
                args.engine.mode(),
                args.eval_budget,
                &protected,
                &metrics,
            ) {
                Ok(rules) => Arc::new(Router::new(rules, true, metrics)),
                Err(error) => {
                    tracing::error!(%error, "cannot load rules");
                    return ExitCode::from(2);
                }
            }
        } else {
            tracing::error!(
                "give --rules FILES (standalone) or --config-dir DIR (operator bundle)"
            );
            return ExitCode::from(2);
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
        let rollout = match &args.rollout_lease_namespace {
            Some(namespace) => {
                let settings = rollout_lease::RolloutLeaseSettings {
                    namespace: namespace.clone(),
                    pool: args.pool.clone().unwrap_or_default(),
                    identity: router_identity(args.instance_id.as_deref()),
                    interval: args.rollout_lease_interval,
                };
                match rollout_lease::RolloutLease::connect(settings).await {
                    Ok(lease) => Some(Arc::new(lease)),
                    Err(error) => {
                        tracing::error!(%error, "cannot connect to Kubernetes for the roll-out Lease (--rollout-lease-namespace)");
                        return ExitCode::from(2);
                    }
                }
            }
            None => None,
        };
        let reporter = rollout
            .clone()
            .map(|lease| tokio::spawn(lease.run(Arc::clone(&router))));
        let server = tokio::spawn(http::serve(args.metrics_addr, Arc::clone(&router)));
        let settings = RunSettings {
            kafka: KafkaSettings {
                brokers: args.brokers,
                properties,
                consumer_properties: args.consumer_properties,
                producer_properties: args.producer_properties,
                instance_id: args.instance_id,
                best_effort_queue: args.best_effort_queue,
            },
            source_topics: args.source_topics,
            group: args.group,
            exception_topic: args.exception_topic,
            commit_interval: args.commit_interval,
            lineage_headers: args.lineage_headers,
            drain_timeout: args.drain_timeout,
            lanes: run::lanes::LaneLimits {
                copies: args.max_in_flight,
                best_effort_copies: args.best_effort_queue,
                bytes: args.max_in_flight_bytes,
            },
            stall_timeout: args.stall_timeout,
        };
        let result = run::run(settings, router, shutdown::signal()).await;
        server.abort();
        if let Some(reporter) = reporter {
            reporter.abort();
        }
        if let Some(lease) = rollout {
            lease.remove().await;
        }
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(%error, "router failed");
                ExitCode::from(1)
            }
        }
    });
    // Tasks still holding clients (retries of copies that will be routed again) must not keep
    // the process past its grace period.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    code
}

/// Who the router is in its roll-out Lease: its group instance id (the pod name in the chart),
/// else the host name, else a name unique to this process.
fn router_identity(instance_id: Option<&str>) -> String {
    instance_id
        .map(String::from)
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| format!("router-{}", std::process::id()))
}
