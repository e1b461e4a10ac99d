//! Checks of one Route on its own (no siblings, no claims). A route that fails one is left out of its
//! VirtualService and reported with `Reason::Invalid`; the message says what to fix.
//!
//! Host and domain: ASCII DNS labels (letters of either case, digits, `-`; 1–63 characters; no `-` at
//! either end), the whole FQDN at most 253 characters; only the first label of the FQDN may be `*`.
//! Unicode must be written in its punycode (`xn--`) form and `_` is refused: Istio rejects both in
//! VirtualService hosts. The FQDN is case-insensitive ([`cfnet_api::RouteSpec::fqdn`] is lower case);
//! the path is not.
//!
//! The path must be one Gateway API accepts as a `PathPrefix` value
//! ([`crate::gateway_api::path_prefix_problem`]), in both modes: the API server would refuse the HTTPRoute,
//! and most such paths (`/./`, `#`) never match in Istio either.
//!
//! Every value the route puts into an object shared with other routes or checked by the API server must
//! pass the rules of whoever checks it ([`validate_written_values`]): Istio's validating webhook refuses a
//! whole VirtualService for one bad header value or host, which would stop every route of the FQDN, and
//! the API server refuses a Service whose labels or selector are not label syntax.

use std::collections::HashSet;

use cfnet_api::{
    APP_GUID_LABEL, ORG_GUID_LABEL, PROCESS_TYPE_LABEL, ROUTE_GUID_LABEL, Route, SPACE_GUID_LABEL,
};

use crate::gateway_api::path_prefix_problem;
use crate::istio::{validate_http_header_value, validate_virtual_service_host};
use crate::labels::{validate_label_key, validate_label_value};
use crate::{claims::route_name, service_name};

/// Checks a route on its own. `Err` carries the message for the route's problem.
pub fn validate_route(route: &Route) -> Result<(), String> {
    let spec = &route.spec;
    validate_fqdn(&spec.host, &spec.domain.name)?;
    let fqdn = spec.fqdn();
    if let Err(why) = validate_virtual_service_host(&fqdn, spec.domain.internal) {
        let bound = if spec.domain.internal {
            "an internal (mesh)"
        } else {
            "a"
        };
        return Err(format!(
            "FQDN {fqdn} cannot be the host of {bound} VirtualService: Istio refuses it ({why}); \
             change the host or domain"
        ));
    }

    let path = spec.path();
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!(
            "path {path:?} must start with \"/\" (or be empty for the whole host)"
        ));
    }
    // In both modes, so that the routing API never decides which routes are programmed.
    if !path.is_empty()
        && let Some(why) = path_prefix_problem(path)
    {
        return Err(format!(
            "path {path:?} {why}: it must be a URL path that Gateway API's PathPrefix match accepts \
             (and that Envoy does not normalize away); change the path"
        ));
    }
    // The host part of the url is compared case-insensitively, like the FQDN; the path exactly.
    let url = spec.url.as_bytes();
    if url.len() != fqdn.len() + path.len()
        || !url[..fqdn.len()].eq_ignore_ascii_case(fqdn.as_bytes())
        || &url[fqdn.len()..] != path.as_bytes()
    {
        let written = if spec.host.is_empty() {
            spec.domain.name.clone()
        } else {
            format!("{}.{}", spec.host, spec.domain.name)
        };
        return Err(format!(
            "url {:?} must be host.domain + path, i.e. {:?}",
            spec.url,
            format!("{written}{path}")
        ));
    }
    validate_destinations(route)?;
    validate_written_values(route)
}

fn validate_destinations(route: &Route) -> Result<(), String> {
    let dests = &route.spec.destinations;
    let mut seen = HashSet::new();
    for d in dests {
        if d.guid.is_empty() {
            return Err("destination guid must not be empty".to_owned());
        }
        if !is_service_name_suffix(&d.guid) {
            return Err(format!(
                "destination guid {:?} cannot name a Service (s-<guid> must be a DNS-1035 label: \
                 lowercase letters, digits and '-', at most 61 characters in the guid, ending in a letter or digit)",
                d.guid
            ));
        }
        if !seen.insert(d.guid.as_str()) {
            return Err(format!(
                "destination {} appears more than once; list each destination once",
                d.guid
            ));
        }
        if !(1..=65535).contains(&d.port) {
            return Err(format!(
                "port of destination {} must be between 1 and 65535, got {}",
                d.guid, d.port
            ));
        }
    }
    if let Some(unweighted) = dests.iter().find(|d| d.weight.is_none())
        && dests.iter().any(|d| d.weight.is_some())
    {
        return Err(format!(
            "weights must be set on all destinations or on none (destination {} has none)",
            unweighted.guid
        ));
    }
    let mut sum: i64 = 0;
    let mut weighted = false;
    for d in dests {
        if let Some(w) = d.weight {
            weighted = true;
            if w < 0 {
                return Err(format!(
                    "weight of destination {} must be >= 0, got {w}",
                    d.guid
                ));
            }
            sum = sum.saturating_add(w);
        }
    }
    if weighted && sum != 100 {
        return Err(format!("weights must sum to 100, got {sum}"));
    }
    Ok(())
}

/// The values a route with destinations writes into its VirtualService entry (the four CF headers) and
/// its Services (labels, selector). A route without destinations writes none of them.
///
/// Header values must pass Istio's `ValidateHTTPHeaderValue` ([`crate::istio`]). Beyond Istio, a `%` is
/// refused everywhere: Istio accepts `%%` and `%VARIABLE%` expressions, but Envoy then sends `%` or the
/// variable's value (e.g. the client's address for `%DOWNSTREAM_REMOTE_ADDRESS%`) instead of the value as
/// written, and a CF header must carry the app's guid, process type, space and org exactly. No guid
/// contains `%`, and Cloud Controller's process types are Procfile names.
///
/// Label values and selector keys/values must pass Kubernetes' label syntax ([`crate::labels`]): the API
/// server would refuse the Service. Guids, `web`, `worker` and every Procfile name up to 63 characters
/// that starts and ends with a letter or digit pass; the pods of a process carry the same labels, so a
/// process whose values fail could not run on Kubernetes either.
fn validate_written_values(route: &Route) -> Result<(), String> {
    let dests = &route.spec.destinations;
    if dests.is_empty() {
        return Ok(());
    }
    for d in dests {
        let service = service_name(&d.guid);
        let values = [
            (
                "app.guid",
                &d.app.guid,
                "CF-App-Id",
                APP_GUID_LABEL,
                "set it to the app's guid",
            ),
            (
                "app.process.type",
                &d.app.process.type_,
                "CF-App-Process-Type",
                PROCESS_TYPE_LABEL,
                "set it to the app's process type, e.g. web",
            ),
        ];
        for (field, value, header, label, fix) in values {
            if let Some(why) = header_value_problem(value) {
                return Err(format!(
                    "destination {}: {field} {value:?} cannot be the value of header {header}: {why}; {fix}",
                    d.guid
                ));
            }
            if let Err(why) = validate_label_value(value) {
                return Err(format!(
                    "destination {}: {field} {value:?} cannot be the value of label {label} on Service \
                     {service}: {why}; {fix}",
                    d.guid
                ));
            }
        }
        for (key, value) in &d.selector.match_labels {
            if let Err(why) = validate_label_key(key) {
                return Err(format!(
                    "destination {}: selector.matchLabels key {key:?} cannot be a label key in the \
                     selector of Service {service}: {why}; select the app's pods by their labels, e.g. \
                     {APP_GUID_LABEL}",
                    d.guid
                ));
            }
            if let Err(why) = validate_label_value(value) {
                return Err(format!(
                    "destination {}: selector.matchLabels value {value:?} of {key} cannot be a label \
                     value in the selector of Service {service}: {why}; use the value of that label on \
                     the app's pods",
                    d.guid
                ));
            }
        }
    }
    let name = route_name(route);
    if let Err(why) = validate_label_value(name) {
        return Err(format!(
            "route name {name:?} cannot be the value of label {ROUTE_GUID_LABEL} on its Services: {why}; \
             name the Route by its guid, as Cloud Controller does"
        ));
    }
    let labels = route.metadata.labels.as_ref();
    for (label, header) in [
        (SPACE_GUID_LABEL, "CF-Space-Id"),
        (ORG_GUID_LABEL, "CF-Organization-Id"),
    ] {
        if let Some(value) = labels.and_then(|l| l.get(label))
            && let Some(why) = header_value_problem(value)
        {
            return Err(format!(
                "label {label} {value:?} cannot be the value of header {header}: {why}; set the label \
                 to the guid"
            ));
        }
    }
    Ok(())
}

/// Why `value` cannot be sent as a CF header: Istio refuses it, or Envoy would not send it as written.
fn header_value_problem(value: &str) -> Option<String> {
    if let Err(e) = validate_http_header_value(value) {
        return Some(format!(
            "Istio refuses it ({e}), and the VirtualService is shared by every route of the FQDN"
        ));
    }
    if value.contains('%') {
        return Some(
            "Envoy would read its '%' as a %VARIABLE% or a %% escape and send something else"
                .to_owned(),
        );
    }
    None
}

/// `s-<guid>` is a DNS-1035 label: at most 63 characters, `[a-z0-9-]`, ending in a letter or digit
/// (it starts with `s`, so the guid may start with anything allowed).
fn is_service_name_suffix(guid: &str) -> bool {
    guid.len() <= 61
        && guid
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && guid
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

fn validate_fqdn(host: &str, domain: &str) -> Result<(), String> {
    if domain.is_empty() {
        return Err("domain name must not be empty".to_owned());
    }
    // The first label of the FQDN may be `*` (a wildcard route); nothing else may.
    let mut wildcard_allowed = true;
    if !host.is_empty() {
        check_labels("host", host, true)?;
        wildcard_allowed = false;
    }
    check_labels("domain", domain, wildcard_allowed)?;
    let len = if host.is_empty() {
        domain.len()
    } else {
        host.len() + 1 + domain.len()
    };
    if len > 253 {
        return Err(format!(
            "FQDN must be at most 253 characters, got {len}; shorten the host or domain"
        ));
    }
    Ok(())
}

fn check_labels(what: &str, name: &str, wildcard_first: bool) -> Result<(), String> {
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 && wildcard_first {
            continue;
        }
        if let Err(why) = check_label(label) {
            return Err(format!("{what} {name:?} is not a DNS name: {why}"));
        }
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err(
            "it has an empty label (two dots in a row, or a leading/trailing dot)".to_owned(),
        );
    }
    if label == "*" {
        return Err("only the first label of the FQDN may be \"*\"".to_owned());
    }
    if label.len() > 63 {
        return Err(format!(
            "label {label:?} is {} characters long, at most 63 are allowed",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        let hint = if c.is_ascii() {
            ""
        } else {
            "; write internationalised names in punycode (xn--...)"
        };
        return Err(format!(
            "label {label:?} contains {c:?}; only letters, digits and '-' are allowed{hint}"
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label {label:?} must not start or end with '-'"));
    }
    Ok(())
}
