//! `cfnet dev`: the local control plane (etcd + kube-apiserver on loopback, optionally istiod) for trying cfnet
//! and for tests.
//!
//! - `cfnet dev install` puts etcd, kube-apiserver and istiod (`pilot-discovery`) into the cache directory and
//!   prints their versions and where they are;
//! - `cfnet dev up --state-dir DIR` runs the control plane in the foreground, writes DIR/kubeconfig once the API
//!   server is ready and the CRDs are Established, and stops everything on SIGINT/SIGTERM. With `--istiod` it
//!   then starts istiod, applies the chart's Istio objects (the Gateway and the ingress gateway Service, without
//!   which istiod gives the gateway no listener), waits until istiod serves the gateway a listener and writes
//!   DIR/istiod (its plaintext xDS address, `127.0.0.1:PORT` and a newline). Both files are a contract of
//!   checks outside the repository and are removed on exit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions, Options};

use crate::process::{self, LogFormat, Signals};

/// How long istiod gets to serve the CF ingress gateway its listeners once the chart's objects are applied.
const GATEWAY_READY: Duration = Duration::from_secs(30);

#[derive(clap::Subcommand)]
pub enum Command {
    /// Install etcd, kube-apiserver and istiod (pilot-discovery, built with Go: 10-20 minutes the first time)
    /// into the cache directory ($CFNET_CACHE_DIR/bin, default ~/.cache/cfnet/bin); reuses what is already there.
    Install,
    /// Run etcd + kube-apiserver on 127.0.0.1 in the foreground (Route and Istio CRDs installed); writes
    /// DIR/kubeconfig once ready. Stop with Ctrl-C (SIGINT) or SIGTERM.
    Up(UpArgs),
}

#[derive(clap::Args)]
pub struct UpArgs {
    /// Directory for etcd data, certificates, logs and the admin kubeconfig (created if missing; kept on exit).
    #[arg(long, value_name = "DIR")]
    state_dir: PathBuf,
    /// Also run istiod against the API server (with Istio's validating webhook registered), apply the chart's
    /// Istio objects (Gateway, ingress gateway Service, …; helm is installed into the cache when missing) and
    /// write istiod's plaintext xDS address to DIR/istiod once istiod serves the ingress gateway.
    #[arg(long)]
    istiod: bool,
}

pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Install => install(),
        Command::Up(args) => up(args),
    }
}

fn install() -> ExitCode {
    let control_plane = match cfnet_testenv::install::install() {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cfnet dev install: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "cfnet dev install: etcd and kube-apiserver {} (source: {}) are in {}",
        control_plane.version,
        control_plane.source,
        control_plane.dir.display()
    );
    match cfnet_testenv::install::install_istiod() {
        Ok(report) => {
            println!(
                "cfnet dev install: istiod (pilot-discovery, istio.io/istio@{}) is {}",
                report.version,
                report.path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cfnet dev install: {e}");
            ExitCode::FAILURE
        }
    }
}

fn up(args: UpArgs) -> ExitCode {
    process::init_logging(LogFormat::Text, process::QUIET);
    process::run_async("dev up", up_async(args))
}

async fn up_async(args: UpArgs) -> Result<(), String> {
    let mut signals = Signals::install()?;
    // Written again only once istiod is ready: a file from an earlier run would name a dead port.
    let istiod_file = args.state_dir.join("istiod");
    remove_if_present(&istiod_file)?;
    // The contract: a missing binary is an error naming `cfnet dev install`, not a surprise build. istiod is
    // looked for first so that its absence does not cost a control-plane start.
    if args.istiod {
        cfnet_testenv::locate_istiod().map_err(|e| e.to_string())?;
    }
    let options = Options {
        state_dir: Some(args.state_dir.clone()),
        install_missing: false,
        ..Options::default()
    };
    eprintln!(
        "cfnet dev up: starting etcd and kube-apiserver{} in {}",
        if args.istiod { ", then istiod," } else { "" },
        args.state_dir.display()
    );
    // A signal during start-up drops the half-started control plane, which stops its servers.
    let mut cp = tokio::select! {
        started = ControlPlane::start_with(options) => started.map_err(|e| e.to_string())?,
        signal = signals.recv() => {
            eprintln!("cfnet dev up: {signal} during start-up; stopped");
            return Ok(());
        }
    };
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    let dir = cp.state_dir().display().to_string();
    println!(
        "cfnet dev up: kube-apiserver {} ready at {} in {:.1} s (Route and Istio CRDs installed)\n\
         \n  export KUBECONFIG={kubeconfig}\n  kubectl get routes,virtualservices,services -A\n  \
         cfnet controller   # in another shell, with the same KUBECONFIG\n",
        cp.apiserver_version(),
        cp.server_url(),
        cp.startup_duration().as_secs_f64(),
    );

    let istiod = if args.istiod {
        match start_istiod(&mut cp, &mut signals, &istiod_file).await? {
            Some(istiod) => Some(istiod),
            None => return Ok(()),
        }
    } else {
        None
    };
    println!(
        "logs: {dir}/kube-apiserver.log, {dir}/etcd.log{}\nStop with Ctrl-C.",
        if istiod.is_some() {
            format!(", {dir}/istiod.log")
        } else {
            String::new()
        }
    );

    let mut istiod = istiod;
    let outcome = run_until_stopped(&mut cp, istiod.as_mut(), &mut signals).await;
    // Both files name ports that are about to close.
    let _ = std::fs::remove_file(&istiod_file);
    let _ = std::fs::remove_file(cp.kubeconfig_path());
    let mut stopped = "etcd and kube-apiserver";
    if let Some(mut istiod) = istiod {
        // While the API server still runs: its webhook configuration goes first.
        if let Err(e) = istiod.stop().await {
            eprintln!("cfnet dev up: {e}");
        }
        stopped = "istiod, etcd and kube-apiserver";
    }
    cp.stop();
    match outcome {
        Ok(signal) => {
            eprintln!("cfnet dev up: {signal} received; {stopped} stopped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Starts istiod next to `cp` and writes its xDS address to `file`; `None` when a signal came first. On
/// failure or a signal the control plane is stopped.
async fn start_istiod(
    cp: &mut ControlPlane,
    signals: &mut Signals,
    file: &Path,
) -> Result<Option<Istiod>, String> {
    let options = IstiodOptions {
        install_missing: false,
        ..IstiodOptions::default()
    };
    let started = tokio::select! {
        started = Istiod::start(cp, options) => Some(started),
        signal = signals.recv() => {
            eprintln!("cfnet dev up: {signal} during istiod start-up; stopped");
            None
        }
    };
    let mut started = match started {
        Some(Ok(started)) => started,
        failed => {
            let _ = std::fs::remove_file(cp.kubeconfig_path());
            cp.stop();
            return match failed {
                Some(Err(e)) => Err(e.to_string()),
                _ => Ok(None),
            };
        }
    };
    // What users install with istiod: without the Gateway and the ingress gateway Service, istiod gives the
    // gateway no listener and `cfnet proxy-config` shows no route.
    let applied = match cfnet_testenv::chart::apply_chart_istio_objects(cp, &[]).await {
        Ok(applied) => applied,
        Err(e) => {
            let _ = started.stop().await;
            let _ = std::fs::remove_file(cp.kubeconfig_path());
            cp.stop();
            return Err(format!(
                "applying the chart's Istio objects (Gateway, ingress gateway Service) for istiod: {e}"
            ));
        }
    };
    // DIR/istiod promises a usable istiod: one that already serves the gateway.
    let xds = started.xds_addr().to_string();
    if let Err(e) = crate::gateway_envoy::wait_for_gateway_listeners(&xds, GATEWAY_READY).await {
        let _ = started.stop().await;
        let _ = std::fs::remove_file(cp.kubeconfig_path());
        cp.stop();
        return Err(e);
    }
    write_atomically(file, &format!("{}\n", started.xds_addr()))?;
    println!(
        "cfnet dev up: istiod {} ready in {:.1} s\n\
         \n  xDS (plaintext gRPC, ADS): {} (also in {})\n  \
         debug: http://{}/debug/configz   metrics: http://{}/metrics\n  \
         Istio's validating webhook: https://{}/validate (ValidatingWebhookConfiguration {})\n  \
         the chart's Istio objects: {}\n",
        started.version(),
        started.startup_duration().as_secs_f64(),
        started.xds_addr(),
        file.display(),
        started.http_addr(),
        started.monitoring_addr(),
        started
            .webhook_addr()
            .map_or_else(|| "-".to_string(), |a| a.to_string()),
        cfnet_testenv::istio_webhook::CONFIG_NAME,
        applied.join(", "),
    );
    Ok(Some(started))
}

/// Runs until a signal (its name) or until a server dies (the error).
async fn run_until_stopped(
    cp: &mut ControlPlane,
    mut istiod: Option<&mut Istiod>,
    signals: &mut Signals,
) -> Result<&'static str, String> {
    let mut health = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            signal = signals.recv() => return Ok(signal),
            _ = health.tick() => {
                let running = cp.check_running().and_then(|()| match istiod.as_deref_mut() {
                    Some(istiod) => istiod.check_running(),
                    None => Ok(()),
                });
                if let Err(e) = running {
                    return Err(e.to_string());
                }
            }
        }
    }
}

fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("removing stale {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Temp file + rename: a reader never sees a half-written file.
pub(crate) fn write_atomically(path: &Path, contents: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
}
