//! `cfnet explain URL`: one request's path through cfnet's objects and Envoy, with what is wrong on it.
//!
//! In order: the FQDN and the Routes that claim it; the FQDN's VirtualService and the http entry the path takes
//! (Istio's first match, case-sensitive prefixes) with the other entries that match or can never match; the
//! Route behind that entry, its destinations with weights, each Service `s-<guid>` and its ready endpoints
//! (EndpointSlices); with istiod, the virtual host, route and clusters the CF ingress gateway (or, for an
//! internal FQDN, a sidecar in its namespace) has; then the problems, each with a stable code. docs/debugging.md
//! walks through them.
//!
//! Exit status: 0 the request reaches an app; 1 a problem stops it; 2 unusable input (bad URL, unreadable
//! kubeconfig, unreachable API server), one line on stderr.

mod decide;
mod envoy;
mod problems;
mod read;
mod report;
mod request;
#[cfg(test)]
mod tests;
mod text;

use std::io::Write;
use std::process::ExitCode;

pub use decide::{Facts, claiming, explain};
pub use envoy::EnvoyFacts;
pub use report::{Code, Report};
pub use request::{Request, Scheme, UrlError};

use crate::kube_args::KubeArgs;
use crate::render::DEFAULT_GATEWAY;
use crate::xds_args::XdsArgs;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The request: host/path or http(s)://host[:port]/path[?query]
    #[arg(value_name = "URL")]
    url: String,
    #[command(flatten)]
    kube: KubeArgs,
    #[command(flatten)]
    xds: XdsArgs,
    /// The Istio Gateway external routes are bound to, NAMESPACE/NAME; its selector names the gateway proxy.
    #[arg(long, value_name = "NS/NAME", env = "ISTIO_GATEWAY_NAME", default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cfnet explain: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let format = args.output;
    let report = match runtime.block_on(report(args)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("cfnet explain: {e}");
            return ExitCode::from(2);
        }
    };
    let out = match format {
        Format::Text => text::render(&report),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("cfnet explain: cannot write the report as JSON: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(2);
    }
    ExitCode::from(report.exit_code())
}

/// Reads everything and decides; `Err` is the one line for exit status 2.
async fn report(args: Args) -> Result<Report, String> {
    // The URL first: a bad one is exit 2 before any connection.
    Request::parse(&args.url).map_err(|e| e.to_string())?;
    let xds = args
        .xds
        .address(args.kube.state_dir.as_deref())
        .map_err(|e| e.to_string())?;
    let client = args.kube.client().await.map_err(|e| e.to_string())?;
    report_with(&client, &args.url, &args.gateway, xds.as_deref()).await
}

/// The report on `url` with a client at hand (`cfnet explain`, and the end of `cfnet demo --istiod`).
pub(crate) async fn report_with(
    client: &kube::Client,
    url: &str,
    gateway: &str,
    xds: Option<&str>,
) -> Result<Report, String> {
    let request = Request::parse(url).map_err(|e| e.to_string())?;
    let facts = read::read(client, request, gateway, xds)
        .await
        .map_err(|e| cfnet_controller::error_chain(&e))?;
    Ok(explain(&facts))
}

/// The text form of a report, as `cfnet explain` prints it.
pub fn render_text(report: &Report) -> String {
    text::render(report)
}
