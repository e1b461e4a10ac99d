//! The `cfnet` binary: parses the command line and hands each subcommand to the library (lib.rs).

use std::process::ExitCode;

use cfnet::{controller, crd, diff, explain, malloc, plugin, proxy_config, render};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cfnet",
    version,
    about = "Cloud Foundry networking control plane on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One-command demo: local control plane + in-process controller + the example Routes, printed as
    /// Routes, Services and VirtualServices; runs until Ctrl-C (or --exit-when-ready).
    #[cfg(feature = "dev-tools")]
    Demo(cfnet::demo::Args),
    /// Run the RouteController: Routes -> Services + Istio VirtualServices.
    Controller(controller::Args),
    /// Translate Route YAML/JSON offline into the Services and VirtualServices the controller would write.
    Render(render::Args),
    /// What the controller would change on the cluster (create, update, adopt, delete), without writing.
    /// Exit 0 no changes, 1 changes pending, 2 unusable input.
    Diff(diff::Args),
    /// Print the Route CustomResourceDefinition (YAML).
    Crd(crd::Args),
    /// The Envoy routes, clusters or listeners istiod serves a proxy (default: the CF ingress gateway), over
    /// xDS: `--xds HOST:PORT` or `--state-dir DIR` of `cfnet dev up --istiod`.
    ProxyConfig(proxy_config::Args),
    /// Explain one request: the Routes, VirtualService entry, Services, endpoints and Envoy route it meets,
    /// and what stops it (docs/debugging.md).
    Explain(explain::Args),
    /// Local control plane (etcd + kube-apiserver on loopback) for trying cfnet and for tests.
    #[cfg(feature = "dev-tools")]
    #[command(subcommand)]
    Dev(cfnet::dev::Command),
    /// Stress benchmark of the controller against the local control plane.
    #[cfg(feature = "dev-tools")]
    Bench(cfnet::bench::Args),
}

fn main() -> ExitCode {
    malloc::tune();
    match parse().command {
        #[cfg(feature = "dev-tools")]
        Command::Demo(args) => cfnet::demo::run(args),
        Command::Controller(args) => controller::run(args),
        Command::Render(args) => render::run(args),
        Command::Crd(args) => crd::run(args),
        Command::Diff(args) => diff::run(args),
        Command::ProxyConfig(args) => proxy_config::run(args),
        Command::Explain(args) => explain::run(args),
        #[cfg(feature = "dev-tools")]
        Command::Dev(cmd) => cfnet::dev::run(cmd),
        #[cfg(feature = "dev-tools")]
        Command::Bench(args) => cfnet::bench::run(args),
    }
}

/// The command line, with usage and help in the name the binary was invoked as: `kubectl cfnet …` when it
/// runs as the kubectl plugin `kubectl-cfnet` (plugin.rs), `cfnet …` otherwise.
fn parse() -> Cli {
    let Some(name) = std::env::args_os()
        .next()
        .and_then(|a| plugin::display_name(&a))
    else {
        return Cli::parse();
    };
    let matches = Cli::command().bin_name(name).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
