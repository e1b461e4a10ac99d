//! The proof: what istiod serves the CF ingress gateway and a workloads sidecar matches, route for route, what
//! the Routes must become ([`crate::model`]). Pure: the configurations are fetched by the caller.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use cfnet_api::Route;
use cfnet_xds::view::{self, IstioClusterName, PathView, RouteView};
use cfnet_xds::{Proxy, ProxyConfig};

use crate::generator::{APP_DOMAIN, INTERNAL_DOMAIN, NAMESPACE, OTHER_DOMAIN};
use crate::model::{Cluster, Expected, Fqdn, Outcome, Target};

/// The gateway's HTTP server (port 80, listener on the Service's targetPort 8080).
pub const GATEWAY_HTTP: &str = "http.8080";
/// The gateway's HTTPS server for the app domains (`https-workloads` of Gateway cf-system/istio-ingressgateway).
pub const GATEWAY_HTTPS: &str = "https.443.https-workloads.istio-ingressgateway.cf-system";
/// A sidecar's route configuration for outbound port 80: `http://<internal fqdn>` is a port-80 request.
pub const SIDECAR_HTTP: &str = "80";
/// istiod's cluster host for the placeholder destination `no-destinations` in the workloads namespace.
pub const PLACEHOLDER_HOST: &str = "no-destinations.cf-workloads.svc.cluster.local";

/// The CF ingress gateway (namespace istio-system, label `istio: ingressgateway`).
pub fn gateway() -> Proxy {
    Proxy::default()
}

/// An app's sidecar in the workloads namespace.
pub fn sidecar() -> Proxy {
    Proxy::sidecar(
        NAMESPACE,
        [(
            "cloudfoundry.org/app_guid".to_owned(),
            "envoy-proof".to_owned(),
        )],
    )
}

/// What the proof saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Envoy routes checked (one per route configuration).
    pub envoy_routes: usize,
    /// (route configuration, FQDN, prefix) of every route to the `no-destinations` placeholder.
    pub placeholders: BTreeSet<(String, String, String)>,
}

/// One Envoy route as compared: its prefix and where it sends requests. A single destination's headers
/// (istiod puts them on the route) are moved onto its cluster, so both shapes compare alike; `single` says
/// which shape it was.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Actual {
    prefix: String,
    target: Target,
}

fn actual(row: &RouteView) -> Result<Actual, String> {
    let PathView::Prefix(prefix) = &row.route_match.path else {
        return Err(format!("not a prefix match: {:?}", row.route_match));
    };
    let placeholder = row
        .clusters
        .iter()
        .any(|c| IstioClusterName::parse(&c.name).is_some_and(|n| n.host == PLACEHOLDER_HOST));
    let target = if placeholder {
        if row.clusters.len() != 1 || !row.request_headers_to_add.is_empty() {
            return Err(format!("a placeholder route with more: {row:?}"));
        }
        Target::Placeholder
    } else {
        let single = !row.request_headers_to_add.is_empty();
        Target::Clusters {
            single,
            clusters: row
                .clusters
                .iter()
                .map(|c| {
                    let mut headers = c.request_headers_to_add.clone();
                    headers.extend(row.request_headers_to_add.clone());
                    Cluster {
                        name: c.name.clone(),
                        weight: c.weight,
                        headers,
                    }
                })
                .collect(),
        }
    };
    Ok(Actual {
        prefix: prefix.clone(),
        target,
    })
}

/// The route configurations an FQDN must be in: (proxy, route configuration).
fn route_configs(f: &Fqdn) -> Vec<(&'static str, &'static str)> {
    if f.internal {
        vec![("sidecar", SIDECAR_HTTP)]
    } else if f.https {
        vec![("gateway", GATEWAY_HTTP), ("gateway", GATEWAY_HTTPS)]
    } else {
        vec![("gateway", GATEWAY_HTTP)]
    }
}

/// Whether a virtual host domain is one of the domains the Routes use (not the chart's system domain).
fn ours(domain: &str) -> bool {
    [APP_DOMAIN, INTERNAL_DOMAIN, OTHER_DOMAIN]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

/// Envoy rows by route configuration and first domain, for the virtual hosts of our domains.
fn rows_by_fqdn(config: &ProxyConfig, rc: &str) -> BTreeMap<String, Vec<RouteView>> {
    let mut out: BTreeMap<String, Vec<RouteView>> = BTreeMap::new();
    let Some(route_config) = config.route_configs.get(rc) else {
        return out;
    };
    for row in view::route::route_config_routes(route_config) {
        if let Some(d) = row.domains.iter().find(|d| ours(d)) {
            out.entry(d.clone()).or_default().push(row);
        }
    }
    out
}

fn describe_routes(routes: &[&Route], expected: &Expected) -> String {
    let mut s = String::new();
    for r in routes {
        let name = r.metadata.name.as_deref().unwrap_or("");
        let dests: Vec<String> = r
            .spec
            .destinations
            .iter()
            .map(|d| {
                format!(
                    "{}:{} w={:?} {}/{}",
                    d.guid, d.port, d.weight, d.app.guid, d.app.process.type_
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "    Route {name} url={} dests=[{}] → {:?}",
            r.spec.url,
            dests.join(", "),
            expected.routes.get(name)
        );
    }
    s
}

fn describe_expected(f: &Fqdn) -> String {
    let mut s = String::new();
    for e in &f.entries {
        let _ = writeln!(
            s,
            "    prefix {:<6} {:?} (routes {:?})",
            e.prefix, e.target, e.routes
        );
    }
    s
}

/// Checks both configurations against the expectation; `Err` is a readable report of every difference.
/// `vs_prefixes`: the http prefixes of each VirtualService in the API server, by host.
pub fn check(
    routes: &[Route],
    expected: &Expected,
    vs_prefixes: &BTreeMap<String, Vec<String>>,
    gateway: &ProxyConfig,
    sidecar: &ProxyConfig,
) -> Result<Seen, String> {
    let mut by_rc = BTreeMap::new();
    for (proxy, rc) in [
        ("gateway", GATEWAY_HTTP),
        ("gateway", GATEWAY_HTTPS),
        ("sidecar", SIDECAR_HTTP),
    ] {
        let config = if proxy == "gateway" { gateway } else { sidecar };
        by_rc.insert((proxy, rc), rows_by_fqdn(config, rc));
    }
    let proof = Proof {
        routes,
        expected,
        gateway,
        sidecar,
        by_rc,
    };
    let mut seen = Seen::default();
    let mut failures: Vec<String> = Vec::new();
    for (fqdn, f) in &expected.fqdns {
        failures.extend(proof.check_fqdn(fqdn, f, vs_prefixes.get(fqdn), &mut seen));
    }
    failures.extend(proof.extra_virtual_hosts());
    failures.extend(proof.clusters_of_routes_not_ready());
    let want_placeholders = proof.expected_placeholders();
    if seen.placeholders != want_placeholders {
        failures.push(format!(
            "placeholder routes (route config, FQDN, prefix): {:?}, expected {want_placeholders:?}",
            seen.placeholders
        ));
    }
    if failures.is_empty() {
        Ok(seen)
    } else {
        Err(failures.join("\n"))
    }
}

/// What [`check`] compares: the Routes, the expectation, both proxies' configurations and their rows by
/// (proxy, route configuration) and FQDN.
struct Proof<'a> {
    routes: &'a [Route],
    expected: &'a Expected,
    gateway: &'a ProxyConfig,
    sidecar: &'a ProxyConfig,
    by_rc: BTreeMap<(&'static str, &'static str), BTreeMap<String, Vec<RouteView>>>,
}

impl Proof<'_> {
    fn config(&self, proxy: &str) -> &ProxyConfig {
        if proxy == "gateway" {
            self.gateway
        } else {
            self.sidecar
        }
    }

    fn group(&self, fqdn: &str) -> Vec<&Route> {
        self.routes
            .iter()
            .filter(|r| r.spec.fqdn() == fqdn)
            .collect()
    }

    /// One FQDN: the VirtualService's order, and in each route configuration that should serve it one
    /// virtual host with exactly the expected routes and clusters that exist.
    fn check_fqdn(
        &self,
        fqdn: &str,
        f: &Fqdn,
        vs_prefixes: Option<&Vec<String>>,
        seen: &mut Seen,
    ) -> Option<String> {
        let want: Vec<Actual> = f
            .entries
            .iter()
            .map(|e| Actual {
                prefix: e.prefix.clone(),
                target: e.target.clone(),
            })
            .collect();
        let want_prefixes: Vec<String> = want.iter().map(|a| a.prefix.clone()).collect();
        let mut problems: Vec<String> = Vec::new();
        if vs_prefixes != Some(&want_prefixes) {
            problems.push(format!(
                "VirtualService order: {vs_prefixes:?}, expected {want_prefixes:?}"
            ));
        }
        let mut tables = String::new();
        for (proxy, rc) in route_configs(f) {
            let rows = self.by_rc[&(proxy, rc)]
                .get(fqdn)
                .cloned()
                .unwrap_or_default();
            tables.push_str(&rows_text(proxy, rc, &rows));
            self.check_rows(fqdn, (proxy, rc), &rows, &want, &mut problems, seen);
        }
        if !f.https && !f.internal && self.by_rc[&("gateway", GATEWAY_HTTPS)].contains_key(fqdn) {
            problems.push(format!(
                "gateway {GATEWAY_HTTPS}: {fqdn} is not an app domain FQDN"
            ));
        }
        if problems.is_empty() {
            return None;
        }
        Some(format!(
            "FQDN {fqdn}:\n  - {}\n{}  expected (in order):\n{}{tables}",
            problems.join("\n  - "),
            describe_routes(&self.group(fqdn), self.expected),
            describe_expected(f),
        ))
    }

    /// The rows of one FQDN in one route configuration: one virtual host, its domains, the expected routes,
    /// and every cluster they name in CDS (the placeholder only as the placeholder, noted in `seen`).
    fn check_rows(
        &self,
        fqdn: &str,
        (proxy, rc): (&str, &str),
        rows: &[RouteView],
        want: &[Actual],
        problems: &mut Vec<String>,
        seen: &mut Seen,
    ) {
        let vhosts: BTreeSet<&str> = rows.iter().map(|r| r.virtual_host.as_str()).collect();
        if vhosts.is_empty() {
            problems.push(format!("{proxy} {rc}: no virtual host for {fqdn}"));
            return;
        }
        if vhosts.len() != 1 {
            problems.push(format!(
                "{proxy} {rc}: virtual hosts {vhosts:?}, expected one"
            ));
        }
        if let Some(row) = rows.iter().find(|r| r.domains != [fqdn.to_owned()]) {
            problems.push(format!(
                "{proxy} {rc}: domains {:?}, expected [{fqdn}]",
                row.domains
            ));
        }
        match rows
            .iter()
            .map(actual)
            .collect::<Result<Vec<Actual>, String>>()
        {
            Err(e) => problems.push(format!("{proxy} {rc}: {e}")),
            Ok(got) if got != want => problems.push(format!(
                "{proxy} {rc}: Envoy routes differ from the expected ones"
            )),
            Ok(_) => {}
        }
        let cfg = self.config(proxy);
        for row in rows {
            seen.envoy_routes += 1;
            for c in &row.clusters {
                let is_placeholder =
                    IstioClusterName::parse(&c.name).is_some_and(|n| n.host == PLACEHOLDER_HOST);
                match (cfg.clusters.contains_key(&c.name), is_placeholder) {
                    (true, false) => {}
                    (false, true) => {
                        if let PathView::Prefix(p) = &row.route_match.path {
                            seen.placeholders
                                .insert((rc.to_owned(), fqdn.to_owned(), p.clone()));
                        }
                    }
                    (false, false) => {
                        problems.push(format!("{proxy} {rc}: cluster {} is not in CDS", c.name))
                    }
                    (true, true) => problems.push(format!(
                        "{proxy} {rc}: the placeholder {} exists as a cluster",
                        c.name
                    )),
                }
            }
        }
    }

    /// No other virtual host of our domains: nothing of a deleted Route or one that is not Ready.
    fn extra_virtual_hosts(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for ((proxy, rc), fqdns) in &self.by_rc {
            for (fqdn, rows) in fqdns {
                let expected_here = self
                    .expected
                    .fqdns
                    .get(fqdn)
                    .is_some_and(|f| route_configs(f).contains(&(*proxy, *rc)));
                if !expected_here {
                    failures.push(format!(
                        "{proxy} {rc} has a virtual host for {fqdn}, which must have none:\n{}{}",
                        describe_routes(&self.group(fqdn), self.expected),
                        view::routes_table(rows)
                    ));
                }
            }
        }
        failures
    }

    /// A Route that is not Ready has no Service, so no cluster either.
    fn clusters_of_routes_not_ready(&self) -> Vec<String> {
        let mut failures = Vec::new();
        for r in self.routes {
            let name = r.metadata.name.as_deref().unwrap_or("");
            if self.expected.routes.get(name).is_some_and(Outcome::ready) {
                continue;
            }
            for d in &r.spec.destinations {
                let host = format!("s-{}.{NAMESPACE}.svc.cluster.local", d.guid);
                for (proxy, cfg) in [("gateway", self.gateway), ("sidecar", self.sidecar)] {
                    if let Some(c) = cfg
                        .clusters
                        .keys()
                        .find(|c| IstioClusterName::parse(c).is_some_and(|n| n.host == host))
                    {
                        failures.push(format!(
                            "{proxy} has cluster {c} of Route {name}, which is {:?}",
                            self.expected.routes.get(name)
                        ));
                    }
                }
            }
        }
        failures
    }

    /// (route configuration, FQDN, prefix) of every expected route to the placeholder.
    fn expected_placeholders(&self) -> BTreeSet<(String, String, String)> {
        self.expected
            .fqdns
            .iter()
            .flat_map(|(fqdn, f)| {
                route_configs(f).into_iter().flat_map(move |(_, rc)| {
                    f.entries
                        .iter()
                        .filter(|e| e.target == Target::Placeholder)
                        .map(move |e| (rc.to_owned(), fqdn.clone(), e.prefix.clone()))
                })
            })
            .collect()
    }
}

/// The rows of one route configuration as the failure report shows them.
fn rows_text(proxy: &str, rc: &str, rows: &[RouteView]) -> String {
    let mut text = format!(
        "  Envoy rows in {proxy} {rc}:\n{}",
        if rows.is_empty() {
            "    (no virtual host)\n".to_owned()
        } else {
            view::routes_table(rows)
        }
    );
    for row in rows {
        let _ = match actual(row) {
            Ok(a) => writeln!(text, "    prefix {:<6} {:?}", a.prefix, a.target),
            Err(e) => writeln!(text, "    {e}"),
        };
    }
    text
}
