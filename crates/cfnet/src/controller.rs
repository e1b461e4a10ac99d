//! `cfnet controller`: the RouteController process. Owns the process edge — flags, environment,
//! logging, signals, exit codes — and hands everything else to `cfnet_controller::run`.
//!
//! Compatible with the Go routecontroller's deployment: env `ISTIO_GATEWAY_NAME` (required),
//! `LEADER_ELECTION_NAMESPACE` (required only with `--enable-leader-election`; upstream demanded it
//! always), `RESYNC_INTERVAL` (seconds, default 30); flags `--metrics-addr` (default :8080),
//! `--enable-leader-election[=true]`, `--kubeconfig`. A configuration error prints one line and exits 1.
//!
//! Process contract: SIGTERM or SIGINT lets in-flight reconciles finish and exits 0 within 10 s (a
//! watchdog exits 1 if stopping hangs past [`EXIT_DEADLINE`]); an unreachable API server is retried with
//! back-off and logged (api_backoff.rs), never a reason to exit.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use cfnet_controller::{Config, EnvConfig, LeaderElection, parse_listen_addr};
use clap::{ArgAction, ValueEnum};
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::api_backoff::ApiBackoffLayer;

/// After SIGTERM/SIGINT the process is gone within this long, whatever hangs: the controller gives
/// in-flight reconciles 8 s and its servers 1 s, the runtime gets [`RUNTIME_SHUTDOWN`].
const EXIT_DEADLINE: Duration = Duration::from_millis(9500);
/// How long leftover tasks get once `run` has returned.
const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(300);

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
    let served = runtime.block_on(serve(args.kubeconfig, config));
    // A task that ignores cancellation (e.g. blocking I/O) must not hold the exit.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    match served {
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

/// A client whose requests back off while the API server is unreachable (api_backoff.rs).
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
    let server = config.cluster_url.to_string();
    let builder = ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client from the configuration")?;
    Ok(builder.with_layer(&ApiBackoffLayer::new(server)).build())
}

async fn serve(kubeconfig: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while we start is still a clean stop, not a kill.
    let shutdown = shutdown_signal()?;
    let client = client(kubeconfig).await?;
    cfnet_controller::run(config, client, shutdown).await?;
    Ok(())
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C) and arms the [`EXIT_DEADLINE`] watchdog.
/// The handlers are installed when this is called, not when the future is first polled.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("{name} received: finishing in-flight reconciles, exiting within 10 s");
        arm_exit_deadline(name);
    })
}

/// Exits the process [`EXIT_DEADLINE`] after `signal` if the orderly stop has not finished by then.
fn arm_exit_deadline(signal: &'static str) {
    let spawned = std::thread::Builder::new()
        .name("cfnet-exit-deadline".into())
        .spawn(move || {
            std::thread::sleep(EXIT_DEADLINE);
            eprintln!(
                "cfnet controller: still stopping {EXIT_DEADLINE:?} after {signal}; exiting now \
                 (unfinished writes are redone from the API server's state by the next start)"
            );
            std::process::exit(1);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the exit-deadline watchdog; stopping without it");
    }
}
