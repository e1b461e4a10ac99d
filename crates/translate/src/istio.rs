//! Istio's validation of the VirtualService fields cfnet fills from a Route, ported from
//! `istio.io/istio` `pkg/config/validation` (the snapshot in the Go module cache,
//! `v0.0.0-20260827124520-eed52ebb66ad`). istiod's validating webhook refuses a whole VirtualService when
//! one value fails, and one VirtualService serves every route of an FQDN: a route whose values would fail
//! must be stopped before it reaches that shared object (see `validate.rs`).
//!
//! The route checks (`validate.rs`) use the value rules; [`validate_virtual_service`] runs every rule of
//! Istio's `ValidateVirtualService` that can concern the fields cfnet writes, so that tests can hold each
//! VirtualService cfnet produces against it. What cannot fail for a route that passed its checks: header
//! names are the four constant `CF-*` names (`ValidateHTTPHeaderWithAuthorityOperationName`); destination
//! hosts are `s-<guid>` with the guid a DNS-1035 label, or `no-destinations` (`validateDestination`);
//! ports are 1–65535 (`validatePortSelector`); weights sum to 100 (`validateHTTPRouteDestinations`); a
//! `uri.prefix` is free text (`validateHTTPRouteMatchRequest` checks only `regex` matches: "uri allows
//! empty prefix match").

use std::net::IpAddr;

use cfnet_api::VirtualServiceSpec;

/// The rules of Istio's `ValidateVirtualService` (validation.go) for the fields cfnet writes: `hosts`,
/// `gateways`, and per `http` entry its destinations (host, port, weight, request headers set). `Err`
/// lists every failure, as istiod's webhook would.
pub fn validate_virtual_service(spec: &VirtualServiceSpec) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    // A VirtualService without gateways applies to mesh; with gateways, to mesh only when `mesh` is one
    // of them (`isGateway`).
    let mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == "mesh");
    for gateway in &spec.gateways {
        if let Err(e) = validate_gateway_name(gateway) {
            errs.push(e);
        }
    }
    if spec.hosts.is_empty() {
        errs.push("cfnet writes no delegate VirtualService: hosts must not be empty".to_owned());
    }
    for host in &spec.hosts {
        if let Err(e) = validate_virtual_service_host(host, mesh) {
            errs.push(e);
        }
    }
    if spec.http.is_empty() {
        errs.push("http, tcp or tls must be provided in virtual service".to_owned());
    }
    for http in &spec.http {
        // validateHTTPRouteConflict
        if http.route.is_empty() {
            errs.push("HTTP route, redirect or direct_response is required".to_owned());
        }
        // validateHTTPRouteDestinations
        let mut total: i64 = 0;
        for d in &http.route {
            let set = d.headers.iter().filter_map(|h| h.request.as_ref());
            for (name, value) in set.flat_map(|r| r.set.iter()) {
                if let Err(e) = validate_http_header_with_authority_operation_name(name) {
                    errs.push(e);
                }
                if let Err(e) = validate_http_header_value(value) {
                    errs.push(format!("header {name}: {e}"));
                }
            }
            // validateDestination
            let host = &d.destination.host;
            if host == "*" {
                errs.push(format!("invalid destination host {host}"));
            } else if let Err(e) = validate_wildcard_domain(host) {
                errs.push(e);
            }
            if let Some(port) = d.destination.port
                && !(1..=65535).contains(&port.number)
            {
                errs.push(format!(
                    "port number {} must be in the range 1..65535",
                    port.number
                ));
            }
            if d.weight < 0 {
                errs.push(format!("weight {} < 0", d.weight));
            }
            total += i64::from(d.weight);
        }
        if http.route.len() > 1 && total == 0 {
            errs.push("total destination weight = 0".to_owned());
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

/// `validateGatewayNames`: `namespace/name` with both DNS-1123 labels, or a name that passes
/// `ValidateFQDN` (such as `mesh`).
fn validate_gateway_name(gateway: &str) -> Result<(), String> {
    match gateway.split_once('/') {
        Some((namespace, name)) => {
            if namespace.is_empty() || name.is_empty() {
                return Err("config namespace and gateway name cannot be empty".to_owned());
            }
            if !is_dns1123_label(namespace) {
                return Err(format!("invalid value for namespace: {namespace:?}"));
            }
            if !is_dns1123_label(name) {
                return Err(format!("invalid value for gateway name: {name:?}"));
            }
            Ok(())
        }
        None => {
            // ValidateFQDN = CheckDNS1123Preconditions + ValidateDNS1123Labels
            if gateway.is_empty() || gateway.len() > 255 {
                return Err(format!("invalid gateway name {gateway:?}"));
            }
            validate_dns1123_labels(gateway)
        }
    }
}

/// `ValidateHTTPHeaderWithAuthorityOperationName`: not empty, and no `:` prefix unless `:authority`
/// (`host` is allowed here: it is the authority).
fn validate_http_header_with_authority_operation_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("header name cannot be empty".to_owned());
    }
    if name.starts_with(':') && !name.eq_ignore_ascii_case(":authority") {
        return Err(format!(
            "invalid header {name:?}: header cannot have \":\" prefix"
        ));
    }
    Ok(())
}

/// Why Istio's `ValidateHTTPHeaderValue` refuses a header value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderValueError {
    /// `httpHeaderValueRegexp` (`^[^\x00-\x08\x0A-\x1F\x7F]*$`): a control character other than tab.
    ControlCharacter(char),
    /// `validateHeaderValue`, Istio's port of Envoy's header formatter parser: the text of its error,
    /// without the value.
    Formatter(&'static str),
}

impl std::fmt::Display for HeaderValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderValueError::ControlCharacter(c) => {
                write!(
                    f,
                    "header value configuration is invalid: control character {c:?}"
                )
            }
            HeaderValueError::Formatter(why) => write!(f, "header value configuration: {why}"),
        }
    }
}

/// `ValidateHTTPHeaderValue` (validation.go): no control character but tab, and `%` only as `%%` or
/// around a `%VARIABLE%` / `%VARIABLE(args)%` expression, which Envoy substitutes.
pub fn validate_http_header_value(value: &str) -> Result<(), HeaderValueError> {
    if let Some(c) = value
        .chars()
        .find(|c| matches!(*c, '\u{0}'..='\u{8}' | '\u{a}'..='\u{1f}' | '\u{7f}'))
    {
        return Err(HeaderValueError::ControlCharacter(c));
    }
    validate_header_value(value).map_err(HeaderValueError::Formatter)
}

/// States of `validateHeaderValue` (header_value_validator.go), named as there.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ParserState {
    Literal,
    VariableName,
    ExpectArray,
    ExpectString,
    String,
    ExpectArrayDelimiterOrEnd,
    ExpectArgsEnd,
    ExpectVariableEnd,
}

/// `validateHeaderValue` (header_value_validator.go), byte for byte: Istio's port of Envoy's
/// `HeaderParser` (`source/common/router/header_parser.cc`).
fn validate_header_value(value: &str) -> Result<(), &'static str> {
    let bytes = value.as_bytes();
    let mut state = ParserState::Literal;
    let mut pos = 0;
    while let Some(&ch) = bytes.get(pos) {
        let (next, skip) = header_parser_step(state, ch, bytes.get(pos + 1).copied())?;
        state = next;
        pos += 1 + skip;
    }
    if state != ParserState::Literal {
        return Err("invalid header configuration. Un-terminated variable expression");
    }
    Ok(())
}

/// One byte of `validateHeaderValue`'s loop: the next state, and how many following bytes it consumes
/// (an escaped `%%` or a backslash escape).
fn header_parser_step(
    state: ParserState,
    ch: u8,
    next: Option<u8>,
) -> Result<(ParserState, usize), &'static str> {
    use ParserState as S;
    let to = |s: S| Ok((s, 0));
    match state {
        S::Literal => match (ch, next) {
            (b'%', None) => Err("invalid header configuration. Un-escaped %"),
            // `%%`: an escaped `%`.
            (b'%', Some(b'%')) => Ok((S::Literal, 1)),
            (b'%', Some(_)) => to(S::VariableName),
            _ => to(S::Literal),
        },
        S::VariableName => match ch {
            b'%' => to(S::Literal),
            b'(' => to(S::ExpectArray),
            _ => to(S::VariableName),
        },
        S::ExpectArray => match ch {
            b'[' => to(S::ExpectString),
            b' ' => to(S::ExpectArray),
            _ => to(S::String),
        },
        S::ExpectArrayDelimiterOrEnd => match ch {
            b',' => to(S::ExpectString),
            b']' => to(S::ExpectArgsEnd),
            b' ' => to(state),
            _ => Err("invalid header configuration. Expecting ',', ']', or whitespace"),
        },
        S::ExpectString => match ch {
            b'"' => to(S::String),
            b' ' => to(state),
            _ => Err("invalid header configuration. Expecting '\"'"),
        },
        S::String => match (ch, next) {
            (b'\\', None) => {
                Err("invalid header configuration. Un-terminated backslash in JSON string")
            }
            (b'\\', Some(_)) => Ok((S::String, 1)),
            (b')', _) => to(S::ExpectVariableEnd),
            (b'"', _) => to(S::ExpectArrayDelimiterOrEnd),
            _ => to(S::String),
        },
        S::ExpectArgsEnd => match ch {
            b')' => to(S::ExpectVariableEnd),
            b' ' => to(state),
            _ => Err("invalid header configuration. Expecting ')' or whitespace"),
        },
        S::ExpectVariableEnd => match ch {
            b'%' => to(S::Literal),
            b' ' => to(state),
            _ => Err("invalid header configuration. Expecting '%' or whitespace after"),
        },
    }
}

/// The host checks of `ValidateVirtualService` (validation.go) for one host of a VirtualService bound to
/// the ingress Gateway (`mesh == false`: `ValidateWildcardDomainForVirtualServiceBoundToGateway`, which
/// without SNI is `ValidateWildcardDomain`) or to `mesh` (`ValidateWildcardDomain`, and `*` alone is
/// refused). A host that fails the domain rules is still accepted when it is an IP address
/// (`netutil.IsValidIPAddress`).
pub fn validate_virtual_service_host(host: &str, mesh: bool) -> Result<(), String> {
    if let Err(e) = validate_wildcard_domain(host) {
        if host.parse::<IpAddr>().is_ok() {
            return Ok(());
        }
        return Err(e);
    }
    if mesh && host == "*" {
        return Err(
            "wildcard host * is not allowed for virtual services bound to the mesh gateway"
                .to_owned(),
        );
    }
    Ok(())
}

/// `ValidateWildcardDomain` (agent/validation.go): 1–255 characters; the first label may be a wildcard
/// label, the rest must pass `ValidateDNS1123Labels`.
fn validate_wildcard_domain(domain: &str) -> Result<(), String> {
    // CheckDNS1123Preconditions
    if domain.len() > 255 {
        return Err(format!("domain name {domain:?} too long (max 255)"));
    }
    if domain.is_empty() {
        return Err("empty domain name not allowed".to_owned());
    }
    let (first, rest) = match domain.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (domain, None),
    };
    if !is_wildcard_dns1123_label(first) {
        return Err(format!(
            "domain name {domain:?} invalid (label {first:?} invalid)"
        ));
    }
    match rest {
        Some(rest) => validate_dns1123_labels(rest),
        None => Ok(()),
    }
}

/// `ValidateDNS1123Labels` (agent/validation.go): the top-level label is not all digits, every label is a
/// DNS-1123 label, and the last may be empty (a trailing dot).
fn validate_dns1123_labels(domain: &str) -> Result<(), String> {
    let labels: Vec<&str> = domain.split('.').collect();
    let tld = labels[labels.len() - 1];
    // Go's strconv.Atoi: an optional sign, then decimal digits.
    let digits = tld.strip_prefix(['+', '-']).unwrap_or(tld);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "domain name {domain:?} invalid (top level domain {tld:?} cannot be all-numeric)"
        ));
    }
    for (i, label) in labels.iter().enumerate() {
        if i == labels.len() - 1 && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!(
                "domain name {domain:?} invalid (label {label:?} invalid)"
            ));
        }
    }
    Ok(())
}

/// `labels.IsDNS1123Label`: at most 63 of `[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?`.
fn is_dns1123_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
}

/// `labels.IsWildcardDNS1123Label`: at most 63 of `(\*|(\*|\*-)?<DNS-1123 label>)`.
fn is_wildcard_dns1123_label(label: &str) -> bool {
    label.len() <= 63
        && (label == "*"
            || is_dns1123_label(label)
            || label.strip_prefix('*').is_some_and(is_dns1123_label)
            || label.strip_prefix("*-").is_some_and(is_dns1123_label))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Istio's `TestValidateHTTPHeaderValue` cases, and the edges of each parser state.
    #[test]
    fn header_values_as_istio_validates_them() {
        let ok = [
            "",
            "foo",
            "%HOSTNAME%",
            "100%%",
            "prefix %HOSTNAME% suffix",
            "%DOWNSTREAM_PEER_CERT_V_END(%b %d %H:%M:%S %Y %Z)%",
            "%DYNAMIC_METADATA(com.test.my_filter)%",
            "%DOWNSTREAM_REMOTE_ADDRESS%",
            "%UPSTREAM_METADATA([\"a\", \"b\"])%",
            "%VAR( [ \"a\" ] ) %",
            "tab\tis allowed",
            "ünïcödé",
            "web",
            "3f5d1d6a-2c1c-4a59-a0c2-8c7c1e0e7d0b",
        ];
        for v in ok {
            assert_eq!(validate_http_header_value(v), Ok(()), "{v:?}");
        }
        let formatter = |why| Err(HeaderValueError::Formatter(why));
        let cases = [
            (
                "%START_TIME%%",
                formatter("invalid header configuration. Un-escaped %"),
            ),
            (
                "50%",
                formatter("invalid header configuration. Un-escaped %"),
            ),
            (
                "abc%123",
                formatter("invalid header configuration. Un-terminated variable expression"),
            ),
            (
                "app%zz",
                formatter("invalid header configuration. Un-terminated variable expression"),
            ),
            (
                "%VAR(",
                formatter("invalid header configuration. Un-terminated variable expression"),
            ),
            (
                "%VAR([x])%",
                formatter("invalid header configuration. Expecting '\"'"),
            ),
            (
                "%VAR([\"a\" x])%",
                formatter("invalid header configuration. Expecting ',', ']', or whitespace"),
            ),
            (
                "%VAR([\"a\"] x)%",
                formatter("invalid header configuration. Expecting ')' or whitespace"),
            ),
            (
                "%VAR(a) x%",
                formatter("invalid header configuration. Expecting '%' or whitespace after"),
            ),
            (
                "%VAR(a\\",
                formatter("invalid header configuration. Un-terminated backslash in JSON string"),
            ),
            ("web\n", Err(HeaderValueError::ControlCharacter('\n'))),
            ("a\rb", Err(HeaderValueError::ControlCharacter('\r'))),
            ("\u{0}", Err(HeaderValueError::ControlCharacter('\u{0}'))),
            (
                "del\u{7f}",
                Err(HeaderValueError::ControlCharacter('\u{7f}')),
            ),
        ];
        for (v, expected) in cases {
            assert_eq!(validate_http_header_value(v), expected, "{v:?}");
        }
    }

    #[test]
    fn virtual_service_hosts_as_istio_validates_them() {
        // (host, valid on a gateway, valid on mesh)
        let cases = [
            ("app.apps.example.com", true, true),
            ("App.Apps.Example.COM", true, true),
            ("*.apps.example.com", true, true),
            ("*", true, false),
            ("*app.example.com", true, true),
            ("*-app.example.com", true, true),
            ("istio.io.", true, true),
            ("app.example.123", false, false),
            ("app.example.-123", false, false),
            // A single label is only checked as a (wildcard) label: no top-level-domain rule.
            ("123", true, true),
            ("123.example.com", true, true),
            ("10.0.0.1", true, true),
            ("010.0.0.1", false, false),
            ("::1", true, true),
            ("a..b", false, false),
            ("a_b.example.com", false, false),
            ("-a.example.com", false, false),
            ("", false, false),
        ];
        for (host, gateway, mesh) in cases {
            assert_eq!(
                validate_virtual_service_host(host, false).is_ok(),
                gateway,
                "{host:?} on a gateway: {:?}",
                validate_virtual_service_host(host, false)
            );
            assert_eq!(
                validate_virtual_service_host(host, true).is_ok(),
                mesh,
                "{host:?} on mesh: {:?}",
                validate_virtual_service_host(host, true)
            );
        }
        let long = format!("{}.com", "a.".repeat(126));
        assert!(long.len() > 255);
        assert!(validate_virtual_service_host(&long, false).is_err());
        let label = format!("{}.com", "a".repeat(64));
        assert!(validate_virtual_service_host(&label, false).is_err());
    }

    #[test]
    fn virtual_services_as_istio_validates_them() {
        use cfnet_api::{
            Destination, HTTPRoute, HTTPRouteDestination, HeaderOperations, Headers, PortSelector,
        };
        use std::collections::BTreeMap;
        let spec = |host: &str, gateway: &str, app: &str, port: Option<u32>| VirtualServiceSpec {
            hosts: vec![host.to_owned()],
            gateways: vec![gateway.to_owned()],
            http: vec![HTTPRoute {
                match_: vec![],
                route: vec![HTTPRouteDestination {
                    destination: Destination {
                        host: "s-dest".to_owned(),
                        port: port.map(|number| PortSelector { number }),
                    },
                    weight: 100,
                    headers: Some(Headers {
                        request: Some(HeaderOperations {
                            set: BTreeMap::from([("CF-App-Id".to_owned(), app.to_owned())]),
                        }),
                    }),
                }],
            }],
        };
        let gateway = "cf-system/istio-ingressgateway";
        assert_eq!(
            validate_virtual_service(&spec("a.example.com", gateway, "app", None)),
            Ok(())
        );
        assert_eq!(
            validate_virtual_service(&spec("a.apps.internal", "mesh", "app", Some(8080))),
            Ok(())
        );
        assert_eq!(
            validate_virtual_service(&spec("*", gateway, "app", None)),
            Ok(())
        );
        let failures = [
            spec("*", "mesh", "app", Some(8080)),
            spec("a.example.com", gateway, "app%zz", None),
            spec("a.example.com", gateway, "web\n", None),
            spec("a.example.123", gateway, "app", None),
            spec("a.example.com", "bad_ns/gw", "app", None),
            spec("a.apps.internal", "mesh", "app", Some(0)),
            spec("a.apps.internal", "mesh", "app", Some(65536)),
        ];
        for s in failures {
            assert!(validate_virtual_service(&s).is_err(), "{s:?}");
        }
        let mut empty = spec("a.example.com", gateway, "app", None);
        empty.http.clear();
        assert!(validate_virtual_service(&empty).is_err());
        let mut zero = spec("a.example.com", gateway, "app", None);
        zero.http[0].route[0].weight = 0;
        let second = zero.http[0].route[0].clone();
        zero.http[0].route.push(second);
        assert_eq!(
            validate_virtual_service(&zero),
            Err(vec!["total destination weight = 0".to_owned()])
        );
    }
}
