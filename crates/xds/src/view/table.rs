//! Plain-text tables of the views, one table for the whole proxy (the model is `istioctl proxy-config`).

use super::cluster::ClusterView;
use super::listener::ListenerView;
use super::route::{MatchView, PathView, RouteView};

/// Columns separated by three spaces, each as wide as its widest cell; no trailing spaces.
fn render(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(&cell);
            if i < last {
                let width = widths.get(i).copied().unwrap_or_default();
                let pad = width.saturating_sub(cell.chars().count()) + 3;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// `prefix /api`, `path /x (any case)`, `regex ^/v[0-9]+`, plus header conditions.
pub fn match_text(m: &MatchView) -> String {
    let mut s = match &m.path {
        PathView::Prefix(p) => format!("prefix {p}"),
        PathView::Path(p) => format!("path {p}"),
        PathView::SafeRegex(r) => format!("regex {r}"),
        PathView::PathSeparatedPrefix(p) => format!("path_separated_prefix {p}"),
        PathView::PathMatchPolicy(name) => format!("policy {name}"),
        PathView::ConnectMatcher(_) => "CONNECT".to_owned(),
        PathView::Unspecified(_) => "-".to_owned(),
    };
    if !m.case_sensitive {
        s.push_str(" (any case)");
    }
    for h in &m.headers {
        s.push_str(&format!(" header:{h}"));
    }
    for q in &m.query_parameters {
        s.push_str(&format!(" query:{q}"));
    }
    for c in &m.conditions {
        s.push_str(&format!(" {c}"));
    }
    s
}

/// Where the route goes: `cluster` (weight 100 omitted), `a 80%, b 20%`, `404` or `redirect 301 host`.
fn action_text(r: &RouteView) -> String {
    if let Some(d) = &r.direct_response {
        return format!("direct {}", d.status);
    }
    if let Some(rd) = &r.redirect {
        return format!("redirect {} {}{}", rd.status, rd.host, rd.path)
            .trim_end()
            .to_owned();
    }
    match r.clusters.as_slice() {
        [] => "-".to_owned(),
        [one] if one.weight == 100 => one.name.clone(),
        many => many
            .iter()
            .map(|c| format!("{} {}", c.name, c.weight))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Domains, the first one and how many more (virtual hosts of istiod list each host with and without `:*`).
fn domains_text(domains: &[String]) -> String {
    match domains {
        [] => "-".to_owned(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} +{}", rest.len()),
    }
}

pub fn routes_table(routes: &[RouteView]) -> String {
    let rows = routes
        .iter()
        .map(|r| {
            vec![
                r.route_config.clone(),
                r.virtual_host.clone(),
                domains_text(&r.domains),
                match_text(&r.route_match),
                action_text(r),
                r.virtual_service.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    render(
        &[
            "ROUTE CONFIG",
            "VIRTUAL HOST",
            "DOMAINS",
            "MATCH",
            "CLUSTERS",
            "VIRTUAL SERVICE",
        ],
        rows,
    )
}

pub fn clusters_table(clusters: &[ClusterView]) -> String {
    let count = |n: Option<u32>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let rows = clusters
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.discovery_type.clone(),
                count(c.endpoints),
                count(c.healthy_endpoints),
            ]
        })
        .collect();
    render(&["CLUSTER", "TYPE", "ENDPOINTS", "HEALTHY"], rows)
}

pub fn listeners_table(listeners: &[ListenerView]) -> String {
    let rows = listeners
        .iter()
        .map(|l| {
            let routes = if l.route_configs.is_empty() {
                "-".to_owned()
            } else {
                l.route_configs.join(", ")
            };
            vec![
                l.name.clone(),
                l.address.clone(),
                l.filter_chains.len().to_string(),
                routes,
            ]
        })
        .collect();
    render(&["LISTENER", "ADDRESS", "CHAINS", "ROUTE CONFIGS"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProxyConfig;
    use crate::testing::*;
    use crate::view::{clusters, listeners, routes};
    use std::sync::Arc;

    fn sample() -> ProxyConfig {
        let cf = [("CF-App-Id", "a1")];
        let rc = catnip_http_8080(&cf, &cf, path_match(route_match_prefix("/"), Some(false)));
        let eds = cluster_eds("outbound|8080||s-a.apps.svc.cluster.local");
        ProxyConfig {
            listeners: [hcm_listener("0.0.0.0_8080", 8080, &["http.8080"])]
                .into_iter()
                .map(|l| (l.name.clone(), Arc::new(l)))
                .collect(),
            route_configs: [(rc.name.clone(), Arc::new(rc))].into(),
            clusters: [eds.clone(), cluster_static("BlackHoleCluster", 0)]
                .into_iter()
                .map(|c| (c.name.clone(), Arc::new(c)))
                .collect(),
            endpoints: [(
                eds.name.clone(),
                Arc::new(load_assignment(&eds.name, &[1, 2])),
            )]
            .into(),
            ..ProxyConfig::default()
        }
    }

    fn route_match_prefix(
        p: &str,
    ) -> envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier {
        envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier::Prefix(p.into())
    }

    #[test]
    fn tables() {
        let config = sample();
        assert_eq!(
            routes_table(&routes(&config)),
            "\
ROUTE CONFIG   VIRTUAL HOST                 DOMAINS                      MATCH                 CLUSTERS                                                                                     VIRTUAL SERVICE
http.8080      catnip.apps.example.com:80   catnip.apps.example.com +1   prefix /api           outbound|8080||s-a.apps.svc.cluster.local 80, outbound|8080||s-b.apps.svc.cluster.local 20   -
http.8080      catnip.apps.example.com:80   catnip.apps.example.com +1   prefix / (any case)   outbound|8080||s-a.apps.svc.cluster.local                                                    -
"
        );
        assert_eq!(
            clusters_table(&clusters(&config)),
            "\
CLUSTER                                     TYPE     ENDPOINTS   HEALTHY
BlackHoleCluster                            STATIC   0           0
outbound|8080||s-a.apps.svc.cluster.local   EDS      2           1
"
        );
        assert_eq!(
            listeners_table(&listeners(&config)),
            "\
LISTENER       ADDRESS        CHAINS   ROUTE CONFIGS
0.0.0.0_8080   0.0.0.0:8080   1        http.8080
"
        );
    }
}
