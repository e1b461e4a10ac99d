//! The rules of the Gateway API CRD (`sigs.k8s.io/gateway-api` v1.6.3, schema and CEL) for the fields cfnet
//! writes into an HTTPRoute: the path of a `PathPrefix` match (a route whose path fails is Invalid in both
//! modes) and the whole spec (for tests; the integration test in crates/testenv holds the same objects
//! against the real CRD).

use cfnet_api::gateway_api::{
    HTTPBackendRef, HTTPHeaderFilter, HTTPRouteSpec, PATH_PREFIX, REQUEST_HEADER_MODIFIER,
};

use super::{MAX_BACKENDS, MAX_RULES};
use crate::labels::{is_dns1123_label, is_dns1123_subdomain};

/// Why Gateway API refuses `path` as the value of a `PathPrefix` match: the CEL rules of `HTTPPathMatch`
/// and its `maxLength`. A route whose path fails is Invalid in both modes (check 1), so that the mode
/// never decides which routes are programmed; most such paths never match in Istio either (Envoy
/// normalizes `/./` and `/../` away and drops the fragment after `#`).
pub fn path_prefix_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("must start with '/'".to_owned());
    }
    if path.len() > 1024 {
        return Some(format!(
            "is {} characters long, at most 1024 are allowed",
            path.len()
        ));
    }
    for part in ["//", "/./", "/../", "%2f", "%2F", "#"] {
        if path.contains(part) {
            return Some(format!("must not contain {part:?}"));
        }
    }
    for end in ["/..", "/."] {
        if path.ends_with(end) {
            return Some(format!("must not end with {end:?}"));
        }
    }
    // ^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return Some(
                    "has a '%' that does not start a percent-encoding (%XX, two hex digits)"
                        .to_owned(),
                );
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-/._~!$&'()*+,;=:@".contains(&b)) {
            let c = path[i..].chars().next().unwrap_or('?');
            return Some(format!(
                "contains {c:?}; only letters, digits, -/._~!$&'()*+,;=:@ and percent-encodings \
                 (%XX) are allowed"
            ));
        }
        i += 1;
    }
    None
}

/// The rules of the Gateway API CRD (schema and CEL) for the fields cfnet writes into an HTTPRoute's spec;
/// `Err` lists every failure. For tests: the integration test in crates/testenv holds the same objects
/// against the real CRD on an API server.
pub fn validate_http_route(spec: &HTTPRouteSpec) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    if spec.parent_refs.len() > 32 {
        errs.push(format!("{} parentRefs, at most 32", spec.parent_refs.len()));
    }
    for p in &spec.parent_refs {
        if p.name.is_empty() || p.name.len() > 253 {
            errs.push(format!(
                "parentRef name {:?} must be 1-253 characters",
                p.name
            ));
        }
        if let Some(ns) = &p.namespace
            && !is_dns1123_label(ns)
        {
            errs.push(format!("parentRef namespace {ns:?} must be a DNS label"));
        }
    }
    if spec.hostnames.len() > 16 {
        errs.push(format!("{} hostnames, at most 16", spec.hostnames.len()));
    }
    for h in &spec.hostnames {
        let name = h.strip_prefix("*.").unwrap_or(h);
        if h.is_empty() || h.len() > 253 || !is_dns1123_subdomain(name) {
            errs.push(format!(
                "hostname {h:?} must be a lower-case DNS name, optionally with a leading \"*.\""
            ));
        }
    }
    if spec.rules.is_empty() || spec.rules.len() > MAX_RULES {
        errs.push(format!(
            "{} rules, 1 to {MAX_RULES} allowed",
            spec.rules.len()
        ));
    }
    let matches: usize = spec.rules.iter().map(|r| r.matches.len()).sum();
    if matches > 128 {
        errs.push(format!("{matches} matches in all rules, at most 128"));
    }
    for rule in &spec.rules {
        if rule.matches.len() > 64 {
            errs.push(format!(
                "{} matches in a rule, at most 64",
                rule.matches.len()
            ));
        }
        for path in rule.matches.iter().filter_map(|m| m.path.as_ref()) {
            let type_ = path.type_.as_deref().unwrap_or(PATH_PREFIX);
            let value = path.value.as_deref().unwrap_or("/");
            match type_ {
                "PathPrefix" | "Exact" => {
                    if let Some(why) = path_prefix_problem(value) {
                        errs.push(format!("path {value:?} {why}"));
                    }
                }
                "RegularExpression" => {}
                other => errs.push(format!("unknown path match type {other:?}")),
            }
        }
        if rule.backend_refs.len() > MAX_BACKENDS {
            errs.push(format!(
                "{} backendRefs, at most 16",
                rule.backend_refs.len()
            ));
        }
        for b in &rule.backend_refs {
            validate_backend_ref(b, &mut errs);
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn validate_backend_ref(b: &HTTPBackendRef, errs: &mut Vec<String>) {
    if b.name.is_empty() || b.name.len() > 253 {
        errs.push(format!(
            "backendRef name {:?} must be 1-253 characters",
            b.name
        ));
    }
    let service = b.group.as_deref().unwrap_or("").is_empty()
        && b.kind.as_deref().unwrap_or("Service") == "Service";
    if service && b.port.is_none() {
        errs.push(format!(
            "backendRef {}: Must have port for Service reference",
            b.name
        ));
    }
    if let Some(port) = b.port
        && !(1..=65535).contains(&port)
    {
        errs.push(format!("backendRef {}: port {port} not in 1-65535", b.name));
    }
    if let Some(w) = b.weight
        && !(0..=1_000_000).contains(&w)
    {
        errs.push(format!(
            "backendRef {}: weight {w} not in 0-1000000",
            b.name
        ));
    }
    validate_backend_filters(b, errs);
}

/// The CRD's rules for a backendRef's filters and its RequestHeaderModifier.
fn validate_backend_filters(b: &HTTPBackendRef, errs: &mut Vec<String>) {
    if b.filters.len() > 16 {
        errs.push(format!(
            "backendRef {}: {} filters, at most 16",
            b.name,
            b.filters.len()
        ));
    }
    let modifiers = b
        .filters
        .iter()
        .filter(|f| f.type_ == REQUEST_HEADER_MODIFIER)
        .count();
    if modifiers > 1 {
        errs.push(format!(
            "backendRef {}: RequestHeaderModifier filter cannot be repeated",
            b.name
        ));
    }
    for f in &b.filters {
        let is_modifier = f.type_ == REQUEST_HEADER_MODIFIER;
        if is_modifier != f.request_header_modifier.is_some() {
            errs.push(format!(
                "backendRef {}: filter.requestHeaderModifier must be set exactly for type \
                 RequestHeaderModifier (type {:?})",
                b.name, f.type_
            ));
        }
        if let Some(m) = &f.request_header_modifier {
            validate_header_modifier(&b.name, m, errs);
        }
    }
}

/// A RequestHeaderModifier's lists: sizes, duplicates, header names and values.
fn validate_header_modifier(backend: &str, m: &HTTPHeaderFilter, errs: &mut Vec<String>) {
    if m.set.len() > 16 || m.remove.len() > 16 {
        errs.push(format!(
            "backendRef {}: at most 16 headers to set and to remove",
            backend
        ));
    }
    let mut names = std::collections::HashSet::new();
    for h in &m.set {
        if !names.insert(h.name.as_str()) {
            errs.push(format!(
                "backendRef {}: header {} set twice",
                backend, h.name
            ));
        }
        if !is_header_name(&h.name) {
            errs.push(format!(
                "backendRef {}: invalid header name {:?}",
                backend, h.name
            ));
        }
        if h.value.is_empty() || h.value.len() > 4096 {
            errs.push(format!(
                "backendRef {}: value of header {} must be 1-4096 characters, got {:?}",
                backend, h.name, h.value
            ));
        }
    }
    let mut removed = std::collections::HashSet::new();
    for name in &m.remove {
        if !removed.insert(name.as_str()) {
            errs.push(format!(
                "backendRef {}: header {name} removed twice",
                backend
            ));
        }
    }
}

/// `^[A-Za-z0-9!#$%&'*+\-.^_\x60|~]+$`, at most 256 characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 256
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_prefix_rules_of_the_crd() {
        for ok in [
            "/",
            "/a",
            "/a/",
            "/api/v2",
            "/caf%C3%A9",
            "/a-b_c.d~e!f$g&h'i(j)k*l+m,n;o=p:q@r",
            "/.well-known",
            "/a..b",
        ] {
            assert_eq!(path_prefix_problem(ok), None, "{ok:?}");
        }
        for (bad, why) in [
            ("a", "must start with '/'"),
            ("/a//b", "must not contain \"//\""),
            ("/a/./b", "must not contain \"/./\""),
            ("/a/../b", "must not contain \"/../\""),
            ("/a%2fb", "must not contain \"%2f\""),
            ("/a%2Fb", "must not contain \"%2F\""),
            ("/a#b", "must not contain \"#\""),
            ("/a/..", "must not end with \"/..\""),
            ("/a/.", "must not end with \"/.\""),
            ("/.", "must not end with \"/.\""),
            ("/a%zz", "has a '%'"),
            ("/a%4", "has a '%'"),
            ("/a b", "contains ' '"),
            ("/é", "contains 'é'"),
            ("/a?b", "contains '?'"),
            ("/a\"b", "contains '\"'"),
        ] {
            let got = path_prefix_problem(bad).unwrap_or_default();
            assert!(got.starts_with(why), "{bad:?}: {got}");
        }
        assert!(path_prefix_problem(&format!("/{}", "a".repeat(1024))).is_some());
        assert_eq!(path_prefix_problem(&format!("/{}", "a".repeat(1023))), None);
    }
}
