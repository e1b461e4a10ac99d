//! How cfnet writes: children the cache proves absent created with a plain create and their fields owned
//! by our applies afterwards, the Events `--events` selects, and the children the Go controller wrote for
//! an upper-case FQDN replaced (issue 12's F4 on upgrade).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails where its setup does

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cfnet_api::Route;
use common::*;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

const HOST: &str = "hostname.apps.example.com";

/// The managedFields entries of `object` by field manager `cfnet-routecontroller`: (operation, fieldsV1).
fn cfnet_entries(meta: &kube::api::ObjectMeta) -> Vec<(String, serde_json::Value)> {
    meta.managed_fields
        .iter()
        .flatten()
        .filter(|e| e.manager.as_deref() == Some(cfnet_api::FIELD_MANAGER))
        .map(|e| {
            (
                e.operation.clone().unwrap_or_default(),
                e.fields_v1
                    .as_ref()
                    .map(|f| f.0.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn owner_names(meta: &kube::api::ObjectMeta) -> Vec<String> {
    meta.owner_references
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect()
}

/// Children the cache proves absent are created with a plain create (managedFields: an `Update` entry of
/// ours). The first apply folds it into our `Apply` entry, so that later applies own every field we set
/// and can drop one we stop setting: here the ownerReference of a deleted Route on a shared FQDN, which
/// an apply sharing the field with the `Update` entry could not remove (this control plane has no
/// garbage collector to do it). Another manager's edit of our fields is repaired as before.
#[tokio::test]
async fn after_a_plain_create_our_applies_own_our_fields() {
    let client = client().await;
    let ns = namespace(&client, "ownership").await;
    apply(&client, &ns, &one("r1", "hostname", "/a", "d1")).await;
    apply(&client, &ns, &one("r2", "hostname", "/b", "d2")).await;
    let c = Running::in_namespace(&client, &ns).await;
    let vs_name = cfnet_translate::virtual_service_name(HOST);
    let vss = vs_api(&client, &ns);
    eventually_eq(
        "both Routes own the VirtualService",
        T,
        vec!["r1".to_string(), "r2".to_string()],
        || async {
            let mut names = match vss.get_opt(&vs_name).await {
                Ok(Some(vs)) => owner_names(&vs.metadata),
                _ => vec![],
            };
            names.sort();
            names
        },
    )
    .await;
    let created = vss.get(&vs_name).await.expect("vs");
    assert_eq!(
        cfnet_entries(&created.metadata)
            .into_iter()
            .map(|(op, _)| op)
            .collect::<Vec<_>>(),
        ["Update"],
        "created with a plain create"
    );
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let service = svcs.get("s-d1").await.expect("service");
    assert_eq!(cfnet_entries(&service.metadata)[0].0, "Update");

    // r2 goes: the VirtualService loses its path and its ownerReference.
    delete_route(&client, &ns, "r2").await;
    eventually_eq(
        "only r1 owns the VirtualService",
        T,
        vec!["r1".to_string()],
        || async { owner_names(&vss.get(&vs_name).await.expect("vs").metadata) },
    )
    .await;
    let updated = vss.get(&vs_name).await.expect("vs");
    let entries = cfnet_entries(&updated.metadata);
    assert_eq!(entries.len(), 1, "one entry of ours: {entries:?}");
    let (operation, fields) = &entries[0];
    assert_eq!(operation, "Apply");
    let owners = fields["f:metadata"]["f:ownerReferences"]
        .as_object()
        .expect("our entry owns the ownerReferences");
    assert_eq!(owners.len(), 1, "only r1's: {owners:?}");
    for field in ["f:labels", "f:annotations"] {
        assert!(fields["f:metadata"][field].is_object(), "{field}: {fields}");
    }
    assert!(fields["f:spec"].is_object(), "{fields}");
    assert_eq!(
        virtual_services(&client, &ns).await,
        vec![vs(HOST, &[(&["/a"], &["s-d1"])])]
    );

    // Another manager edits our spec: repaired as before, and our entry still owns it.
    vss.patch(
        &vs_name,
        &PatchParams {
            field_manager: Some("evil".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"spec": {"http": [{"route": [{"destination": {"host": "evil"}}]}]}})),
    )
    .await
    .expect("edit vs");
    eventually_eq(
        "edited vs restored",
        Duration::from_secs(10),
        vec![vs(HOST, &[(&["/a"], &["s-d1"])])],
        || virtual_services(&client, &ns),
    )
    .await;
    let repaired = vss.get(&vs_name).await.expect("vs");
    let entries = cfnet_entries(&repaired.metadata);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "Apply");
    assert!(entries[0].1["f:spec"].is_object(), "{entries:?}");
    c.stop().await;
}

/// `--events problems`: a programmed Route gets no `Created` Event and a recovered one no `Programmed`,
/// while the Warning that says why a Route is not programmed is still published.
#[tokio::test]
async fn with_events_problems_only_warnings_are_published() {
    let client = client().await;
    let ns = namespace(&client, "events").await;
    let mut config = config(&ns);
    config.events = cfnet_controller::Events::Problems;
    let c = Running::start(client.clone(), config).await;
    apply(&client, &ns, &one("good", "hostname", "/good", "d-good")).await;
    apply(&client, &ns, &two_destinations("bad", 50, 20)).await;
    eventually_eq("good route Ready", T, Some("True".to_string()), || async {
        ready(&client, &ns, "good").await.map(|r| r.0)
    })
    .await;
    eventually("a Warning event names the problem", T, || async {
        let evs = events_for(&client, &ns, "bad").await;
        if evs.iter().any(|(reason, _)| reason == "Invalid") {
            Ok(())
        } else {
            Err(format!("{evs:?}"))
        }
    })
    .await;
    // Recovering would publish `Programmed` (and `Created` for its Services) with `--events all`.
    apply(&client, &ns, &two_destinations("bad", 80, 20)).await;
    eventually_eq("fixed route Ready", T, Some("True".to_string()), || async {
        ready(&client, &ns, "bad").await.map(|r| r.0)
    })
    .await;
    // Stopping waits for the reconciles in flight, so every Event they would send has been sent.
    c.stop().await;
    assert_eq!(events_for(&client, &ns, "good").await, vec![]);
    let reasons: Vec<String> = events_for(&client, &ns, "bad")
        .await
        .into_iter()
        .map(|(reason, _)| reason)
        .collect();
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r == "Invalid"),
        "only the Warning: {reasons:?}"
    );
}

/// The children the Go controller wrote for a Route whose host has upper case: a VirtualService named and
/// annotated after the FQDN as written, and the destination's Service.
async fn create_go_controller_children(client: &Client, ns: &str, route: &Route, fqdn: &str) {
    let owner = json!([{"apiVersion": cfnet_api::ROUTE_API_VERSION, "kind": "Route",
                        "name": route.name_any(), "uid": route.uid().expect("served route has a uid")}]);
    let svc: Service = serde_json::from_value(json!({
        "metadata": {"name": "s-d1", "ownerReferences": owner,
                     "labels": {cfnet_api::ROUTE_GUID_LABEL: "upper"},
                     "annotations": {cfnet_api::ROUTE_FQDN_ANNOTATION: fqdn}},
        "spec": {"selector": {cfnet_api::APP_GUID_LABEL: "app", cfnet_api::PROCESS_TYPE_LABEL: "web"},
                 "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
    }))
    .unwrap();
    Api::<Service>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &svc)
        .await
        .expect("go controller's service");
    let vs: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"name": cfnet_translate::virtual_service_name(fqdn), "ownerReferences": owner,
                     "annotations": {cfnet_api::FQDN_ANNOTATION: fqdn}},
        "spec": {"hosts": [fqdn], "gateways": [GATEWAY],
                 "http": [{"route": [{"destination": {"host": format!("s-d1.{ns}.svc.cluster.local")}}]}]}
    }))
    .unwrap();
    vs_api(client, ns)
        .create(&PostParams::default(), &vs)
        .await
        .expect("go controller's virtual service");
}

/// F4 on upgrade: the Go controller's VirtualService for `Upper.apps.example.com` is replaced by the one
/// for the lower-case FQDN (a new name, the hash of the lower-case FQDN) and then pruned; the Service keeps
/// its identity (same uid: updated in place, never recreated).
#[tokio::test]
async fn a_go_controller_virtual_service_for_a_mixed_case_fqdn_is_replaced_then_pruned() {
    let client = client().await;
    let ns = namespace(&client, "upper").await;
    let fqdn = "Upper.apps.example.com";
    apply(&client, &ns, &one("upper", "Upper", "", "d1")).await;
    let routes: Api<Route> = Api::namespaced(client.clone(), &ns);
    let served = routes.get("upper").await.expect("route");
    create_go_controller_children(&client, &ns, &served, fqdn).await;
    let svcs: Api<Service> = Api::namespaced(client.clone(), &ns);
    let uid = svcs.get("s-d1").await.expect("service").uid();

    let c = Running::in_namespace(&client, &ns).await;
    let vss = vs_api(&client, &ns);
    let lower = cfnet_translate::virtual_service_name(&fqdn.to_ascii_lowercase());
    eventually_eq(
        "only the lower-case FQDN's VirtualService",
        T,
        BTreeSet::from([lower.clone()]),
        || names(&vss),
    )
    .await;
    let vs = vss.get(&lower).await.expect("new virtual service");
    assert_eq!(vs.data["spec"]["hosts"], json!(["upper.apps.example.com"]));
    assert_eq!(svcs.get("s-d1").await.expect("service").uid(), uid);
    c.stop().await;
}
