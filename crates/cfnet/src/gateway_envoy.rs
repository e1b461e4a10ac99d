//! The CF ingress gateway's Envoy configuration for `cfnet demo --istiod` and `cfnet dev up --istiod`: istiod
//! next to the demo's control plane with the chart's Istio objects (the Gateway `cf-system/istio-ingressgateway`
//! and the ingress gateway Service, without which istiod gives the gateway no listener); waiting until istiod
//! serves the gateway its listeners (dev up) or every programmed example route (the demo, which then prints the
//! gateway's Envoy routes, the `cfnet proxy-config routes` table).

use std::collections::BTreeSet;
use std::time::Duration;

use cfnet_api::{ConditionStatus, READY, Route};
use cfnet_testenv::{ControlPlane, Istiod, IstiodOptions};
use cfnet_xds::view::{self, PathView};
use cfnet_xds::{Proxy, ProxyConfig, Subscription};

/// Starts istiod (building pilot-discovery first when it is missing) and applies the chart's Istio objects.
pub async fn start(cp: &ControlPlane) -> Result<Istiod, String> {
    if cfnet_testenv::locate_istiod().is_err() {
        eprintln!(
            "cfnet demo: istiod (pilot-discovery) not installed: building it into {} first (10-20 minutes on \
             the first run, then cached)",
            cfnet_testenv::cache_bin_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the cache directory".into())
        );
    }
    let istiod = Istiod::start(cp, IstiodOptions::default())
        .await
        .map_err(|e| {
            format!(
                "could not start istiod: {e}\n(build it by hand with `cfnet dev install`; pass --state-dir DIR \
                 to keep its log)"
            )
        })?;
    let applied = cfnet_testenv::chart::apply_chart_istio_objects(cp, &[])
        .await
        .map_err(|e| format!("applying the chart's Istio objects for istiod: {e}"))?;
    eprintln!(
        "cfnet demo: istiod {} ready in {:.1} s, xDS at {}; applied the chart's {} Istio objects (Gateway, \
         ingress gateway Service, Sidecar, …)",
        istiod.version(),
        istiod.startup_duration().as_secs_f64(),
        istiod.xds_addr(),
        applied.len()
    );
    Ok(istiod)
}

/// (FQDN, path prefix) of every Route the ingress gateway must route: Ready, external, with destinations (a
/// Route without destinations is left out of its VirtualService; an internal one is a sidecar's).
pub fn expected_gateway_routes(routes: &[Route]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .filter(|r| !r.spec.domain.internal && !r.spec.destinations.is_empty())
        .filter(|r| {
            r.status.as_ref().is_some_and(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.status == ConditionStatus::True)
            })
        })
        .map(|r| {
            let path = r.spec.path.clone().filter(|p| !p.is_empty());
            (r.spec.fqdn(), path.unwrap_or_else(|| "/".to_owned()))
        })
        .collect()
}

/// `fqdn/path` of the expected routes that no route configuration of `config` routes to a cluster yet: a
/// virtual host with the FQDN among its domains and a route with that prefix.
pub fn missing(config: &ProxyConfig, expected: &BTreeSet<(String, String)>) -> Vec<String> {
    let rows = view::routes(config);
    expected
        .iter()
        .filter(|(fqdn, path)| {
            !rows.iter().any(|r| {
                r.domains.iter().any(|d| d == fqdn)
                    && r.route_match.path == PathView::Prefix(path.clone())
                    && !r.clusters.is_empty()
            })
        })
        .map(|(fqdn, path)| format!("{fqdn}{path}"))
        .collect()
}

/// Waits until istiod serves the CF ingress gateway every expected route; returns that configuration.
pub async fn wait_for_gateway(
    xds: &str,
    expected: &BTreeSet<(String, String)>,
    timeout: Duration,
) -> Result<ProxyConfig, String> {
    let proxy = Proxy::default();
    let mut subscription = Subscription::start(xds, &proxy, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let what = format!("routes {} example route(s)", expected.len());
    match subscription
        .wait_for(&what, timeout, |config| {
            missing(config, expected).is_empty()
        })
        .await
    {
        Ok(update) => Ok(update.config.clone()),
        Err(e) => Err(format!(
            "{e}; still missing in the gateway's Envoy routes: {} (istiod's log says why; pass a longer \
             --ready-timeout)",
            missing(subscription.config(), expected).join(", ")
        )),
    }
}

/// Waits until istiod serves the CF ingress gateway at least one listener (istiod computes it shortly after
/// the chart's Gateway and Service are written).
pub async fn wait_for_gateway_listeners(xds: &str, timeout: Duration) -> Result<(), String> {
    let mut subscription = Subscription::start(xds, &Proxy::default(), timeout)
        .await
        .map_err(|e| e.to_string())?;
    subscription
        .wait_for("has a listener", timeout, |config| {
            !config.listeners.is_empty()
        })
        .await
        .map(drop)
        .map_err(|e| {
            format!("{e}; the chart's Gateway and ingress gateway Service should give it one")
        })
}

/// The table printed after the Routes, Services and VirtualServices.
pub fn gateway_routes_table(config: &ProxyConfig, xds: &str) -> String {
    let routes = view::routes(config);
    format!(
        "\nEnvoy routes of the ingress gateway ({}; istiod at {xds}, proxy {}; `cfnet proxy-config routes --xds \
         {xds}`)\n{}",
        routes.len(),
        Proxy::default(),
        view::routes_table(&routes)
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use cfnet_api::fixtures;

    fn ready(mut route: Route, status: &str) -> Route {
        route.status = serde_json::from_value(serde_json::json!(
            {"conditions": [{"type": "Ready", "status": status, "reason": "Programmed"}]}
        ))
        .unwrap();
        route
    }

    #[test]
    fn expected_routes_are_the_ready_external_ones_with_destinations() {
        let with_dest =
            |name: &str| fixtures::route(name).destination(fixtures::destination("d", "app"));
        let routes = vec![
            ready(with_dest("root").host("Shop").build(), "True"),
            ready(with_dest("api").host("shop").path("/api").build(), "True"),
            ready(with_dest("invalid").host("bad").build(), "False"),
            ready(fixtures::route("empty").host("empty").build(), "True"),
            ready(
                with_dest("internal")
                    .host("be")
                    .domain("apps.internal", true)
                    .build(),
                "True",
            ),
            with_dest("pending").host("pending").build(),
        ];
        let got: Vec<(String, String)> = expected_gateway_routes(&routes).into_iter().collect();
        let domain = fixtures::DOMAIN;
        assert_eq!(
            got,
            vec![
                (format!("shop.{domain}"), "/".to_owned()),
                (format!("shop.{domain}"), "/api".to_owned()),
            ]
        );
    }

    #[test]
    fn missing_names_what_the_gateway_does_not_route() {
        // What istiod served the CF ingress gateway for the examples (crates/xds/tests/fixtures/README.md).
        let config =
            ProxyConfig::decode(include_bytes!("../../xds/tests/fixtures/gateway.pb")).unwrap();
        let expected: BTreeSet<(String, String)> = [
            ("shop.apps.example.com", "/"),
            ("shop.apps.example.com", "/api"),
            ("shop.apps.example.com", "/nope"),
            ("nowhere.apps.example.com", "/"),
        ]
        .iter()
        .map(|(f, p)| ((*f).to_owned(), (*p).to_owned()))
        .collect();
        assert_eq!(
            missing(&config, &expected),
            vec![
                "nowhere.apps.example.com/".to_owned(),
                "shop.apps.example.com/nope".to_owned()
            ]
        );
    }
}
