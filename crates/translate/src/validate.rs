//! Checks of one Route on its own (no siblings, no claims). A route that fails one is left out of its
//! VirtualService and reported with `Reason::Invalid`; the message says what to fix.
//!
//! Host and domain: ASCII DNS labels (letters of either case, digits, `-`; 1–63 characters; no `-` at
//! either end), the whole FQDN at most 253 characters; only the first label of the FQDN may be `*`.
//! Unicode must be written in its punycode (`xn--`) form and `_` is refused: Istio rejects both in
//! VirtualService hosts. Case is kept as written (the FQDN, like upstream's, is case-sensitive).

use std::collections::HashSet;

use cfnet_api::Route;

/// Checks a route on its own. `Err` carries the message for the route's problem.
pub fn validate_route(route: &Route) -> Result<(), String> {
    let spec = &route.spec;
    validate_fqdn(&spec.host, &spec.domain.name)?;

    let path = spec.path();
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!(
            "path {path:?} must start with \"/\" (or be empty for the whole host)"
        ));
    }
    let fqdn = spec.fqdn();
    if spec.url.len() != fqdn.len() + path.len()
        || !spec.url.starts_with(&fqdn)
        || !spec.url.ends_with(path)
    {
        return Err(format!(
            "url {:?} must be host.domain + path, i.e. {:?}",
            spec.url,
            format!("{fqdn}{path}")
        ));
    }
    validate_destinations(route)
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
