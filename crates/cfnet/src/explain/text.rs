//! The text form of a report: the sections in the order of the report, aligned tables, no trailing spaces.

use std::fmt::Write as _;

use super::report::{Report, RouteRef};

/// Columns separated by three spaces, each as wide as its widest cell, indented by two.
fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for cells in std::iter::once(header).chain(rows) {
        let mut line = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            line.push_str(cell);
            let width = widths.get(i).copied().unwrap_or_default();
            let pad = width.saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad + 3));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn or_dash(s: Option<&str>) -> String {
    s.filter(|s| !s.is_empty()).unwrap_or("-").to_owned()
}

fn route_text(r: Option<&RouteRef>) -> String {
    r.map_or_else(|| "-".to_owned(), ToString::to_string)
}

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, report);
    out
}

fn write_report(out: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(out, "URL    {}", r.url)?;
    writeln!(
        out,
        "FQDN   {} ({}), path {}",
        r.fqdn,
        if r.internal {
            "internal: served to sidecars on the mesh gateway"
        } else {
            "external: served on the ingress gateway"
        },
        r.path
    )?;
    write_routes(out, r)?;
    write_virtual_service(out, r)?;
    write_destinations(out, r)?;
    write_envoy(out, r)?;
    write_problems(out, r)
}

fn write_routes(out: &mut String, r: &Report) -> std::fmt::Result {
    writeln!(out, "\nRoutes claiming {} ({})", r.fqdn, r.routes.len())?;
    if r.routes.is_empty() {
        writeln!(out, "  none")?;
    } else {
        let rows = r
            .routes
            .iter()
            .map(|row| {
                vec![
                    row.namespace.clone(),
                    row.name.clone(),
                    row.url.clone(),
                    if row.ready { "True" } else { "False" }.to_owned(),
                    or_dash(row.reason.as_deref()),
                    or_dash(row.message.as_deref()),
                ]
            })
            .collect();
        out.push_str(&table(
            &["NAMESPACE", "NAME", "URL", "READY", "REASON", "MESSAGE"],
            rows,
        ));
    }
    Ok(())
}

fn write_virtual_service(out: &mut String, r: &Report) -> std::fmt::Result {
    match &r.virtual_service {
        None => writeln!(out, "\nVirtualService: none")?,
        Some(vs) => {
            writeln!(out, "\nVirtualService {vs} (first match wins)")?;
            let mut taken = false;
            let rows = r
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let request = if e.matches && !taken {
                        taken = true;
                        "takes the request".to_owned()
                    } else if e.matches {
                        "would match too".to_owned()
                    } else {
                        "-".to_owned()
                    };
                    let request = match e.shadowed_by {
                        Some(j) => format!("{request} (shadowed by #{j})"),
                        None => request,
                    };
                    vec![
                        i.to_string(),
                        e.prefix.clone(),
                        route_text(e.route.as_ref()),
                        e.destinations
                            .iter()
                            .map(|d| format!("{} {}", d.host, d.weight))
                            .collect::<Vec<_>>()
                            .join(", "),
                        request,
                    ]
                })
                .collect();
            out.push_str(&table(
                &[
                    "#",
                    "PREFIX",
                    "ROUTE",
                    "DESTINATIONS (WEIGHT)",
                    "THIS REQUEST",
                ],
                rows,
            ));
        }
    }
    writeln!(out, "Matched route: {}", route_text(r.matched.as_ref()))?;
    writeln!(
        out,
        "Cloud Foundry's pick (longest path prefix): {}",
        route_text(r.cf_route.as_ref())
    )?;
    Ok(())
}

fn write_destinations(out: &mut String, r: &Report) -> std::fmt::Result {
    if let Some(route) = r.matched.as_ref().or(r.cf_route.as_ref()) {
        writeln!(out, "\nDestinations of route {route}")?;
        if r.destinations.is_empty() {
            writeln!(out, "  none")?;
        } else {
            let rows = r
                .destinations
                .iter()
                .map(|d| {
                    let selector: Vec<String> =
                        d.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![
                        d.service.clone(),
                        d.weight.to_string(),
                        d.port.to_string(),
                        d.app.clone(),
                        if selector.is_empty() {
                            "-".to_owned()
                        } else {
                            selector.join(",")
                        },
                        if d.exists {
                            d.endpoints.to_string()
                        } else {
                            "no Service".to_owned()
                        },
                    ]
                })
                .collect();
            out.push_str(&table(
                &[
                    "SERVICE",
                    "WEIGHT",
                    "PORT",
                    "APP",
                    "SELECTOR",
                    "READY ENDPOINTS",
                ],
                rows,
            ));
        }
    }
    Ok(())
}

fn write_envoy(out: &mut String, r: &Report) -> std::fmt::Result {
    match &r.envoy {
        None => writeln!(out, "\nEnvoy: not checked")?,
        Some(e) => {
            writeln!(out, "\nEnvoy of {}", e.proxy)?;
            writeln!(
                out,
                "  route configuration   {}",
                or_dash(e.route_config.as_deref())
            )?;
            let vhost = match &e.virtual_host {
                Some(v) => format!("{v} (domains {})", e.domains.join(", ")),
                None => "none for this host".to_owned(),
            };
            writeln!(out, "  virtual host          {vhost}")?;
            let route = match (&e.route_match, &e.from_virtual_service) {
                (Some(m), Some(vs)) => format!("{m} (from VirtualService {vs})"),
                (Some(m), None) => m.clone(),
                (None, _) => "none for this path".to_owned(),
            };
            writeln!(out, "  route                 {route}")?;
            if let Some(https) = &e.https {
                let text = match (&https.route_config, https.bound) {
                    (Some(rc), true) => format!(
                        "{rc}, virtual host {}",
                        or_dash(https.virtual_host.as_deref())
                    ),
                    (Some(rc), false) => format!("{rc} has no virtual host for this host"),
                    (None, _) => "no HTTPS server for this host".to_owned(),
                };
                writeln!(out, "  HTTPS                 {text}")?;
            }
            if !e.clusters.is_empty() {
                let rows = e
                    .clusters
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.weight.to_string(),
                            if c.exists { "yes" } else { "no" }.to_owned(),
                            c.endpoints
                                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                        ]
                    })
                    .collect();
                out.push_str(&table(&["CLUSTER", "WEIGHT", "EXISTS", "ENDPOINTS"], rows));
            }
        }
    }
    Ok(())
}

fn write_problems(out: &mut String, r: &Report) -> std::fmt::Result {
    if !r.notes.is_empty() {
        writeln!(out, "\nNotes")?;
        for note in &r.notes {
            writeln!(out, "  {note}")?;
        }
    }
    if r.problems.is_empty() {
        writeln!(out, "\nProblems: none")?;
    } else {
        writeln!(out, "\nProblems")?;
        for p in &r.problems {
            let mark = if p.blocking {
                ""
            } else {
                " (does not stop this request)"
            };
            writeln!(out, "  {}{mark}: {}", p.code, p.message)?;
        }
    }
    let verdict = if r.exit_code() == 0 {
        "the request reaches an app"
    } else {
        "the request does not reach its app"
    };
    writeln!(out, "\nResult: {verdict} (exit {})", r.exit_code())
}
