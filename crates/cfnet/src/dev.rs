//! `cfnet dev`: the local control plane (etcd + kube-apiserver on loopback) for trying cfnet and for tests.
//!
//! - `cfnet dev install` puts etcd and kube-apiserver into the cache directory and prints source, version and
//!   directory;
//! - `cfnet dev up --state-dir DIR` runs them in the foreground, writes DIR/kubeconfig once the API server is
//!   ready and the CRDs are Established, and stops everything on SIGINT/SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cfnet_testenv::{ControlPlane, Options};

use crate::process::{self, LogFormat, Signals};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Install etcd and kube-apiserver into the cache directory ($CFNET_CACHE_DIR/bin, default
    /// ~/.cache/cfnet/bin); reuses what is already there.
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
}

pub fn run(cmd: Command) -> ExitCode {
    match cmd {
        Command::Install => install(),
        Command::Up(args) => up(args),
    }
}

fn install() -> ExitCode {
    match cfnet_testenv::install::install() {
        Ok(report) => {
            println!(
                "cfnet dev install: etcd and kube-apiserver {} (source: {}) are in {}",
                report.version,
                report.source,
                report.dir.display()
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
    // The contract: a missing binary is an error naming `cfnet dev install`, not a surprise build.
    let options = Options {
        state_dir: Some(args.state_dir.clone()),
        install_missing: false,
        ..Options::default()
    };
    eprintln!(
        "cfnet dev up: starting etcd and kube-apiserver in {}",
        args.state_dir.display()
    );
    // A signal during start-up drops the half-started control plane, which stops its servers.
    let mut cp = tokio::select! {
        started = ControlPlane::start_with(options) => started.map_err(|e| e.to_string())?,
        name = signals.recv() => {
            let what = if name == "SIGINT" { "interrupted" } else { "terminated" };
            eprintln!("cfnet dev up: {what} during start-up; stopped");
            return Ok(());
        }
    };
    let kubeconfig = cp.kubeconfig_path().display().to_string();
    println!(
        "cfnet dev up: kube-apiserver {} ready at {} in {:.1} s (Route and Istio CRDs installed)\n\
         \n  export KUBECONFIG={kubeconfig}\n  kubectl get routes,virtualservices,services -A\n  \
         cfnet controller   # in another shell, with the same KUBECONFIG\n\n\
         logs: {dir}/kube-apiserver.log, {dir}/etcd.log\n\
         Stop with Ctrl-C.",
        cp.apiserver_version(),
        cp.server_url(),
        cp.startup_duration().as_secs_f64(),
        dir = cp.state_dir().display(),
    );
    let mut health = tokio::time::interval(Duration::from_millis(500));
    let outcome = loop {
        tokio::select! {
            name = signals.recv() => break Ok(name),
            _ = health.tick() => {
                if let Err(e) = cp.check_running() {
                    break Err(e.to_string());
                }
            }
        }
    };
    // The kubeconfig points at ports that are about to close.
    let _ = std::fs::remove_file(cp.kubeconfig_path());
    cp.stop();
    match outcome {
        Ok(signal) => {
            eprintln!("cfnet dev up: {signal} received; etcd and kube-apiserver stopped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
