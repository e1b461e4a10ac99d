//! What cfnet does beyond upstream: drift repair by watch, isolation of an invalid route, foreign
//! objects left alone, convergence after downtime, zero writes at steady state. Each scenario runs in
//! both routing modes (`<scenario>::istio`, `<scenario>::gateway_api`): the same Routes, observed as
//! VirtualServices or as HTTPRoutes ([`Mode`]).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cfnet_api::Route;
use common::*;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const HOST: &str = "hostname.apps.example.com";

/// `scenario(Mode::Istio)` and `scenario(Mode::GatewayApi)` as the tests `scenario::istio` and
/// `scenario::gateway_api`.
macro_rules! in_both_modes {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn istio() {
                super::$scenario(super::Mode::Istio).await
            }
            #[tokio::test]
            async fn gateway_api() {
                super::$scenario(super::Mode::GatewayApi).await
            }
        }
    };
}

/// The selector is ours as a whole: a key another manager adds changes which pods get traffic.
async fn selector_key_added_by_another_manager_is_removed(svcs: &Api<Service>) {
    svcs.patch(
        "s-d1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": {"tier": "other"}}})),
    )
    .await
    .expect("edit selector");
    let selector = || async {
        svcs.get("s-d1")
            .await
            .ok()
            .and_then(|s| s.spec?.selector)
            .unwrap_or_default()
    };
    eventually_eq(
        "added selector key removed",
        Duration::from_secs(10),
        std::collections::BTreeMap::from([
            ("cloudfoundry.org/app_guid".to_string(), "app".to_string()),
            (
                "cloudfoundry.org/process_type".to_string(),
                "web".to_string(),
            ),
        ]),
        selector,
    )
    .await;
}

/// Deleting the Service and the VirtualService (HTTPRoute): both are re-created by the watch.
async fn deleted_children_come_back(
    mode: Mode,
    client: &Client,
    ns: &str,
    expected_vs: &[serde_json::Value],
) {
    Api::<Service>::namespaced(client.clone(), ns)
        .delete("s-d1", &DeleteParams::default())
        .await
        .expect("delete service");
    mode.api(client, ns)
        .delete(&mode.name(HOST), &DeleteParams::default())
        .await
        .expect("delete vs");
    eventually_eq(
        "deleted service restored",
        Duration::from_secs(10),
        svc(&[("s-d1", 8080)]),
        || services(client, ns),
    )
    .await;
    eventually_eq(
        "deleted vs restored",
        Duration::from_secs(10),
        expected_vs.to_vec(),
        || mode.observed(client, ns),
    )
    .await;
}

in_both_modes!(drift_deleted_and_edited_children_are_restored_by_the_watch);
async fn drift_deleted_and_edited_children_are_restored_by_the_watch(mode: Mode) {
    let client = client().await;
    let ns = namespace(&client, "drift").await;
    let c = mode.start(&client, &ns).await; // resync: 1 h
    apply(&client, &ns, &one("r1", "hostname", "/p", "d1")).await;
    eventually_eq("programmed", T, svc(&[("s-d1", 8080)]), || {
        services(&client, &ns)
    })
    .await;
    let expected_vs = vec![mode.expected(HOST, &[(&["/p"], &["s-d1"])])];
    eventually_eq("vs", T, expected_vs.clone(), || mode.observed(&client, &ns)).await;

    // Edit: another manager changes the port and the VirtualService's destination.
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    svcs.patch("s-d1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"ports": [{"name": "http", "port": 9999, "protocol": "TCP", "targetPort": 9999}]}})))
        .await
        .expect("edit service");
    let vs_name = mode.name(HOST);
    mode.api(&client, &ns)
        .patch(
            &vs_name,
            &PatchParams::default(),
            &Patch::Merge(mode.hostile_edit()),
        )
        .await
        .expect("edit vs");
    // The repair is event driven (resync is an hour); "within a second" is measured by the benchmark,
    // here a generous deadline only guards against flakiness.
    let port = || async {
        svcs.get("s-d1")
            .await
            .ok()
            .and_then(|s| s.spec?.ports?.first().map(|p| p.port))
            .unwrap_or(0)
    };
    eventually_eq("edited port restored", Duration::from_secs(10), 8080, port).await;
    selector_key_added_by_another_manager_is_removed(&svcs).await;
    eventually_eq(
        "edited vs restored",
        Duration::from_secs(10),
        expected_vs.clone(),
        || mode.observed(&client, &ns),
    )
    .await;

    deleted_children_come_back(mode, &client, &ns, &expected_vs).await;
    // Each reconcile that creates children tells the Route once, naming all of them (one event write,
    // not one per child).
    let created = (
        "Created".to_string(),
        format!("created Service s-d1, {} {vs_name}", mode.kind()),
    );
    eventually_eq(
        "one Created event naming both children",
        Duration::from_secs(10),
        true,
        || async { events_for(&client, &ns, "r1").await.contains(&created) },
    )
    .await;
    c.stop().await;
}

in_both_modes!(an_invalid_route_on_a_shared_fqdn_does_not_break_its_siblings);
async fn an_invalid_route_on_a_shared_fqdn_does_not_break_its_siblings(mode: Mode) {
    let client = client().await;
    let ns = namespace(&client, "invalid").await;
    let c = mode.start(&client, &ns).await;
    apply(&client, &ns, &one("good", "hostname", "/good", "d-good")).await;
    let bad = two_destinations("bad", 50, 20);
    apply(&client, &ns, &bad).await;
    eventually_eq(
        "sibling keeps serving",
        T,
        vec![mode.expected(HOST, &[(&["/good"], &["s-d-good"])])],
        || mode.observed(&client, &ns),
    )
    .await;
    let (status, reason, message) = eventually("bad route reported", T, || async {
        match ready(&client, &ns, "bad").await {
            Some(r) if r.0 == "False" => Ok(r),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Invalid"));
    assert!(
        message.contains("100"),
        "message names the weight rule: {message}"
    );
    eventually_eq("good route Ready", T, Some("True".to_string()), || async {
        ready(&client, &ns, "good").await.map(|r| r.0)
    })
    .await;
    eventually("a Warning event names the problem", T, || async {
        let evs = events_for(&client, &ns, "bad").await;
        if evs
            .iter()
            .any(|(reason, note)| reason == "Invalid" && note.contains("100"))
        {
            Ok(())
        } else {
            Err(format!("{evs:?}"))
        }
    })
    .await;
    assert_eq!(
        services(&client, &ns).await,
        svc(&[("s-d-good", 8080)]),
        "no Service for the invalid route"
    );

    // Fixing the route programs it.
    let fixed = two_destinations("bad", 80, 20);
    apply(&client, &ns, &fixed).await;
    eventually_eq("fixed route Ready", T, Some("True".to_string()), || async {
        ready(&client, &ns, "bad").await.map(|r| r.0)
    })
    .await;

    // Deleting an invalid route is never stuck.
    apply(&client, &ns, &bad).await;
    eventually_eq("invalid again", T, Some("False".to_string()), || async {
        ready(&client, &ns, "bad").await.map(|r| r.0)
    })
    .await;
    delete_route(&client, &ns, "bad").await;
    let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
    eventually_eq("invalid route deleted", T, true, || async {
        matches!(routes.get_opt("bad").await, Ok(None))
    })
    .await;
    c.stop().await;
}

/// s-taken (labelled route_guid, so watched), s-quiet (unlabelled) and the VirtualService (HTTPRoute)
/// of other.apps.example.com, none owned by a Route; returns the VirtualService's (HTTPRoute's) name.
async fn create_foreign_objects(mode: Mode, client: &Client, ns: &str) -> String {
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let foreign_svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "s-taken", "labels": {"cloudfoundry.org/route_guid": "someone-else"}},
        "spec": {"ports": [{"name": "web", "port": 1234, "protocol": "TCP"}]}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &foreign_svc)
        .await
        .expect("foreign service");
    let unlabelled: Service = serde_json::from_value(json!({
        "metadata": {"name": "s-quiet"}, "spec": {"ports": [{"name": "web", "port": 4321, "protocol": "TCP"}]}
    }))
    .unwrap();
    svcs.create(&PostParams::default(), &unlabelled)
        .await
        .expect("unlabelled foreign service");
    let vs_name = mode.name("other.apps.example.com");
    mode.api(client, ns)
        .create(&PostParams::default(), &mode.foreign(&vs_name))
        .await
        .expect("foreign vs");
    vs_name
}

/// The resourceVersions of the foreign objects: they must never change.
async fn foreign_versions(
    mode: Mode,
    client: &Client,
    ns: &str,
    vs_name: &str,
) -> [Option<String>; 3] {
    let svcs: Api<Service> = Api::namespaced(client.clone(), ns);
    let version = |s: Service| s.metadata.resource_version;
    [
        version(svcs.get("s-taken").await.unwrap()),
        version(svcs.get("s-quiet").await.unwrap()),
        mode.api(client, ns)
            .get(vs_name)
            .await
            .unwrap()
            .metadata
            .resource_version,
    ]
}

in_both_modes!(foreign_objects_holding_our_names_are_left_alone_and_reported);
async fn foreign_objects_holding_our_names_are_left_alone_and_reported(mode: Mode) {
    let client = client().await;
    let ns = namespace(&client, "foreign").await;
    // A Service and a VirtualService someone else made, with our names, before the routes exist.
    let vs_name = create_foreign_objects(mode, &client, &ns).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let before = foreign_versions(mode, &client, &ns, &vs_name).await;

    let c = mode.start(&client, &ns).await;
    apply(&client, &ns, &one("wants-taken", "hostname", "/a", "taken")).await;
    apply(&client, &ns, &one("wants-quiet", "quiet", "", "quiet")).await;
    apply(&client, &ns, &one("wants-vs", "other", "", "fine")).await;
    for name in ["wants-taken", "wants-quiet", "wants-vs"] {
        let (_, reason, message) = eventually("Conflict reported", T, || async {
            match ready(&client, &ns, name).await {
                Some(r) if r.0 == "False" => Ok(r),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        assert_eq!(reason, "Conflict", "{name}: {message}");
        assert!(message.contains("not owned"), "{name}: {message}");
    }
    // Untouched: same resourceVersion, and the controller's own objects are still created.
    eventually(
        "own service for the VS conflict route exists",
        T,
        || async {
            if svcs.get_opt("s-fine").await.ok().flatten().is_some() {
                Ok(())
            } else {
                Err("missing".into())
            }
        },
    )
    .await;
    assert_eq!(foreign_versions(mode, &client, &ns, &vs_name).await, before);

    // Deleting a conflicting route does not delete the foreign objects either.
    delete_route(&client, &ns, "wants-taken").await;
    delete_route(&client, &ns, "wants-vs").await;
    let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
    eventually_eq("conflicting routes deleted", T, true, || async {
        matches!(routes.get_opt("wants-taken").await, Ok(None))
            && matches!(routes.get_opt("wants-vs").await, Ok(None))
    })
    .await;
    assert!(svcs.get_opt("s-taken").await.unwrap().is_some());
    assert!(
        mode.api(&client, &ns)
            .get_opt(&vs_name)
            .await
            .unwrap()
            .is_some()
    );
    c.stop().await;
}

fn bulk_route(i: usize) -> Route {
    one(
        &format!("route-{i}"),
        &format!("host-{i}"),
        &format!("/p-{i}"),
        &format!("d-{i}"),
    )
}

async fn create_routes(client: &Client, ns: &str, range: std::ops::Range<usize>) {
    let api: Api<Route> = Api::namespaced(client.clone(), ns);
    let mut pending = futures::stream::iter(range.map(|i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &bulk_route(i))
                .await
                .map(|_| ())
        }
    }))
    .buffer_unordered(16);
    use futures::StreamExt;
    while let Some(r) = pending.next().await {
        r.expect("create route");
    }
}

in_both_modes!(stopped_controller_converges_after_500_creates_and_50_deletes);
async fn stopped_controller_converges_after_500_creates_and_50_deletes(mode: Mode) {
    let client = client().await;
    let ns = namespace(&client, "restart").await;
    let c = mode.start(&client, &ns).await;
    create_routes(&client, &ns, 0..100).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    eventually_eq(
        "first 100 programmed",
        Duration::from_secs(120),
        100,
        || async { names(&svcs).await.len() },
    )
    .await;
    c.stop().await;

    // While it is down: 500 new Routes, 50 deletions (of programmed routes, which carry the finalizer).
    create_routes(&client, &ns, 100..600).await;
    let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
    for i in 0..50 {
        routes
            .delete(&format!("route-{i}"), &DeleteParams::default())
            .await
            .expect("delete");
    }
    assert_eq!(
        names(&routes).await.len(),
        600,
        "deleted routes wait for the controller (finalizer)"
    );

    let c = mode.start(&client, &ns).await;
    let expected_routes: BTreeSet<String> = (50..600).map(|i| format!("route-{i}")).collect();
    let expected_services: BTreeSet<String> = (50..600).map(|i| format!("s-d-{i}")).collect();
    let expected_vs: BTreeSet<String> = (50..600)
        .map(|i| mode.name(&format!("host-{i}.apps.example.com")))
        .collect();
    let long = Duration::from_secs(300);
    eventually_eq("no route stuck terminating", long, expected_routes, || {
        names(&routes)
    })
    .await;
    eventually_eq(
        "services converge, no orphans",
        long,
        expected_services,
        || names(&svcs),
    )
    .await;
    let vss = mode.api(&client, &ns);
    eventually_eq(
        "virtual services (http routes) converge, no orphans",
        long,
        expected_vs,
        || names(&vss),
    )
    .await;
    c.stop().await;
}

in_both_modes!(steady_state_with_1000_routes_makes_no_write_even_at_resync);
async fn steady_state_with_1000_routes_makes_no_write_even_at_resync(mode: Mode) {
    let client = client().await;
    let ns = namespace(&client, "steady").await;
    let mut cfg = mode.config(&ns);
    cfg.resync_interval = Duration::from_secs(20);
    let c = Running::start(client.clone(), cfg).await;
    create_routes(&client, &ns, 0..1000).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    eventually_eq("1000 services", Duration::from_secs(300), 1000, || async {
        names(&svcs).await.len()
    })
    .await;
    eventually_eq(
        "all routes Ready",
        Duration::from_secs(300),
        1000,
        || async {
            let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
            let list = routes
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            list.iter()
                .filter(|r| {
                    r.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && format!("{:?}", c.status) == "True")
                    })
                })
                .count()
        },
    )
    .await;
    // Let the last status/finalizer events settle, then count writes across two resyncs.
    let metrics = c.metrics.clone();
    let settled = eventually("writes settle", Duration::from_secs(60), || {
        let metrics = metrics.clone();
        let before = metrics.api_writes_total();
        async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let after = metrics.api_writes_total();
            if before == after {
                Ok(after)
            } else {
                Err(format!("{before} -> {after}"))
            }
        }
    })
    .await;
    let reconciles_before = cfnet_controller::sum_samples(
        &c.metrics.encode(),
        cfnet_controller::names::RECONCILE_TOTAL,
    );
    tokio::time::sleep(Duration::from_secs(45)).await;
    let text = c.metrics.encode();
    let reconciles_after =
        cfnet_controller::sum_samples(&text, cfnet_controller::names::RECONCILE_TOTAL);
    assert!(
        reconciles_after - reconciles_before >= 1000.0,
        "a resync reconciled every key: {reconciles_before} -> {reconciles_after}"
    );
    assert_eq!(c.writes(), settled, "no API write at steady state:\n{text}");
    c.stop().await;
}
