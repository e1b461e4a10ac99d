//! `cfnet controller`: the RouteController process. Owns the process edge — flags, environment,
//! logging, signals, exit codes — and hands everything else to `cfnet_controller::run`.
//!
//! Compatible with the Go routecontroller's deployment: env `ISTIO_GATEWAY_NAME` (required),
//! `LEADER_ELECTION_NAMESPACE` (required only with `--enable-leader-election`; upstream demanded it
//! always), `RESYNC_INTERVAL` (seconds, default 30); flags `--metrics-addr` (default :8080),
//! `--enable-leader-election[=true]`, `--kubeconfig`. A configuration error prints one line and exits 1.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use cfnet_controller::{Config, EnvConfig, LeaderElection, parse_listen_addr};
use clap::{ArgAction, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
pub struct Args {
    /// Address of /metrics (Prometheus text); `:port` = all interfaces, `0` = off.
    #[arg(long, default_value = ":8080")]
    metrics_addr: String,
    /// Address of /healthz and /readyz; `:port` = all interfaces, `0` = off.
    #[arg(long, default_value = ":8081")]
    health_addr: String,
    /// Elect a leader on the Lease cf-k8s-networking-routecontroller in LEADER_ELECTION_NAMESPACE.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value_t = false, default_missing_value = "true")]
    enable_leader_election: bool,
    /// Kubeconfig file; default: $KUBECONFIG, ~/.kube/config, then the in-cluster service account.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Only watch and write in this namespace (repeatable); default: all namespaces.
    #[arg(long = "namespace", value_name = "NAMESPACE")]
    namespaces: Vec<String>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// FQDN keys reconciled concurrently.
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

pub fn run(args: Args) -> ExitCode {
    init_logging(args.log_format);
    let config = match config_from(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cfnet controller: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cfnet controller: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args.kubeconfig, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cfnet controller: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn config_from(args: &Args) -> anyhow::Result<Config> {
    let env = EnvConfig::from_lookup(|k| std::env::var(k).ok(), args.enable_leader_election)?;
    let mut config = Config::new(env.gateway);
    config.resync_interval = env.resync_interval;
    config.namespaces = args.namespaces.clone();
    config.workers = args.workers.max(1);
    config.metrics_addr = parse_listen_addr("--metrics-addr", &args.metrics_addr)?;
    config.health_addr = parse_listen_addr("--health-addr", &args.health_addr)?;
    if args.enable_leader_election {
        let namespace = env.leader_election_namespace.unwrap_or_default();
        config.leader_election = Some(LeaderElection::new(namespace, identity()));
    }
    Ok(config)
}

/// `hostname_random`, like controller-runtime's `hostname + "_" + uuid`.
fn identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "cfnet".to_string());
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{host}_{:016x}", hasher.finish())
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn client(kubeconfig: Option<PathBuf>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(&path)
                .with_context(|| format!("cannot read --kubeconfig {}: give a readable kubeconfig file", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("cannot use --kubeconfig {}: check its current context", path.display()))?
        }
        None => kube::Config::infer().await.context(
            "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a pod with a service account",
        )?,
    };
    kube::Client::try_from(config)
        .context("cannot build a Kubernetes client from the configuration")
}

async fn serve(kubeconfig: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    let client = client(kubeconfig).await?;
    cfnet_controller::run(config, client, shutdown_signal()).await?;
    Ok(())
}

/// SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
