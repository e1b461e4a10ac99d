//! `cfnet render`: Route YAML/JSON in, the Services and VirtualServices the controller would write out,
//! offline. The contract (flags, output order, stderr lines, exit codes) is in docs/render.md and is
//! checked by acceptance tests outside the repo: change it only on purpose.
//!
//! Exit codes: 0 all routes programmed; 1 some route invalid (everything valid is still printed, one
//! `route <namespace>/<name>: <reason>` line per problem on stderr); 2 unusable input (nothing printed).

use std::io::{Read, Write};
use std::process::ExitCode;

use cfnet_api::{Route, VirtualService};
use cfnet_translate::{Settings, translate};
use k8s_openapi::api::core::v1::Service;
use serde::Serialize;
use serde_json::Value;

const ROUTE_API_VERSION: &str = "networking.cloudfoundry.org/v1alpha1";
const DEFAULT_GATEWAY: &str = "cf-system/istio-ingressgateway";

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
    let mut sources = Vec::new();
    let files = if args.files.is_empty() {
        vec!["-".to_owned()]
    } else {
        args.files
    };
    let mut stdin_read = false;
    for file in files {
        let read = if file == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map(|_| text)
        } else {
            std::fs::read_to_string(&file)
        };
        let label = if file == "-" {
            "<stdin>".to_owned()
        } else {
            file.clone()
        };
        match read {
            Ok(text) => sources.push((label, text)),
            Err(e) => {
                eprintln!("error: cannot read {label}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let outcome = render(&sources, &args.gateway, args.output);
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

/// Renders `(label, text)` sources. Pure apart from allocation: the tests call it directly.
pub fn render(sources: &[(String, String)], gateway: &str, format: Format) -> Outcome {
    let mut outcome = Outcome::default();
    let routes = match read_routes(sources, &mut outcome.stderr) {
        Ok(routes) => routes,
        Err(e) => {
            outcome.stderr.push(format!("error: {e}"));
            outcome.code = 2;
            return outcome;
        }
    };

    let settings = Settings {
        gateway: gateway.to_owned(),
        ..Default::default()
    };
    let translation = translate(&routes, &settings);
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

/// Parses `(label, text)` sources into Routes exactly as `render` reads them (YAML or JSON streams, Lists,
/// a missing namespace read as `default`); warnings (skipped objects, duplicates) go to `warnings`. `Err`
/// is the one-line description of unusable input, naming the source, document and field. Also used by
/// `cfnet demo` to read the example Routes it applies.
pub fn read_routes(
    sources: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for (label, text) in sources {
        read_source(label, text, &mut routes, warnings)?;
    }
    warn_duplicates(&routes, warnings);
    Ok(routes)
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Service(&'a Service),
    VirtualService(&'a VirtualService),
}

#[derive(Serialize)]
struct List<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Item<'a>],
}

/// Parses one source: a JSON value or stream when it starts with `{` or `[`, else a YAML stream.
fn read_source(
    label: &str,
    text: &str,
    routes: &mut Vec<Route>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        for (i, doc) in serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .enumerate()
        {
            let at = format!("{label}: document {}", i + 1);
            let value = doc.map_err(|e| format!("{at}: malformed JSON: {e}"))?;
            read_object(&at, value, routes, warnings)?;
        }
    } else {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let at = format!("{label}: document {}", i + 1);
            let value = serde::Deserialize::deserialize(doc)
                .map_err(|e: serde_yaml_ng::Error| format!("{at}: malformed YAML: {e}"))?;
            read_object(&at, value, routes, warnings)?;
        }
    }
    Ok(())
}

/// One document (or List item): a Route is kept, a List/RouteList unpacked, anything else skipped.
fn read_object(
    at: &str,
    value: Value,
    routes: &mut Vec<Route>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let obj = match &value {
        Value::Null => return Ok(()), // an empty document, e.g. a trailing `---`
        Value::Object(obj) => obj,
        other => {
            return Err(format!(
                "{at}: expected a Kubernetes object (a mapping with apiVersion and kind), got {}",
                json_type(other)
            ));
        }
    };
    let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or("");
    let kind = text("kind").to_owned();
    let api_version = text("apiVersion").to_owned();
    if kind.is_empty() || api_version.is_empty() {
        return Err(format!(
            "{at}: field {}: missing; every object needs apiVersion and kind (a Route has \
             apiVersion: {ROUTE_API_VERSION}, kind: Route)",
            if api_version.is_empty() {
                "apiVersion"
            } else {
                "kind"
            }
        ));
    }
    match kind.as_str() {
        "List" | "RouteList" => {
            let mut value = value;
            let items = match value.get_mut("items").map(Value::take) {
                None | Some(Value::Null) => return Ok(()),
                Some(Value::Array(items)) => items,
                Some(other) => {
                    return Err(format!(
                        "{at}: field items: expected a list, got {}",
                        json_type(&other)
                    ));
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                read_object(&format!("{at}, items[{i}]"), item, routes, warnings)?;
            }
            Ok(())
        }
        "Route" if api_version == ROUTE_API_VERSION => {
            let mut route: Route = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner().to_string();
                // serde names a missing field in the message, at its parent's path: join them.
                match inner
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.strip_suffix('`'))
                {
                    Some(field) if path == "." => format!("{at}: Route: field {field}: missing"),
                    Some(field) => format!("{at}: Route: field {path}.{field}: missing"),
                    None => format!("{at}: Route: field {path}: {inner}"),
                }
            })?;
            if route.metadata.name.as_deref().unwrap_or("").is_empty() {
                return Err(format!("{at}: Route: field metadata.name: missing"));
            }
            if route.metadata.namespace.as_deref().unwrap_or("").is_empty() {
                route.metadata.namespace = Some("default".to_owned());
            }
            routes.push(route);
            Ok(())
        }
        _ => {
            let name = obj
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("");
            warnings.push(format!(
                "warning: {at}: skipping {api_version} {kind} {name:?}: only {ROUTE_API_VERSION} \
                 Route (also inside a List or RouteList) is rendered"
            ));
            Ok(())
        }
    }
}

fn warn_duplicates(routes: &[Route], warnings: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    let mut warned = std::collections::BTreeSet::new();
    for r in routes {
        let key = (
            r.metadata.namespace.clone().unwrap_or_default(),
            r.metadata.name.clone().unwrap_or_default(),
        );
        if !seen.insert(key.clone()) && warned.insert(key.clone()) {
            warnings.push(format!(
                "warning: route {}/{} is defined more than once; the last definition wins",
                key.0, key.1
            ));
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
