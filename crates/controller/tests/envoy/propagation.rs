//! Route write → istiod serves the change to the gateway, measured through a kept-open xDS subscription.

use std::time::Duration;

use cfnet_api::{Route, fixtures};
use cfnet_xds::view::{self, RouteView};
use cfnet_xds::{ProxyConfig, Subscription};

use crate::generator::{APP_DOMAIN, NAMESPACE, guid};
use crate::proof::{self, GATEWAY_HTTP};
use crate::rig::{Rig, T};

/// One change and what the gateway must show once istiod has it.
#[derive(Clone, Debug)]
enum Change {
    Add,
    Path,
    Weights,
    Delete,
}

fn route(name: &str, host: &str, path: &str, weights: [i64; 2]) -> Route {
    let app = guid(&format!("propagation-app-{host}"));
    (0..2)
        .fold(
            fixtures::route(name)
                .namespace(NAMESPACE)
                .host(host)
                .domain(APP_DOMAIN, false)
                .path(path)
                .label(cfnet_api::ROUTE_GUID_LABEL, name)
                .space_and_org(&guid("propagation-space"), &guid("propagation-org")),
            |r, d| {
                r.destination(
                    fixtures::destination(&guid(&format!("propagation-dest-{host}-{d}")), &app)
                        .weight(weights[d]),
                )
            },
        )
        .build()
}

/// The gateway's HTTP routes of one FQDN.
fn rows(config: &ProxyConfig, fqdn: &str) -> Vec<RouteView> {
    config
        .route_configs
        .get(GATEWAY_HTTP)
        .map(|rc| view::route::route_config_routes(rc))
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.domains.iter().any(|d| d == fqdn))
        .collect()
}

/// Served: the FQDN has exactly one route, with this prefix and these weights, and its clusters are in CDS.
fn serves(config: &ProxyConfig, fqdn: &str, prefix: &str, weights: [u32; 2]) -> bool {
    let rows = rows(config, fqdn);
    let [row] = rows.as_slice() else {
        return false;
    };
    row.route_match.path == view::PathView::Prefix(prefix.to_owned())
        && row.clusters.iter().map(|c| c.weight).eq(weights)
        && row
            .clusters
            .iter()
            .all(|c| config.clusters.contains_key(&c.name))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Makes `changes` one-at-a-time changes and returns each one's time from the Route write to the push that
/// made istiod serve it, with a description.
pub async fn measure(rig: &Rig, changes: usize) -> Vec<(String, Duration)> {
    let mut sub = Subscription::start(&rig.xds(), &proof::gateway(), T)
        .await
        .unwrap_or_else(|e| panic!("gateway subscription: {e}"));
    let cycle = [Change::Add, Change::Path, Change::Weights, Change::Delete];
    let mut out = Vec::with_capacity(changes);
    for i in 0..changes {
        let k = i / cycle.len();
        let change = &cycle[i % cycle.len()];
        let name = guid(&format!("propagation-route-{k}"));
        let host = format!("p{k}");
        let fqdn = format!("{host}.{APP_DOMAIN}");
        let (what, write_at) = match change {
            Change::Add => {
                let at = tokio::time::Instant::now();
                rig.apply(&route(&name, &host, "/a", [50, 50])).await;
                (format!("add {fqdn}/a 50/50"), at)
            }
            Change::Path => {
                let at = tokio::time::Instant::now();
                rig.apply(&route(&name, &host, "/b", [50, 50])).await;
                (format!("path {fqdn} /a → /b"), at)
            }
            Change::Weights => {
                let at = tokio::time::Instant::now();
                rig.apply(&route(&name, &host, "/b", [80, 20])).await;
                (format!("weights {fqdn}/b 50/50 → 80/20"), at)
            }
            Change::Delete => {
                let at = tokio::time::Instant::now();
                rig.delete(&name).await;
                (format!("delete {fqdn}"), at)
            }
        };
        let update = sub
            .wait_for(&what, T, |config| match change {
                Change::Add => serves(config, &fqdn, "/a", [50, 50]),
                Change::Path => serves(config, &fqdn, "/b", [50, 50]),
                Change::Weights => serves(config, &fqdn, "/b", [80, 20]),
                Change::Delete => rows(config, &fqdn).is_empty(),
            })
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let took = update.at.saturating_duration_since(write_at);
        eprintln!(
            "propagation {:>2}/{changes} {what:<45} {:>7.1} ms (push #{} {})",
            i + 1,
            took.as_secs_f64() * 1000.0,
            update.seq,
            update.received.kind.short()
        );
        out.push((what, took));
    }
    out
}

/// `p50 … p95 … max …` over the measured times, then the p50 of each kind of change.
pub fn summary(times: &[(String, Duration)]) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let sorted = |kind: Option<&str>| {
        let mut v: Vec<Duration> = times
            .iter()
            .filter(|(what, _)| kind.is_none_or(|k| what.starts_with(k)))
            .map(|(_, d)| *d)
            .collect();
        v.sort();
        v
    };
    let all = sorted(None);
    let kinds: Vec<String> = ["add", "path", "weights", "delete"]
        .iter()
        .map(|k| format!("{k} {:.0}", ms(percentile(&sorted(Some(k)), 0.50))))
        .collect();
    format!(
        "Route write → istiod serves it to the gateway, {} changes: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms \
         (p50 by kind, ms: {})",
        all.len(),
        ms(percentile(&all, 0.50)),
        ms(percentile(&all, 0.95)),
        ms(all[all.len() - 1]),
        kinds.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d: Vec<Duration> = (1..=20).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(10));
        assert_eq!(percentile(&d, 0.95), Duration::from_millis(19));
        assert_eq!(percentile(&d[..1], 0.95), Duration::from_millis(1));
    }
}
