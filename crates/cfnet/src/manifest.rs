//! Reading Route manifests: YAML (multi-document) or JSON (a value or a stream), Lists and RouteLists
//! unpacked, other kinds skipped with a warning. What `cfnet render` reads, and the examples
//! `cfnet demo` applies.

use std::io::Read;

use cfnet_api::{ROUTE_API_VERSION, Route};
use serde_json::Value;

/// Reads the files of `-f` as `(label, text)` sources; `-` is stdin (read once, labelled `<stdin>`).
/// `Err` is one line naming the file that cannot be read.
pub fn read_sources(files: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut sources = Vec::new();
    let mut stdin_read = false;
    for file in files {
        let (label, read) = if file == "-" {
            if stdin_read {
                continue;
            }
            stdin_read = true;
            let mut text = String::new();
            let read = std::io::stdin().read_to_string(&mut text).map(|_| text);
            ("<stdin>".to_owned(), read)
        } else {
            (file.clone(), std::fs::read_to_string(file))
        };
        match read {
            Ok(text) => sources.push((label, text)),
            Err(e) => return Err(format!("cannot read {label}: {e}")),
        }
    }
    Ok(sources)
}

/// Parses `(label, text)` sources into Routes exactly as `render` reads them (YAML or JSON streams, Lists,
/// a missing namespace read as `default`); warnings (skipped objects, duplicates) go to `warnings`. `Err`
/// is the one-line description of unusable input, naming the source, document and field.
pub fn read_routes(
    sources: &[(String, String)],
    warnings: &mut Vec<String>,
) -> Result<Vec<Route>, String> {
    read_routes_in(sources, "default", warnings)
}

/// [`read_routes`] with a missing namespace read as `namespace` (`cfnet diff -n NS -f FILE`, as kubectl does).
pub fn read_routes_in(
    sources: &[(String, String)],
    namespace: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<Route>, String> {
    let mut routes = Vec::new();
    for (label, text) in sources {
        read_source(label, text, namespace, &mut routes, warnings)?;
    }
    warn_duplicates(&routes, warnings);
    Ok(routes)
}

/// Parses one source: a JSON value or stream when it starts with `{` or `[`, else a YAML stream.
fn read_source(
    label: &str,
    text: &str,
    namespace: &str,
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
            read_object(&at, value, namespace, routes, warnings)?;
        }
    } else {
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
            let at = format!("{label}: document {}", i + 1);
            let value = serde::Deserialize::deserialize(doc)
                .map_err(|e: serde_yaml_ng::Error| format!("{at}: malformed YAML: {e}"))?;
            read_object(&at, value, namespace, routes, warnings)?;
        }
    }
    Ok(())
}

/// One document (or List item): a Route is kept, a List/RouteList unpacked, anything else skipped.
fn read_object(
    at: &str,
    value: Value,
    namespace: &str,
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
                read_object(
                    &format!("{at}, items[{i}]"),
                    item,
                    namespace,
                    routes,
                    warnings,
                )?;
            }
            Ok(())
        }
        "Route" if api_version == ROUTE_API_VERSION => {
            routes.push(read_route(at, value, namespace)?);
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

/// A Route document; a missing namespace reads as `namespace`.
fn read_route(at: &str, value: Value, namespace: &str) -> Result<Route, String> {
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
        route.metadata.namespace = Some(namespace.to_owned());
    }
    Ok(route)
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
