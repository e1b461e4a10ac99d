//! The tables `cfnet demo` prints: Routes (URL, Ready, reason, message), Services (ports, selector) and
//! VirtualServices (hosts, gateway, path prefix → destination and weight) or, in gateway-api mode,
//! HTTPRoutes (hostnames, parent, path prefix → backend and weight). Deterministic: every list sorted by
//! namespace and name.

use cfnet_api::gateway_api::HTTPRoute;
use cfnet_api::{ConditionStatus, READY, Route, VirtualService};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;

/// What routes to the Services: the VirtualServices (Istio mode) or the HTTPRoutes (gateway-api mode).
pub enum Routing<'a> {
    VirtualServices(&'a mut [VirtualService]),
    HTTPRoutes(&'a mut [HTTPRoute]),
}

/// The three tables, deterministic: every list sorted by namespace and name.
pub fn tables(routes: &[Route], services: &mut [Service], routing: Routing<'_>) -> String {
    services.sort_by_key(|s| (s.namespace(), s.name_any()));
    let mut out = String::new();
    out.push_str(&format!("\nRoutes ({})\n", routes.len()));
    out.push_str(&routes_table(routes));
    out.push_str(&format!("\nServices ({})\n", services.len()));
    out.push_str(&services_table(services));
    match routing {
        Routing::VirtualServices(virtual_services) => {
            virtual_services.sort_by_key(|v| (v.namespace(), v.name_any()));
            out.push_str(&format!("\nVirtualServices ({})\n", virtual_services.len()));
            out.push_str(&virtual_services_table(virtual_services));
        }
        Routing::HTTPRoutes(http_routes) => {
            http_routes.sort_by_key(|v| (v.namespace(), v.name_any()));
            out.push_str(&format!("\nHTTPRoutes ({})\n", http_routes.len()));
            out.push_str(&http_routes_table(http_routes));
        }
    }
    out
}

fn http_routes_table(http_routes: &[HTTPRoute]) -> String {
    let mut rows = Vec::new();
    for hr in http_routes {
        let lines: Vec<String> = hr
            .spec
            .rules
            .iter()
            .map(|rule| {
                let path = rule
                    .matches
                    .first()
                    .and_then(|m| m.path.as_ref()?.value.clone())
                    .unwrap_or_else(|| "/".to_string());
                let backends = rule
                    .backend_refs
                    .iter()
                    .map(|b| format!("{} {}", b.name, b.weight.unwrap_or(1)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{path} -> {backends}")
            })
            .collect();
        let parents = hr
            .spec
            .parent_refs
            .iter()
            .map(|p| match &p.namespace {
                Some(ns) => format!("{ns}/{}", p.name),
                None => p.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut lines = lines.into_iter();
        rows.push(vec![
            hr.namespace().unwrap_or_default(),
            hr.name_any(),
            hr.spec.hostnames.join(","),
            parents,
            lines.next().unwrap_or_default(),
        ]);
        rows.extend(lines.map(continuation_row));
    }
    table(
        &[
            "NAMESPACE",
            "NAME",
            "HOSTNAMES",
            "PARENTS",
            "RULES (PATH PREFIX -> BACKEND WEIGHT)",
        ],
        &rows,
    )
}

fn routes_table(routes: &[Route]) -> String {
    let rows = routes
        .iter()
        .map(|r| {
            let ready = r
                .status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY));
            let status = match ready.map(|c| c.status) {
                Some(ConditionStatus::True) => "True",
                Some(ConditionStatus::False) => "False",
                Some(ConditionStatus::Unknown) => "Unknown",
                None => "-",
            };
            vec![
                r.namespace().unwrap_or_default(),
                r.name_any(),
                r.spec.url.clone(),
                status.to_string(),
                ready.and_then(|c| c.reason.clone()).unwrap_or_default(),
                ready.and_then(|c| c.message.clone()).unwrap_or_default(),
            ]
        })
        .collect::<Vec<_>>();
    table(
        &["NAMESPACE", "NAME", "URL", "READY", "REASON", "MESSAGE"],
        &rows,
    )
}

fn services_table(services: &[Service]) -> String {
    let rows = services
        .iter()
        .map(|s| {
            let spec = s.spec.as_ref();
            let ports = spec
                .and_then(|sp| sp.ports.as_ref())
                .map(|ports| {
                    ports
                        .iter()
                        .map(|p| {
                            format!(
                                "{}{}/{}",
                                p.name
                                    .as_deref()
                                    .map(|n| format!("{n}:"))
                                    .unwrap_or_default(),
                                p.port,
                                p.protocol.as_deref().unwrap_or("TCP")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            let selector = spec
                .and_then(|sp| sp.selector.as_ref())
                .map(|sel| {
                    sel.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                s.namespace().unwrap_or_default(),
                s.name_any(),
                ports,
                selector,
            ]
        })
        .collect::<Vec<_>>();
    table(&["NAMESPACE", "NAME", "PORTS", "SELECTOR"], &rows)
}

/// One row per VirtualService, continued by one row per further http route (ROUTES column only).
fn virtual_services_table(virtual_services: &[VirtualService]) -> String {
    let mut rows = Vec::new();
    for vs in virtual_services {
        let http_routes: Vec<String> = vs
            .spec
            .http
            .iter()
            .map(|h| {
                let prefix = h
                    .match_
                    .iter()
                    .filter_map(|m| m.uri.as_ref()?.prefix.clone())
                    .collect::<Vec<_>>();
                let matched = if prefix.is_empty() {
                    "(any path)".to_string()
                } else {
                    prefix.join(",")
                };
                let destinations = h
                    .route
                    .iter()
                    .map(|d| {
                        if d.weight == 0 {
                            d.destination.host.clone()
                        } else {
                            format!("{} {}", d.destination.host, d.weight)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{matched} -> {destinations}")
            })
            .collect();
        let mut first = vec![
            vs.namespace().unwrap_or_default(),
            vs.name_any(),
            vs.spec.hosts.join(","),
            vs.spec.gateways.join(","),
        ];
        let mut http_routes = http_routes.into_iter();
        first.push(http_routes.next().unwrap_or_default());
        rows.push(first);
        rows.extend(http_routes.map(continuation_row));
    }
    table(
        &[
            "NAMESPACE",
            "NAME",
            "HOSTS",
            "GATEWAYS",
            "ROUTES (PATH PREFIX -> HOST WEIGHT)",
        ],
        &rows,
    )
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i + 1 < widths.len() {
                text.push_str(cell);
                let pad = widths[i] - cell.chars().count() + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            } else {
                text.push_str(cell);
            }
        }
        let mut text = text.trim_end().to_string();
        text.push('\n');
        text
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A row that continues the one above it in its last (fifth) column.
fn continuation_row(more: String) -> Vec<String> {
    let mut row = vec![String::new(); 4];
    row.push(more);
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_leave_the_last_unpadded() {
        let rows = vec![
            vec!["ns".to_string(), "a-long-name".to_string(), "x".to_string()],
            vec!["namespace".to_string(), "b".to_string(), String::new()],
        ];
        assert_eq!(
            table(&["NAMESPACE", "NAME", "LAST"], &rows),
            "NAMESPACE  NAME         LAST\n\
             ns         a-long-name  x\n\
             namespace  b\n"
        );
    }
}
