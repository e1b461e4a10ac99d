//! High availability (two controllers, leader election) and RBAC (the controller under the chart's rules).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::time::Duration;

use cfnet_controller::LeaderElection;
use common::*;
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::Value;

fn one(name: &str, guid: &str) -> cfnet_api::Route {
    route(
        name,
        name,
        name,
        "",
        &[(Some(100), 8080, guid, "app", "web")],
    )
}

async fn service_exists(client: &Client, ns: &str, name: &str) -> bool {
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    matches!(api.get_opt(name).await, Ok(Some(_)))
}

#[tokio::test]
async fn standby_takes_over_when_the_leader_dies() {
    let client = client().await;
    let ns = namespace(&client, "ha").await;
    let mut cfg_a = config(&ns);
    cfg_a.leader_election = Some(LeaderElection::new(&ns, "replica-a"));
    let mut a = Running::start(client.clone(), cfg_a).await;
    tokio::time::timeout(Duration::from_secs(30), a.leading.wait_for(|l| *l))
        .await
        .expect("a leads")
        .expect("alive");
    let mut cfg_b = config(&ns);
    cfg_b.leader_election = Some(LeaderElection::new(&ns, "replica-b"));
    let b = Running::start(client.clone(), cfg_b).await;
    assert!(!*b.leading.borrow(), "only one leader");

    apply(&client, &ns, &one("before", "d-before")).await;
    eventually_eq("leader programs", T, true, || {
        service_exists(&client, &ns, "s-d-before")
    })
    .await;
    assert_eq!(b.writes(), 0, "the standby never writes");

    a.kill(); // no graceful release: the lease must expire
    apply(&client, &ns, &one("after", "d-after")).await;
    eventually_eq(
        "standby applies a change made after the kill",
        Duration::from_secs(40),
        true,
        || service_exists(&client, &ns, "s-d-after"),
    )
    .await;
    assert!(*b.leading.borrow());
    b.stop().await;
}

/// The chart's RBAC objects rendered for `namespace` (helm template).
fn rendered_rbac(namespace: &str) -> Vec<Value> {
    let helm = cfnet_testenv::cache_bin_dir()
        .expect("HOME for ~/.cache/cfnet/bin")
        .join("helm");
    let chart = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/helm/cf-k8s-networking"
    );
    let out = std::process::Command::new(&helm)
        .args([
            "template",
            "cfnet",
            chart,
            "--set",
            &format!("systemNamespace={namespace}"),
            "--show-only",
            "templates/rbac.yaml",
        ])
        .output()
        .unwrap_or_else(|e| panic!("run {} (scripts/install-helm.sh): {e}", helm.display()));
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    serde_yaml_ng::Deserializer::from_str(&text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn rules_of(objects: &[Value], kind: &str) -> Vec<String> {
    objects
        .iter()
        .filter(|o| o["kind"] == kind)
        .flat_map(|o| o["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            let list = |k: &str| {
                r[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default()
            };
            format!(
                "{} {} {} [{}]",
                list("apiGroups"),
                list("resources"),
                list("resourceNames"),
                list("verbs")
            )
        })
        .collect()
}

/// Creates (or, left over from an earlier run of this binary's control plane, replaces) `objects`.
async fn install(admin: &Client, ns: &str, objects: &[Value]) {
    for o in objects {
        let kind = o["kind"].as_str().expect("kind");
        let gvk = GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind);
        let ar = ApiResource::from_gvk(&gvk);
        let obj: DynamicObject = serde_json::from_value(o.clone()).expect("object");
        let api: Api<DynamicObject> = if kind.starts_with("Cluster") {
            Api::all_with(admin.clone(), &ar)
        } else {
            Api::namespaced_with(admin.clone(), ns, &ar)
        };
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            // Cluster-scoped objects survive from an earlier run of this binary's control plane: replace.
            Err(kube::Error::Api(s)) if s.is_already_exists() => {
                let name = obj.metadata.name.clone().unwrap_or_default();
                api.patch(
                    &name,
                    &kube::api::PatchParams::apply("rbac-test").force(),
                    &kube::api::Patch::Apply(&obj),
                )
                .await
                .expect("update rbac");
            }
            Err(e) => panic!("create {kind}: {e}"),
        }
    }
}

#[tokio::test]
async fn controller_runs_under_the_charts_rbac() {
    let admin = client().await;
    let ns = namespace(&admin, "rbac").await;
    let objects = rendered_rbac(&ns);
    // Any widening of the shipped rules changes this list and must be reviewed here.
    assert_eq!(
        rules_of(&objects, "ClusterRole"),
        [
            "networking.cloudfoundry.org routes  [get,list,watch,patch]",
            "networking.cloudfoundry.org routes/status  [get,patch,update]",
            " services  [get,list,watch,create,patch,delete]",
            "networking.istio.io virtualservices  [get,list,watch,create,patch,delete]",
            "gateway.networking.k8s.io httproutes  [get,list,watch,create,patch,delete]",
            " events  [create,patch]",
            "events.k8s.io events  [create,patch]",
        ]
    );
    assert_eq!(
        rules_of(&objects, "Role"),
        [
            "coordination.k8s.io leases  [create]",
            "coordination.k8s.io leases cf-k8s-networking-routecontroller [get,update,patch]",
        ]
    );
    install(&admin, &ns, &objects).await;
    let sa = control_plane()
        .service_account_client(&ns, "routecontroller")
        .await
        .expect("service account client");
    let mut cfg = config(&ns);
    cfg.leader_election = Some(LeaderElection::new(&ns, "rbac-replica"));
    let mut c = Running::start(sa, cfg).await;
    tokio::time::timeout(Duration::from_secs(30), c.leading.wait_for(|l| *l))
        .await
        .expect("leads under the Role")
        .expect("alive");

    apply(&admin, &ns, &one("r1", "d1")).await;
    eventually_eq("programmed under the chart's rules", T, true, || {
        service_exists(&admin, &ns, "s-d1")
    })
    .await;
    eventually_eq("status written", T, Some("True".to_string()), || async {
        ready(&admin, &ns, "r1").await.map(|r| r.0)
    })
    .await;
    delete_route(&admin, &ns, "r1").await;
    let routes: Api<cfnet_api::Route> = Api::namespaced(admin.clone(), &ns);
    eventually_eq(
        "finalizer removed under the chart's rules",
        T,
        true,
        || async { matches!(routes.get_opt("r1").await, Ok(None)) },
    )
    .await;
    assert!(!service_exists(&admin, &ns, "s-d1").await);
    let text = c.metrics.encode();
    assert_eq!(
        cfnet_controller::sum_samples(&text, cfnet_controller::names::RECONCILE_ERRORS_TOTAL),
        0.0,
        "no forbidden error:\n{text}"
    );
    c.stop().await;
}
