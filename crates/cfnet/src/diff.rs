//! `cfnet diff`: what the controller would change on the live cluster, without writing anything. The
//! decisions are the controller's own (`cfnet_controller::diff`); this module reads the flags and the
//! Route files, and prints the result as text or JSON. docs/diff.md describes the output.
//!
//! Exit status: 0 no changes, 1 changes pending, 2 unusable input (an unreadable or malformed file, no
//! kubeconfig, an unreachable API server).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use cfnet_controller::diff::{ChangeAction, Diff, DiffOptions, diff, render_value};
use cfnet_translate::Settings;
use serde_json::json;

use crate::kube_args::KubeArgs;
use crate::manifest::{read_routes_in, read_sources};
use crate::render::DEFAULT_GATEWAY;
use crate::routing::RoutingArgs;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 no changes, 1 changes pending, 2 unusable input \
(unreadable file, no kubeconfig, API server unreachable)."
)]
pub struct Args {
    /// Route file (YAML, multi-document, or JSON) to compare instead of the live Routes; repeatable;
    /// `-` reads stdin. Only the FQDNs of these Routes are compared; a Route without a namespace is in
    /// --namespace's (default: `default`).
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    files: Vec<String>,
    /// Only this namespace, as a controller started with --namespace sees it (default: all namespaces).
    #[arg(short = 'n', long)]
    namespace: Option<String>,
    /// Gateway external routes are bound to, NAMESPACE/NAME: the controller's ISTIO_GATEWAY_NAME.
    #[arg(long, value_name = "NS/NAME", env = "ISTIO_GATEWAY_NAME", default_value = DEFAULT_GATEWAY)]
    gateway: String,
    /// The controller's routing API and Gateway API parent: the children it writes are VirtualServices or
    /// HTTPRoutes.
    #[command(flatten)]
    routing: RoutingArgs,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    output: Format,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let routes = if args.files.is_empty() {
        None
    } else {
        let mut warnings = Vec::new();
        // A Route without a namespace is in --namespace's, as kubectl reads it.
        let namespace = args.namespace.as_deref().unwrap_or("default");
        let routes = read_sources(&args.files)
            .and_then(|sources| read_routes_in(&sources, namespace, &mut warnings));
        for w in warnings {
            eprintln!("warning: {w}");
        }
        match routes {
            Ok(routes) => Some(routes),
            Err(e) => return fail(&e),
        }
    };
    let options = DiffOptions {
        settings: Settings {
            gateway: args.gateway,
            routing_api: args.routing.routing_api,
            gateway_api_parent: args.routing.gateway_api_parent,
        },
        namespace: args.namespace,
        routes,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let client = args.kube.client().await?;
        anyhow::Ok(diff(&client, &options).await?)
    });
    let found = match result {
        Ok(found) => found,
        Err(e) => return fail(&crate::process::one_line(e)),
    };
    let out = match args.output {
        Format::Text => text(&found),
        Format::Json => to_json(&found),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return fail("cannot write the output");
    }
    ExitCode::from(u8::from(found.pending()))
}

fn fail(message: &str) -> ExitCode {
    eprintln!("cfnet diff: {message}");
    ExitCode::from(2)
}

/// One `ACTION KIND NAMESPACE/NAME` line per object, its reason as a `  # …` line, each changed field
/// as `  PATH: FROM → TO`; then a summary line.
pub fn text(found: &Diff) -> String {
    let mut out = String::new();
    for c in &found.changes {
        let _ = writeln!(
            out,
            "{} {} {}/{}",
            c.action.as_str(),
            c.kind,
            c.namespace,
            c.name
        );
        if let Some(m) = &c.message {
            let _ = writeln!(out, "  # {m}");
        }
        for f in &c.fields {
            let _ = writeln!(
                out,
                "  {}: {} → {}",
                f.path,
                render_value(f.from.as_ref()),
                render_value(f.to.as_ref())
            );
        }
    }
    let counts = found.counts();
    if counts.is_empty() {
        out.push_str("no changes\n");
    } else {
        let parts: Vec<String> = counts
            .iter()
            .map(|(action, n)| format!("{n} {}", action.as_str()))
            .collect();
        let _ = writeln!(out, "summary: {}", parts.join(", "));
    }
    out
}

/// `{"changes": [...], "summary": {"create": N, "update": N, "adopt": N, "delete": N, "refuse": N}}`.
pub fn to_json(found: &Diff) -> String {
    let counts = found.counts();
    let n = |a: ChangeAction| counts.get(&a).copied().unwrap_or(0);
    let value = json!({
        "changes": found.changes,
        "summary": {
            "create": n(ChangeAction::Create),
            "update": n(ChangeAction::Update),
            "adopt": n(ChangeAction::Adopt),
            "delete": n(ChangeAction::Delete),
            "refuse": n(ChangeAction::Refuse),
        },
    });
    // Serialising a Value cannot fail.
    let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use cfnet_controller::diff::{FieldChange, ObjectChange};

    use super::*;

    #[test]
    fn text_is_one_line_per_object_and_field() {
        let found = Diff {
            changes: vec![
                ObjectChange {
                    action: ChangeAction::Adopt,
                    kind: "VirtualService",
                    namespace: "ns".into(),
                    name: "vs-1".into(),
                    fields: vec![FieldChange {
                        path: "spec.http[0].route[0].destination.port.number".into(),
                        from: None,
                        to: Some(json!(8080)),
                    }],
                    message: Some("written by routecontroller".into()),
                },
                ObjectChange {
                    action: ChangeAction::Create,
                    kind: "Service",
                    namespace: "ns".into(),
                    name: "s-1".into(),
                    fields: vec![],
                    message: None,
                },
            ],
        };
        assert_eq!(
            text(&found),
            "adopt VirtualService ns/vs-1\n  # written by routecontroller\n  \
             spec.http[0].route[0].destination.port.number: <none> → 8080\n\
             create Service ns/s-1\nsummary: 1 create, 1 adopt\n"
        );
        let j: serde_json::Value = serde_json::from_str(&to_json(&found)).unwrap();
        assert_eq!(j["summary"]["adopt"], 1);
        assert_eq!(
            j["changes"][0]["fields"][0]["from"],
            serde_json::Value::Null
        );
        assert_eq!(text(&Diff::default()), "no changes\n");
    }
}
