//! `cfnet render`: Route YAML/JSON in, the Services and VirtualServices (with `--routing-api
//! gateway-api`: HTTPRoutes) the controller would write out, offline. The contract (flags, output order, stderr lines, exit codes) is in docs/render.md and is
//! checked by acceptance tests outside the repo: change it only on purpose.
//!
//! Exit codes: 0 all routes programmed; 1 some route invalid (everything valid is still printed, one
//! `route <namespace>/<name>: <reason>` line per problem on stderr); 2 unusable input (nothing printed).

use std::io::Write;
use std::process::ExitCode;

use cfnet_api::VirtualService;
use cfnet_api::gateway_api::HTTPRoute;
use cfnet_translate::{Settings, translate};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;

use crate::manifest::{read_routes, read_sources};
use crate::routing::RoutingArgs;

/// Gateway external routes are bound to unless `--gateway` or `$ISTIO_GATEWAY_NAME` says otherwise.
pub const DEFAULT_GATEWAY: &str = "cf-system/istio-ingressgateway";

#[derive(clap::Args)]
pub struct Args {
    /// Route file, YAML (multi-document) or JSON; repeatable. `-` or no -f reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    files: Vec<String>,
    /// Gateway external routes are bound to, NAMESPACE/NAME.
    #[arg(long, value_name = "NS/NAME", env = "ISTIO_GATEWAY_NAME", default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// Output format: a multi-document YAML stream, or one JSON `List`.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Yaml)]
    output: Format,
    #[command(flatten)]
    routing: RoutingArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// What a render run produced; `run` writes it out.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    /// Lines for stderr (warnings, problems, or the one error).
    pub stderr: Vec<String>,
    pub code: u8,
}

pub fn run(args: Args) -> ExitCode {
    let files = if args.files.is_empty() {
        vec!["-".to_owned()]
    } else {
        args.files
    };
    let sources = match read_sources(&files) {
        Ok(sources) => sources,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = Settings {
        gateway: args.gateway,
        routing_api: args.routing.routing_api,
        gateway_api_parent: args.routing.gateway_api_parent,
    };
    let outcome = render_with(&sources, &settings, args.output);
    let mut stderr = std::io::stderr().lock();
    for line in &outcome.stderr {
        // A closed stderr must not turn into a panic.
        let _ = writeln!(stderr, "{line}");
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(outcome.stdout.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        let _ = writeln!(stderr, "error: cannot write the output");
        return ExitCode::from(2);
    }
    ExitCode::from(outcome.code)
}

/// Renders `(label, text)` sources in Istio mode. Pure apart from allocation: the tests call it directly.
pub fn render(sources: &[(String, String)], gateway: &str, format: Format) -> Outcome {
    let settings = Settings {
        gateway: gateway.to_owned(),
        ..Default::default()
    };
    render_with(sources, &settings, format)
}

/// Renders `(label, text)` sources with `settings` (the routing API among them): the Services, then the
/// VirtualServices or the HTTPRoutes.
pub fn render_with(sources: &[(String, String)], settings: &Settings, format: Format) -> Outcome {
    let mut outcome = Outcome::default();
    let routes = match read_routes(sources, &mut outcome.stderr) {
        Ok(routes) => routes,
        Err(e) => {
            outcome.stderr.push(format!("error: {e}"));
            outcome.code = 2;
            return outcome;
        }
    };

    let translation = translate(&routes, settings);
    for p in &translation.problems {
        outcome
            .stderr
            .push(format!("route {}/{}: {}", p.namespace, p.route, p.message));
    }
    outcome.code = if translation.problems.is_empty() {
        0
    } else {
        1
    };

    let items: Vec<Item<'_>> = translation
        .services
        .iter()
        .map(Item::Service)
        .chain(
            translation
                .virtual_services
                .iter()
                .map(Item::VirtualService),
        )
        .chain(translation.http_routes.iter().map(Item::HTTPRoute))
        .collect();
    let written = match format {
        Format::Json => serde_json::to_string_pretty(&List {
            api_version: "v1",
            kind: "List",
            items: &items,
        })
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| e.to_string()),
        Format::Yaml => items
            .iter()
            .map(|item| serde_yaml_ng::to_string(item).map(|doc| format!("---\n{doc}")))
            .collect::<Result<String, _>>()
            .map_err(|e| e.to_string()),
    };
    // The process ends right after printing: freeing tens of thousands of small allocations one by one
    // would cost a noticeable part of the run (measured ~15 % at 10,000 routes).
    std::mem::forget(items);
    std::mem::forget(translation);
    std::mem::forget(routes);
    match written {
        Ok(s) => outcome.stdout = s,
        Err(e) => {
            // Cannot happen for these types (string keys, no non-finite floats); reported, not panicked.
            outcome
                .stderr
                .push(format!("error: cannot serialize the output: {e}"));
            outcome.code = 2;
        }
    }
    outcome
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Service(&'a Service),
    VirtualService(&'a VirtualService),
    HTTPRoute(&'a HTTPRoute),
}

#[derive(Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Item<'a>],
}
