//! `cfnet bench [--routes N] [--quick] --out DIR`: the stress benchmark (crate cfnet-bench).
//!
//! The controller under test is this same binary's `controller` subcommand, started as a separate
//! process, so `target/release/cfnet bench` measures `target/release/cfnet controller`:
//! build with `cargo build --release -p cfnet` first.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::process::{self, LogFormat};

#[derive(clap::Args)]
pub struct Args {
    /// N: routes of the bulk add, bulk delete and steady-state phases (the sizes: 1000 and 10000).
    #[arg(long, default_value_t = 1000)]
    routes: usize,
    /// CI mode: N = 200 (unless --routes is given), 200 shared-FQDN routes with 100 updates, drift repair of 50 routes, 6 s steady state. Checks that
    /// every phase completes with the right object counts; timings are reported, not judged.
    #[arg(long)]
    quick: bool,
    /// Directory for results.json, report.md, latency.svg and controller.log (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The binary whose `controller` subcommand is measured (default: this binary).
    #[arg(long)]
    controller_bin: Option<PathBuf>,
    /// The controller's `--events`: `all` (default) or `problems`; the bare-client limit issues the
    /// same writes (a `Created` Event per route with `all`).
    #[arg(long, default_value = "all")]
    events: String,
    /// Also measure Route → Envoy: istiod serving the chart's ingress gateway, a gateway xDS client,
    /// cold start with N routes, one-at-a-time changes through the controller and by a bare client.
    #[arg(long)]
    istiod: bool,
    /// Only the Route → Envoy phases of --istiod (for N = 10,000, where the other phases take long).
    #[arg(long)]
    envoy_only: bool,
    /// Extra environment of istiod for the Route → Envoy phases, `KEY=VALUE` (repeatable), e.g.
    /// `PILOT_DEBOUNCE_AFTER=10ms`.
    #[arg(long = "istiod-env", value_name = "KEY=VALUE")]
    istiod_env: Vec<String>,
}

pub fn run(args: Args) -> ExitCode {
    process::init_logging(LogFormat::Text, "info,kube=warn");
    process::run_async("bench", async {
        bench(args).await.map_err(process::one_line)
    })
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let routes_given = std::env::args().any(|a| a == "--routes" || a.starts_with("--routes="));
    let routes = if args.quick && !routes_given {
        200
    } else {
        args.routes
    };
    anyhow::ensure!(routes > 0, "--routes must be at least 1");
    let exe = match args.controller_bin {
        Some(p) => p,
        None => std::env::current_exe()
            .context("cannot find this binary's path to run `controller` from")?,
    };
    let mut config = cfnet_bench::Config::new(routes, args.quick, args.out.clone(), exe);
    config.command = std::env::args().collect::<Vec<_>>().join(" ");
    config.events = cfnet_controller::parse_events(&args.events)?;
    config.istiod = args.istiod || args.envoy_only;
    config.envoy_only = args.envoy_only;
    for pair in &args.istiod_env {
        let (key, value) = pair.split_once('=').with_context(|| {
            format!("--istiod-env {pair:?}: give KEY=VALUE, e.g. PILOT_DEBOUNCE_AFTER=10ms")
        })?;
        config.istiod_env.push((key.to_string(), value.to_string()));
    }
    if cfg!(debug_assertions) {
        tracing::warn!(
            "this is a debug build: timings are not representative (use cargo build --release)"
        );
    }
    let results = cfnet_bench::run(&config).await?;
    print!("{}", results.report_markdown());
    eprintln!(
        "cfnet bench: wrote {}/results.json, report.md, latency.svg and controller.log",
        args.out.display()
    );
    Ok(())
}
