//! What only the gateway-api mode has, on the real API server with the Gateway API CRDs (v1.6.3): the
//! Route's Ready condition follows the status an implementation writes on the HTTPRoute; a switch of the
//! routing mode on a live cluster converges with no moment where a route has neither a VirtualService nor
//! an HTTPRoute; without the CRDs the Routes say what to install, until the CRDs arrive; and an FQDN past
//! 16 routes is sharded over several HTTPRoutes. The scenarios both modes share are in behaviour.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use cfnet_testenv::ControlPlane;
use common::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

fn fqdn(host: &str) -> String {
    format!("{host}.apps.example.com")
}

/// What an implementation (here: as Istio's gateway controller would) writes on the HTTPRoute's status
/// subresource for the parent `cf-system/cf-gateway`.
async fn report(client: &Client, ns: &str, name: &str, accepted: (&str, &str, &str)) {
    let api = http_route_api(client, ns);
    let generation = api.get(name).await.unwrap().metadata.generation.unwrap();
    let (status, reason, message) = accepted;
    let condition = |type_: &str, status: &str, reason: &str, message: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "observedGeneration": generation, "lastTransitionTime": "2026-12-01T00:00:00Z"})
    };
    let body = json!({"status": {"parents": [{
        "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                      "namespace": "cf-system", "name": "cf-gateway"},
        "controllerName": "istio.io/gateway-controller",
        "conditions": [condition("Accepted", status, reason, message),
                       condition("ResolvedRefs", "True", "ResolvedRefs", "All references resolved")],
    }]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .expect("status written as an implementation writes it");
}

async fn ready_is(client: &Client, ns: &str, name: &str, status: &str) -> (String, String) {
    eventually(&format!("{name} Ready={status}"), T, || async {
        match ready(client, ns, name).await {
            Some((s, reason, message)) if s == status => Ok((reason, message)),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test]
async fn the_implementations_status_on_the_http_route_decides_ready() {
    let client = client().await;
    let ns = namespace(&client, "gwstatus").await;
    let c = Mode::GatewayApi.start(&client, &ns).await;
    apply(&client, &ns, &one("r1", "shop", "/cart", "d1")).await;
    let hr = Mode::GatewayApi.name(&fqdn("shop"));
    let (reason, message) = ready_is(&client, &ns, "r1", "True").await;
    assert_eq!(
        (reason.as_str(), message),
        ("Programmed", format!("programmed in HTTPRoute {ns}/{hr}"))
    );

    // The gateway refuses the route: not Ready, with the implementation's reason and message.
    report(
        &client,
        &ns,
        &hr,
        (
            "False",
            "NotAllowedByListeners",
            "No listener allows routes from this namespace",
        ),
    )
    .await;
    let (reason, message) = ready_is(&client, &ns, "r1", "False").await;
    assert_eq!(reason, "Rejected");
    assert_eq!(
        message,
        format!(
            "HTTPRoute {ns}/{hr} is written, but istio.io/gateway-controller reports Accepted=False for \
             Gateway cf-system/cf-gateway (NotAllowedByListeners): No listener allows routes from this namespace"
        )
    );
    // The implementation's status is not drift: the HTTPRoute's spec is not written again.
    let generation = || async {
        http_route_api(&client, &ns)
            .get(&hr)
            .await
            .unwrap()
            .metadata
            .generation
    };
    let before = generation().await;

    // Fixed on the gateway's side: Ready again, saying who accepted it.
    report(&client, &ns, &hr, ("True", "Accepted", "Route was valid")).await;
    let (reason, message) = ready_is(&client, &ns, "r1", "True").await;
    assert_eq!(reason, "Programmed");
    assert!(
        message
            .ends_with("accepted for Gateway cf-system/cf-gateway by istio.io/gateway-controller"),
        "{message}"
    );
    assert_eq!(generation().await, before, "the spec was not written again");

    // A report on a spec that has since changed is stale: the new spec is Programmed until reported on.
    report(
        &client,
        &ns,
        &hr,
        ("False", "NotAllowedByListeners", "stale"),
    )
    .await;
    ready_is(&client, &ns, "r1", "False").await;
    let mut changed = one("r1", "shop", "/cart", "d1");
    changed.spec.destinations[0].port = 9090;
    apply(&client, &ns, &changed).await;
    let (reason, _) = ready_is(&client, &ns, "r1", "True").await;
    assert_eq!(reason, "Programmed");
    c.stop().await;
}

/// Hosts of the routes of the switch test.
const HOSTS: [&str; 3] = ["a", "b", "c"];

/// One change of a VirtualService or an HTTPRoute, at the etcd revision it happened at.
#[derive(Debug)]
struct Change {
    revision: u64,
    kind: Mode,
    name: String,
    exists: bool,
}

/// Records every change of both kinds in `ns` (a watch of each) until aborted. Objects carry the
/// resourceVersion of their last change and a deletion event the revision of the deletion; with one etcd
/// behind the API server these are etcd revisions, one order across kinds (a test-only reliance on what
/// Kubernetes calls opaque).
fn record_changes(
    client: &Client,
    ns: &str,
) -> (
    tokio::task::JoinHandle<()>,
    Arc<std::sync::Mutex<Vec<Change>>>,
) {
    use futures::StreamExt;
    use kube::runtime::watcher;
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut streams = Vec::new();
    for kind in [Mode::Istio, Mode::GatewayApi] {
        let log = Arc::clone(&log);
        let stream = watcher(kind.api(client, ns), watcher::Config::default()).for_each(move |e| {
            let record = |o: &DynamicObject, exists: bool| {
                let revision = o
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap_or("0")
                    .parse()
                    .unwrap();
                log.lock().unwrap().push(Change {
                    revision,
                    kind,
                    name: o.name_any(),
                    exists,
                });
            };
            match e {
                Ok(watcher::Event::InitApply(o) | watcher::Event::Apply(o)) => record(&o, true),
                Ok(watcher::Event::Delete(o)) => record(&o, false),
                _ => {}
            }
            async {}
        });
        streams.push(stream);
    }
    let task = tokio::spawn(async move {
        futures::future::join_all(streams).await;
    });
    (task, log)
}

/// Replays `changes` in revision order and returns the hosts that had neither kind after revision `from`.
fn gaps(changes: &mut [Change], from: u64) -> Vec<(u64, String)> {
    changes.sort_by_key(|c| c.revision);
    let mut present = BTreeSet::new();
    let mut gaps = Vec::new();
    for c in changes.iter() {
        if c.exists {
            present.insert((c.kind.kind(), c.name.clone()));
        } else {
            present.remove(&(c.kind.kind(), c.name.clone()));
        }
        if c.revision <= from {
            continue;
        }
        for host in HOSTS {
            let routed = [Mode::Istio, Mode::GatewayApi]
                .iter()
                .any(|m| present.contains(&(m.kind(), m.name(&fqdn(host)))));
            if !routed {
                gaps.push((c.revision, host.to_string()));
            }
        }
    }
    gaps
}

async fn names_of(api: &Api<DynamicObject>) -> BTreeSet<String> {
    api.list(&ListParams::default())
        .await
        .map(|l| l.items.iter().map(|o| o.name_any()).collect())
        .unwrap_or_default()
}

/// Restarts the controller of `ns` in mode `to` (it ran in the other) and checks that the children
/// converge to `to`'s kind with no revision of etcd at which a host has neither.
async fn switch(client: &Client, ns: &str, running: Running, to: Mode) -> Running {
    let from = match to {
        Mode::Istio => Mode::GatewayApi,
        Mode::GatewayApi => Mode::Istio,
    };
    let (recorder, log) = record_changes(client, ns);
    let start: u64 = from
        .api(client, ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse()
        .unwrap();
    running.stop().await;
    let c = to.start(client, ns).await;
    let expected: BTreeSet<String> = HOSTS.iter().map(|h| to.name(&fqdn(h))).collect();
    eventually_eq(&format!("{to:?} children"), T, expected, || {
        names_of_mode(client, ns, to)
    })
    .await;
    eventually_eq(
        &format!("{from:?} children pruned"),
        T,
        BTreeSet::new(),
        || names_of_mode(client, ns, from),
    )
    .await;
    // The watches have seen the last deletion once their log holds it.
    eventually_eq("deletions recorded", T, HOSTS.len(), || async {
        log.lock()
            .unwrap()
            .iter()
            .filter(|c| c.kind == from && !c.exists)
            .count()
    })
    .await;
    recorder.abort();
    let mut changes = std::mem::take(&mut *log.lock().unwrap());
    let created = changes
        .iter()
        .filter(|c| c.kind == to && c.revision > start)
        .count();
    assert!(created >= HOSTS.len(), "{changes:?}");
    let gaps = gaps(&mut changes, start);
    assert!(
        gaps.is_empty(),
        "(revision, host) with neither kind during the switch to {to:?}: {gaps:?}"
    );
    c
}

async fn names_of_mode(client: &Client, ns: &str, mode: Mode) -> BTreeSet<String> {
    names_of(&mode.api(client, ns)).await
}

#[tokio::test]
async fn switching_modes_on_a_live_cluster_converges_without_a_gap() {
    let client = client().await;
    let ns = namespace(&client, "gwswitch").await;
    let c = Mode::Istio.start(&client, &ns).await;
    for (i, host) in HOSTS.iter().enumerate() {
        apply(
            &client,
            &ns,
            &one(&format!("r{i}"), host, "/p", &format!("d{i}")),
        )
        .await;
    }
    let vs: BTreeSet<String> = HOSTS.iter().map(|h| Mode::Istio.name(&fqdn(h))).collect();
    eventually_eq("virtual services", T, vs, || {
        names_of_mode(&client, &ns, Mode::Istio)
    })
    .await;

    let c = switch(&client, &ns, c, Mode::GatewayApi).await;
    for i in 0..HOSTS.len() {
        let (_, message) = ready_is(&client, &ns, &format!("r{i}"), "True").await;
        assert!(message.contains("HTTPRoute"), "{message}");
    }
    let c = switch(&client, &ns, c, Mode::Istio).await;

    // An HTTPRoute that cannot be written (a foreign object holds its name) keeps the VirtualService.
    let held = Mode::GatewayApi.name(&fqdn("a"));
    http_route_api(&client, &ns)
        .create(&PostParams::default(), &Mode::GatewayApi.foreign(&held))
        .await
        .expect("foreign HTTPRoute");
    c.stop().await;
    let c = Mode::GatewayApi.start(&client, &ns).await;
    let (reason, _) = ready_is(&client, &ns, "r0", "False").await;
    assert_eq!(reason, "Conflict");
    eventually_eq(
        "the other hosts switched",
        T,
        BTreeSet::from([Mode::Istio.name(&fqdn("a"))]),
        || names_of_mode(&client, &ns, Mode::Istio),
    )
    .await;
    // Once the foreign object is gone, the HTTPRoute is written and the VirtualService pruned.
    http_route_api(&client, &ns)
        .delete(&held, &DeleteParams::default())
        .await
        .expect("delete foreign HTTPRoute");
    eventually_eq(
        "VirtualService pruned after its HTTPRoute",
        T,
        BTreeSet::new(),
        || names_of_mode(&client, &ns, Mode::Istio),
    )
    .await;
    ready_is(&client, &ns, "r0", "True").await;
    c.stop().await;
}

/// Its own control plane: the Route and Istio CRDs, not the Gateway API's.
#[tokio::test]
async fn without_the_gateway_api_crds_routes_say_what_to_install_until_they_arrive() {
    let cp = ControlPlane::start()
        .await
        .expect("local control plane (run scripts/install-control-plane.sh)");
    let client = cfnet_controller::connect(Some(cp.kubeconfig_path()))
        .await
        .expect("client");
    let ns = cp.create_namespace("gwmissing").await.expect("namespace");
    let c = Running::start(client.clone(), Mode::GatewayApi.config(&ns)).await;
    apply(&client, &ns, &one("r1", "shop", "", "d1")).await;
    let (reason, message) = eventually("Route names the missing CRDs", T, || async {
        match ready(&client, &ns, "r1").await {
            Some((s, reason, message)) if s == "False" => Ok((reason, message)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(reason, "ApplyFailed");
    assert!(
        message.contains("does not serve gateway.networking.k8s.io/v1 HTTPRoutes; install the Gateway API standard CRDs"),
        "{message}"
    );

    // The CRDs arrive: within the discovery re-check the HTTPRoute is written and the Route is Ready.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in cfnet_testenv::gateway_api_crds().expect("CRDs") {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("gateway-api-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("install CRD");
    }
    let hr = Mode::GatewayApi.name(&fqdn("shop"));
    eventually_eq(
        "HTTPRoute written once served",
        Duration::from_secs(60),
        true,
        || async { matches!(http_route_api(&client, &ns).get_opt(&hr).await, Ok(Some(_))) },
    )
    .await;
    ready_is(&client, &ns, "r1", "True").await;
    c.stop().await;
    drop(cp);
}

/// The rules of every HTTPRoute of `ns`, by HTTPRoute name: the path values.
async fn rules_by_http_route(
    client: &Client,
    ns: &str,
) -> std::collections::BTreeMap<String, Vec<String>> {
    http_route_api(client, ns)
        .list(&ListParams::default())
        .await
        .expect("list HTTPRoutes")
        .items
        .iter()
        .map(|hr| {
            let paths = hr.data["spec"]["rules"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|r| {
                    r["matches"][0]["path"]["value"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect();
            (hr.name_any(), paths)
        })
        .collect()
}

/// Past 16 routes an FQDN is sharded over several HTTPRoutes (hr-<hash>-<bits>), every rule once; back at
/// 16 the shards merge into the base one and the others are pruned.
#[tokio::test]
async fn an_fqdn_with_more_than_16_routes_is_sharded_and_merged_back() {
    let client = client().await;
    let ns = namespace(&client, "gwshard").await;
    let c = Mode::GatewayApi.start(&client, &ns).await;
    for i in 0..17 {
        apply(
            &client,
            &ns,
            &one(&format!("r{i}"), "big", &format!("/p{i}"), &format!("d{i}")),
        )
        .await;
    }
    let base = Mode::GatewayApi.name(&fqdn("big"));
    let sharded = eventually("17 rules over several HTTPRoutes", T, || async {
        let by_name = rules_by_http_route(&client, &ns).await;
        let rules: usize = by_name.values().map(Vec::len).sum();
        if rules == 17 && by_name.len() > 1 {
            Ok(by_name)
        } else {
            Err(format!("{by_name:?}"))
        }
    })
    .await;
    let all: BTreeSet<&String> = sharded.values().flatten().collect();
    assert_eq!(all.len(), 17, "every rule once: {sharded:?}");
    for (name, rules) in &sharded {
        assert!(
            name.starts_with(&base) && rules.len() <= 16,
            "{name}: {rules:?}"
        );
    }
    for i in 0..17 {
        ready_is(&client, &ns, &format!("r{i}"), "True").await;
    }
    delete_route(&client, &ns, "r16").await;
    eventually_eq(
        "merged back into the base HTTPRoute",
        T,
        vec![base.clone()],
        || async {
            rules_by_http_route(&client, &ns)
                .await
                .into_keys()
                .collect::<Vec<_>>()
        },
    )
    .await;
    assert_eq!(rules_by_http_route(&client, &ns).await[&base].len(), 16);
    c.stop().await;
}
