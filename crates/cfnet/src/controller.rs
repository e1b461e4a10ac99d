//! `cfnet controller`: the RouteController process. Owns the process edge — flags, environment,
//! logging, signals, exit codes — and hands everything else to `cfnet_controller::run`.
//!
//! Compatible with the Go routecontroller's deployment: env `ISTIO_GATEWAY_NAME` (required),
//! `LEADER_ELECTION_NAMESPACE` (required only with `--enable-leader-election`; upstream demanded it
//! always), `RESYNC_INTERVAL` (seconds, default 30); flags `--metrics-addr` (default :8080),
//! `--enable-leader-election[=true]`, `--kubeconfig`. Beyond upstream: `--routing-api istio|gateway-api`
//! and `--gateway-api-parent` (routing.rs; in gateway-api mode `ISTIO_GATEWAY_NAME` is optional), and
//! `--events all|problems` (env `CFNET_EVENTS`, default `all`). A configuration error prints one line and
//! exits 1.
//!
//! Process contract: SIGTERM or SIGINT lets in-flight reconciles finish and exits 0 within 10 s (a
//! watchdog exits 1 if stopping hangs past [`EXIT_DEADLINE`]); an unreachable API server is retried with
//! back-off and logged (the controller's client, `cfnet_controller::connect`), never a reason to exit.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cfnet_controller::{Config, EnvConfig, LeaderElection, parse_events, parse_listen_addr};
use clap::ArgAction;

use crate::process::{self, LogFormat, Signals};
use crate::routing::RoutingArgs;

/// After SIGTERM/SIGINT the process is gone within this long, whatever hangs: the controller gives
/// in-flight reconciles 8 s and its servers 1 s, the runtime gets 300 ms.
const EXIT_DEADLINE: Duration = Duration::from_millis(9500);

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
    #[command(flatten)]
    routing: RoutingArgs,
    /// Events published on Routes: `all` (Created/Deleted/Programmed and Warnings) or `problems`
    /// (only Warnings; one API write less per programmed route).
    #[arg(long, env = "CFNET_EVENTS", default_value = "all")]
    events: String,
}

pub fn run(args: Args) -> ExitCode {
    process::init_logging(args.log_format, "info");
    let config = match config_from(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cfnet controller: {e}");
            return ExitCode::from(1);
        }
    };
    process::run_async("controller", async {
        serve(args.kubeconfig, config)
            .await
            .map_err(process::one_line)
    })
}

fn config_from(args: &Args) -> anyhow::Result<Config> {
    let env = EnvConfig::from_lookup(
        |k| std::env::var(k).ok(),
        args.enable_leader_election,
        args.routing.routing_api,
    )?;
    let mut config = Config::new(env.gateway);
    config.routing_api = args.routing.routing_api;
    config.gateway_api_parent = args.routing.gateway_api_parent.clone();
    config.resync_interval = env.resync_interval;
    config.namespaces = args.namespaces.clone();
    config.workers = args.workers.max(1);
    config.events = parse_events(&args.events)?;
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

async fn serve(kubeconfig: Option<PathBuf>, config: Config) -> anyhow::Result<()> {
    // Handlers first: a signal that arrives while we start is still a clean stop, not a kill.
    let shutdown = shutdown_signal()?;
    let client = cfnet_controller::connect(kubeconfig.as_deref()).await?;
    cfnet_controller::run(config, client, shutdown).await?;
    Ok(())
}

/// Completes on SIGTERM (Kubernetes) or SIGINT (Ctrl-C) and arms the [`EXIT_DEADLINE`] watchdog.
/// The handlers are installed when this is called, not when the future is first polled.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()> + Send> {
    let mut signals = Signals::install().map_err(anyhow::Error::msg)?;
    Ok(async move {
        let name = signals.recv().await;
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
