//! Issue 12, "Istio in the loop" (and issue 16, modes.rs: the gateway-api mode against the VirtualService
//! mode): every Route the controller programs is proven in the Envoy configuration real istiod serves —
//! the CF ingress gateway's and, for internal routes, a workloads sidecar's — fetched through crates/xds. istiod runs with Istio's validating webhook, so every VirtualService the controller
//! writes also passes Istio's own validation; the chart's Gateway, gateway Service and Sidecar are applied
//! with default values.
//!
//! Each test has its own control plane and istiod (the chart's workloads namespace is fixed). The tests FAIL,
//! never skip, when a binary is missing; they build istiod on first use.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

#[path = "../common/mod.rs"]
mod common;
mod generator;
mod model;
mod modes;
mod proof;
mod propagation;
mod rig;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cfnet_api::Route;
use cfnet_xds::view::IstioClusterName;
use cfnet_xds::{Proxy, ProxyConfig};
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde_json::json;

use crate::model::{Expected, Outcome};
use crate::proof::{SIDECAR_HTTP, sidecar};
use crate::rig::{Rig, T, eventually, example_routes};

/// The generated sets of the proof: a fixed list, so a failure is reproduced by its seed
/// (`generator::route_set(seed)`). Together they cover every shape the generator makes
/// (`the_seeds_cover_every_shape`).
const SEEDS: [u64; 4] = [5, 12, 20, 47];

const EXAMPLES: [&str; 5] = [
    "single-destination.yaml",
    "weighted-split.yaml",
    "context-paths.yaml",
    "internal-route.yaml",
    "invalid-weights.yaml",
];

const FETCH: Duration = Duration::from_secs(10);

async fn fetch(rig: &Rig, proxy: &Proxy) -> Result<ProxyConfig, String> {
    cfnet_xds::fetch(&rig.xds(), proxy, FETCH)
        .await
        .map_err(|e| e.to_string())
}

/// The http prefixes of each VirtualService of the namespace, by host (no match → `/`).
async fn vs_prefixes(rig: &Rig) -> BTreeMap<String, Vec<String>> {
    rig.virtual_services_by_host()
        .await
        .into_iter()
        .map(|(host, spec)| {
            let prefixes = spec["http"]
                .as_array()
                .map(|http| {
                    http.iter()
                        .map(|h| {
                            h["match"][0]["uri"]["prefix"]
                                .as_str()
                                .unwrap_or("/")
                                .to_owned()
                        })
                        .collect()
                })
                .unwrap_or_default();
            (host, prefixes)
        })
        .collect()
}

/// Waits until every Route's Ready condition is the expected one.
async fn wait_for_status(rig: &Rig, routes: &[Route], expected: &Expected) {
    eventually(
        "every Route Ready or with its expected problem",
        T,
        || async {
            let mut wrong = Vec::new();
            for r in routes {
                let name = r.metadata.name.clone().unwrap_or_default();
                let outcome = &expected.routes[&name];
                let got = rig.ready(&name).await;
                let ok = match (outcome, &got) {
                    (o, Some((s, reason, _))) if o.ready() => s == "True" && reason == "Programmed",
                    (Outcome::Invalid(m), Some((s, reason, message))) => {
                        s == "False" && reason == "Invalid" && message.contains(m.as_str())
                    }
                    (Outcome::Conflict(holder), Some((s, reason, message))) => {
                        s == "False" && reason == "Conflict" && message.contains(holder.as_str())
                    }
                    _ => false,
                };
                if !ok {
                    wrong.push(format!(
                        "  {name} ({}): {got:?}, expected {outcome:?}",
                        r.spec.url
                    ));
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("\n"))
            }
        },
    )
    .await;
}

/// Applies `routes` in order, waits for their status, then until the gateway's and the sidecar's Envoy
/// configuration prove every one of them.
async fn prove(rig: &Rig, label: &str, routes: &[Route]) {
    let expected = model::expected(routes);
    let started = Instant::now();
    for r in routes {
        rig.apply(r).await;
    }
    wait_for_status(rig, routes, &expected).await;
    let statused = started.elapsed();
    let seen = eventually(
        &format!("{label}: the Envoy configuration istiod serves proves every Route"),
        T,
        || async {
            let vs = vs_prefixes(rig).await;
            let gateway = fetch(rig, &proof::gateway()).await?;
            let sidecar = fetch(rig, &sidecar()).await?;
            proof::check(routes, &expected, &vs, &gateway, &sidecar)
        },
    )
    .await;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in expected.routes.values() {
        *counts
            .entry(match o {
                Outcome::Entry => "with an Envoy route",
                Outcome::NoEntry => "without destinations beside others",
                Outcome::Placeholder => "placeholder",
                Outcome::Invalid(_) => "Invalid",
                Outcome::Conflict(_) => "Conflict",
            })
            .or_default() += 1;
    }
    eprintln!(
        "{label}: {} Routes {counts:?} over {} FQDNs; status in {statused:.1?}, proven in Envoy after {:.1?}: \
         {} Envoy routes checked, placeholders {:?}",
        routes.len(),
        expected.fqdns.len(),
        started.elapsed(),
        seen.envoy_routes,
        seen.placeholders
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_programmed_route_is_in_envoy_with_its_path_weights_and_headers() {
    let rig = Rig::start(&[]).await;

    let examples: Vec<Route> = EXAMPLES.iter().flat_map(|f| example_routes(f)).collect();
    prove(&rig, "examples", &examples).await;
    rig.delete_all().await;
    prove(&rig, "examples deleted", &[]).await;

    for seed in SEEDS {
        let routes = generator::route_set(seed);
        prove(&rig, &format!("seed {seed}"), &routes).await;
        rig.delete_all().await;
        prove(&rig, &format!("seed {seed} deleted"), &[]).await;
    }
    rig.stop().await;
}

/// A Route on f5.apps.example.com; `dests` are (weight, app guid, process type), the values the CF headers carry.
fn f5_route(name: &str, path: &str, dests: &[(i64, &str, &str)]) -> Route {
    let destinations: Vec<_> = dests
        .iter()
        .enumerate()
        .map(|(i, (weight, app, process))| {
            json!({"guid": format!("{name}-{i}"), "port": 8080, "weight": weight,
                "app": {"guid": app, "process": {"type": process}},
                "selector": {"matchLabels": {"cloudfoundry.org/app_guid": "app-good", "cloudfoundry.org/process_type": "web"}}})
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
        "metadata": {"name": name, "namespace": generator::NAMESPACE, "labels": {
            "cloudfoundry.org/route_guid": name,
            "cloudfoundry.org/org_guid": "org-f5", "cloudfoundry.org/space_guid": "space-f5"}},
        "spec": {"host": "f5", "path": path, "url": format!("f5.{}{path}", generator::APP_DOMAIN),
                 "domain": {"name": generator::APP_DOMAIN, "internal": false}, "destinations": destinations}
    }))
    .expect("a Route")
}

/// Istio's webhook refuses the FQDN's VirtualService with the bad route's entry put in (a dry-run replace).
async fn webhook_refuses_the_bad_entry(rig: &Rig) {
    let vs_api: Api<DynamicObject> = Api::namespaced_with(
        rig.client.clone(),
        generator::NAMESPACE,
        &ApiResource::erase::<cfnet_api::VirtualService>(&()),
    );
    let name = cfnet_translate::virtual_service_name("f5.apps.example.com");
    let mut vs = vs_api.get(&name).await.expect("the FQDN's VirtualService");
    let mut entry = vs.data["spec"]["http"][0].clone();
    entry["match"] = json!([{"uri": {"prefix": "/bad"}}]);
    entry["route"][0]["headers"]["request"]["set"]["CF-App-Id"] = json!("app%zz");
    vs.data["spec"]["http"]
        .as_array_mut()
        .expect("http entries")
        .insert(0, entry);
    let err = vs_api
        .replace(
            &name,
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &vs,
        )
        .await
        .expect_err("Istio's webhook refuses the bad entry");
    let text = err.to_string();
    assert!(
        text.contains("admission webhook \"rev.validation.istio.io\" denied the request")
            && text.contains("Un-terminated variable expression 'app%zz'"),
        "{text}"
    );
    eprintln!("f5: the webhook refuses the VirtualService with the bad entry: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_istios_webhook_refuses_keep_only_their_own_route_out() {
    let rig = Rig::start(&[]).await;
    let good = f5_route(
        "f5-good",
        "/",
        &[(50, "app-good", "web"), (50, "app-good", "worker")],
    );
    let bad_app = f5_route("f5-bad-app", "/bad", &[(100, "app%zz", "web")]);
    let bad_process = f5_route("f5-bad-process", "/process", &[(100, "app-good", "web\nx")]);
    let routes = [good.clone(), bad_app, bad_process];
    let mut expected = model::expected(&routes[..1]);
    expected.routes.insert(
        "f5-bad-app".into(),
        Outcome::Invalid("app.guid \"app%zz\" cannot be the value of header CF-App-Id".into()),
    );
    expected.routes.insert(
        "f5-bad-process".into(),
        Outcome::Invalid(
            "app.process.type \"web\\nx\" cannot be the value of header CF-App-Process-Type".into(),
        ),
    );
    for r in &routes {
        rig.apply(r).await;
    }
    wait_for_status(&rig, &routes, &expected).await;
    let check = |expected: Expected, routes: Vec<Route>| {
        let rig = &rig;
        async move {
            eventually(
                "the good route in the VirtualService and in Envoy",
                T,
                || async {
                    let vs = vs_prefixes(rig).await;
                    let gateway = fetch(rig, &proof::gateway()).await?;
                    let sidecar = fetch(rig, &sidecar()).await?;
                    proof::check(&routes, &expected, &vs, &gateway, &sidecar)
                },
            )
            .await
        }
    };
    check(expected.clone(), routes.to_vec()).await;

    // What F5 keeps out is exactly what the webhook refuses: the FQDN's VirtualService with the bad entry.
    webhook_refuses_the_bad_entry(&rig).await;

    // The good route keeps updating: new weights and a path reach the VirtualService and Envoy.
    let changed = f5_route(
        "f5-good",
        "/v2",
        &[(70, "app-good", "web"), (30, "app-good", "worker")],
    );
    rig.apply(&changed).await;
    let routes = vec![changed.clone(), routes[1].clone(), routes[2].clone()];
    let mut after = model::expected(&routes[..1]);
    after.routes.extend(
        expected
            .routes
            .into_iter()
            .filter(|(name, _)| name != "f5-good"),
    );
    wait_for_status(&rig, &routes, &after).await;
    let seen = check(after, routes).await;
    eprintln!(
        "f5: after the change {} Envoy routes checked; the bad routes stay Invalid",
        seen.envoy_routes
    );
    rig.stop().await;
}

/// The sidecar's internal route for `fqdn` and whether its cluster exists: (route's cluster, in CDS).
fn internal_route(config: &ProxyConfig, fqdn: &str) -> Option<(String, bool)> {
    let rc = config.route_configs.get(SIDECAR_HTTP)?;
    let row = cfnet_xds::view::route::route_config_routes(rc)
        .into_iter()
        .find(|r| r.domains.iter().any(|d| d == fqdn))?;
    let cluster = row.clusters.first()?.name.clone();
    let exists = config.clusters.contains_key(&cluster);
    Some((cluster, exists))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_charts_default_sidecar_an_app_sidecar_gets_internal_routes() {
    let rig = Rig::start(&[]).await;
    let backend = example_routes("internal-route.yaml");
    for r in &backend {
        rig.apply(r).await;
    }
    let expected = model::expected(&backend);
    wait_for_status(&rig, &backend, &expected).await;
    let cluster = "outbound|8080||s-dest-backend.cf-workloads.svc.cluster.local";
    let fqdn = "backend.apps.internal";

    eventually(
        "default values: the sidecar routes backend.apps.internal",
        T,
        || async {
            let config = fetch(&rig, &sidecar()).await?;
            match internal_route(&config, fqdn) {
                Some((c, true)) if c == cluster => Ok(()),
                other => Err(format!("route and cluster: {other:?}")),
            }
        },
    )
    .await;
    eprintln!("chart: default Sidecar egress → {fqdn} routed to {cluster} (in CDS)");

    // The old default hid the apps' own namespace.
    cfnet_testenv::chart::apply_chart_istio_objects(
        &rig.cp,
        &["sidecar.egressHosts={cf-system/*,istio-system/*}"],
    )
    .await
    .expect("the chart with the old Sidecar egress");
    eventually(
        "old default: the sidecar knows nothing of cf-workloads",
        T,
        || async {
            let config = fetch(&rig, &sidecar()).await?;
            let service_clusters: Vec<&String> = config
                .clusters
                .keys()
                .filter(|c| {
                    IstioClusterName::parse(c)
                        .is_some_and(|n| n.host.ends_with(".cf-workloads.svc.cluster.local"))
                })
                .collect();
            match internal_route(&config, fqdn) {
                None if service_clusters.is_empty() => Ok(()),
                route => Err(format!("route {route:?}, clusters {service_clusters:?}")),
            }
        },
    )
    .await;
    eprintln!(
        "chart: old Sidecar egress (cf-system/*, istio-system/*) → no route for {fqdn}, no cluster"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_change_reaches_envoy_and_the_time_it_takes_is_reported() {
    let rig = Rig::start(&[]).await;
    // Some routes around the measured ones, so that istiod pushes a real configuration.
    let around = generator::route_set(SEEDS[0]);
    for r in &around {
        rig.apply(r).await;
    }
    wait_for_status(&rig, &around, &model::expected(&around)).await;
    let times = propagation::measure(&rig, 36).await;
    eprintln!("{}", propagation::summary(&times));
    rig.stop().await;
}

#[test]
fn the_seeds_cover_every_shape() {
    let mut total: BTreeMap<&str, usize> = BTreeMap::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for seed in SEEDS {
        let routes = generator::route_set(seed);
        for (k, v) in generator::features(&routes) {
            *total.entry(k).or_default() += v;
        }
        for o in model::expected(&routes).routes.values() {
            let k = match o {
                Outcome::Entry => "entry",
                Outcome::NoEntry => "no entry",
                Outcome::Placeholder => "placeholder",
                Outcome::Invalid(_) => "invalid",
                Outcome::Conflict(_) => "conflict",
            };
            *outcomes.entry(k).or_default() += 1;
        }
    }
    eprintln!("seeds {SEEDS:?}: {total:#?}\n{outcomes:?}");
    for shape in generator::SHAPES {
        assert!(
            total.contains_key(shape),
            "no seed has {shape:?}: {total:#?}"
        );
    }
    for outcome in ["entry", "no entry", "placeholder", "invalid", "conflict"] {
        assert!(
            outcomes.contains_key(outcome),
            "no seed gives {outcome}: {outcomes:?}"
        );
    }
}
