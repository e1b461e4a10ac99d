use std::collections::BTreeMap;

use cfnet_api::fixtures;
use cfnet_translate::{Settings, virtual_service_name};
use kube::api::DynamicObject;
use serde_json::json;

use super::store::{TOMBSTONES_KEPT, Tombstones};
use super::*;

fn route(ns: &str, name: &str, host: &str, created: &str, guids: &[&str]) -> Route {
    guids
        .iter()
        .fold(
            fixtures::route(name)
                .namespace(ns)
                .host(host)
                .created(created)
                .uid(&format!("{name}-uid")),
            |r, g| r.destination(fixtures::destination(g, "a").selector(BTreeMap::new())),
        )
        .build()
}

fn key(ns: &str, host: &str) -> FqdnKey {
    FqdnKey {
        namespace: ns.into(),
        fqdn: format!("{host}.apps.example.com").into(),
    }
}

fn service(value: serde_json::Value) -> Cached<Service> {
    Cached::new(serde_json::from_value(value).unwrap())
}

#[test]
fn a_changed_host_rebuilds_old_and_new_fqdn() {
    let mut index = Index::default();
    index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
    let affected = index.apply_route(route("ns", "r", "b", "2024-01-01T00:00:00Z", &["d"]));
    assert!(
        affected.contains(&key("ns", "a")) && affected.contains(&key("ns", "b")),
        "{affected:?}"
    );
    assert!(index.routes(&key("ns", "a")).is_empty());
}

#[test]
fn oldest_claim_holds_and_release_re_enqueues_the_waiting_claimant() {
    let mut index = Index::default();
    index.apply_route(route("ns", "old", "a", "2024-01-01T00:00:00Z", &["d"]));
    index.apply_route(route("ns", "new", "b", "2024-02-01T00:00:00Z", &["d"]));
    assert_eq!(index.destination_holder("ns", "d"), Some("old"));
    index.apply_route(route("other", "x", "a", "2023-01-01T00:00:00Z", &[]));
    assert_eq!(
        index.external_fqdn_holder("a.apps.example.com"),
        Some("other")
    );

    let affected = index.delete_route(&("ns".into(), "old".into()));
    assert_eq!(index.destination_holder("ns", "d"), Some("new"));
    assert!(
        affected.contains(&key("ns", "b")),
        "the new holder's FQDN must be rebuilt: {affected:?}"
    );
}

#[test]
fn a_cached_route_keeps_only_what_the_translation_reads() {
    let mut r = route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]);
    r.metadata.labels = Some(BTreeMap::from([
        ("cloudfoundry.org/space_guid".to_string(), "s".to_string()),
        ("cloudfoundry.org/org_guid".to_string(), "o".to_string()),
        (
            "app.kubernetes.io/part-of".to_string(),
            "cloudfoundry".to_string(),
        ),
    ]));
    r.metadata.annotations = Some(BTreeMap::from([(
        "kubectl.kubernetes.io/last-applied-configuration".to_string(),
        "{}".to_string(),
    )]));
    let cached = cached_route(r.clone());
    assert_eq!(
        cached
            .metadata
            .labels
            .unwrap()
            .into_keys()
            .collect::<Vec<_>>(),
        ["cloudfoundry.org/org_guid", "cloudfoundry.org/space_guid"]
    );
    assert!(cached.metadata.annotations.is_none());
    assert_eq!(cached.spec, r.spec);
}

#[test]
fn status_only_updates_do_not_enqueue() {
    let mut index = Index::default();
    let r = route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]);
    index.apply_route(r.clone());
    let mut with_status = r.clone();
    with_status.metadata.finalizers = Some(vec!["x".into()]);
    with_status.status = Some(Default::default());
    assert!(index.apply_route(with_status).is_empty());
}

#[test]
fn relist_drops_what_is_gone_only_in_scope() {
    let mut index = Index::default();
    index.apply_route(route("ns1", "r1", "a", "2024-01-01T00:00:00Z", &[]));
    index.apply_route(route("ns2", "r2", "a", "2024-01-01T00:00:00Z", &[]));
    let affected = index.replace_routes(Some("ns1"), Vec::new());
    // ns2's route now holds the external FQDN, so its key is rebuilt too.
    assert_eq!(
        affected.into_iter().collect::<Vec<_>>(),
        vec![key("ns1", "a"), key("ns2", "a")]
    );
    assert_eq!(
        index.all_keys().into_iter().collect::<Vec<_>>(),
        vec![key("ns2", "a")]
    );
}

#[test]
fn children_map_to_their_fqdn_and_foreign_virtual_services_by_name() {
    let mut index = Index::default();
    index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
    let svc = service(json!({
        "metadata": {"namespace": "ns", "name": "s-d", "resourceVersion": "1",
                     "annotations": {"cloudfoundry.org/route-fqdn": "a.apps.example.com"}}
    }));
    assert!(index.apply_child(svc).contains(&key("ns", "a")));
    let foreign: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"namespace": "ns", "name": virtual_service_name("a.apps.example.com"), "resourceVersion": "2"}
    }))
    .unwrap();
    assert!(
        index
            .apply_child(Cached::<VirtualService>::new(foreign))
            .contains(&key("ns", "a"))
    );
    let k = key("ns", "a");
    let settings = Settings {
        gateway: "g".into(),
        ..Default::default()
    };
    let translation = crate::plan::translate(&k, &index.routes(&k), &index, &settings);
    let snap = index.snapshot(&k, &translation);
    assert!(snap.services.contains_key("s-d"));
    assert_eq!(snap.virtual_services.len(), 1);
    assert_eq!(
        index.owned_counts(),
        [("Service", 0), ("VirtualService", 0), ("HTTPRoute", 0)]
    );
}

fn owned_service(rv: &str, port: i32) -> Cached<Service> {
    service(json!({
        "metadata": {"namespace": "ns", "name": "s-d", "resourceVersion": rv,
                     "annotations": {"cloudfoundry.org/route-fqdn": "a.apps.example.com"},
                     "ownerReferences": [{"apiVersion": "networking.cloudfoundry.org/v1alpha1",
                                          "kind": "Route", "name": "r", "uid": "r-uid"}]},
        "spec": {"ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
    }))
}

#[test]
fn a_virtual_service_name_maps_to_the_id_of_its_key() {
    let k = key("ns", "a");
    let name = virtual_service_name(&k.fqdn);
    assert_eq!(vs_id_of_name(&k.namespace, &name), Some(vs_id(&k)));
    assert_ne!(
        vs_id_of_name(&k.namespace, &virtual_service_name("b.apps.example.com")),
        Some(vs_id(&k))
    );
    for foreign in ["vs-1234", "my-vs", "vs-", &name[1..]] {
        assert_eq!(vs_id_of_name(&k.namespace, foreign), None, "{foreign}");
    }
}

#[test]
fn an_http_route_name_or_shard_name_maps_to_the_id_of_its_key() {
    let k = key("ns", "a");
    let name = cfnet_translate::http_route_name(&k.fqdn);
    assert_eq!(hr_id_of_name(&k.namespace, &name), Some(vs_id(&k)));
    let shard = format!("{name}-01");
    assert_eq!(hr_id_of_name(&k.namespace, &shard), Some(vs_id(&k)));
    let glued = format!("{name}01");
    let vs = virtual_service_name(&k.fqdn);
    for foreign in ["hr-1234", "my-hr", "hr-", &name[1..], &glued, &vs] {
        assert_eq!(hr_id_of_name(&k.namespace, foreign), None, "{foreign}");
    }
}

/// The memory of 10,000 routes depends on it: one copy of a namespace and of a key for all maps.
#[test]
fn ids_and_keys_share_one_copy_of_their_strings() {
    let mut index = Index::default();
    index.apply_route(route("ns", "r", "a", "2024-01-01T00:00:00Z", &["d"]));
    index.apply_child(owned_service("10", 8080));
    let (key, _) = index.routes.iter().next().unwrap();
    let (id, route_key) = index.route_keys.iter().next().unwrap();
    let (vs_id, vs_key) = index.vs_names.iter().next().unwrap();
    let (by_key, names) = index.services.by_key.iter().next().unwrap();
    let svc_id = index.services.ids().next().unwrap();
    let svc = index.services.get(svc_id).unwrap();
    for ns in [
        &id.0,
        &route_key.namespace,
        &vs_id.0,
        &vs_key.namespace,
        &svc_id.0,
    ] {
        assert!(Arc::ptr_eq(&key.namespace, ns));
    }
    assert!(Arc::ptr_eq(&svc.meta.namespace, &key.namespace));
    for fqdn in [&route_key.fqdn, &vs_key.fqdn, &by_key.fqdn] {
        assert!(Arc::ptr_eq(&key.fqdn, fqdn));
    }
    assert!(Arc::ptr_eq(&svc_id.1, &svc.meta.name));
    assert!(Arc::ptr_eq(svc.meta.fqdn.as_ref().unwrap(), &key.fqdn));
    assert!(Arc::ptr_eq(&svc.meta.owners[0], &id.1));
    assert!(Arc::ptr_eq(&svc_id.1, names.iter().next().unwrap()));
}

fn cached_version(index: &Index) -> Option<String> {
    index
        .services
        .get(&("ns".into(), "s-d".into()))
        .and_then(|s| s.meta.resource_version.as_deref().map(str::to_owned))
}

#[test]
fn an_older_apply_response_does_not_hide_a_newer_edit() {
    let mut index = Index::default();
    // The watch delivers someone's edit (rv 11) before the reconcile writes back its apply response (rv 10).
    index.apply_child(owned_service("11", 9999));
    index.record_write(ChildWrite::Applied(owned_service("10", 8080)));
    assert!(index.apply_child(owned_service("10", 8080)).is_empty());
    assert_eq!(
        cached_version(&index).as_deref(),
        Some("11"),
        "the edit must stay visible, so it gets repaired"
    );
    // A newer version still replaces it.
    index.record_write(ChildWrite::Applied(owned_service("12", 8080)));
    assert_eq!(cached_version(&index).as_deref(), Some("12"));
}

#[test]
fn an_older_apply_response_does_not_resurrect_a_deleted_child() {
    let mut index = Index::default();
    index.apply_child(owned_service("10", 8080));
    let id: ObjId = ("ns".into(), "s-d".into());
    index.delete_child::<Service>(&id, Some(&"12".to_string()));
    index.record_write(ChildWrite::Applied(owned_service("11", 8080)));
    assert!(index.apply_child(owned_service("11", 8080)).is_empty());
    assert!(index.services.get(&id).is_none());
    // Re-created later: a newer version is cached again.
    index.apply_child(owned_service("13", 8080));
    assert_eq!(cached_version(&index).as_deref(), Some("13"));
    // The reconcile's own delete takes it out at once.
    index.record_write(ChildWrite::<Service>::Deleted(id.clone()));
    assert!(index.services.get(&id).is_none());
}

#[test]
fn tombstones_are_bounded() {
    let mut t = Tombstones::default();
    for i in 0..(3 * TOMBSTONES_KEPT as u64) {
        t.bury(
            ("ns".into(), format!("s-{i}").into()),
            Some(i.to_string().as_str()),
        );
    }
    assert!(t.len() <= 2 * TOMBSTONES_KEPT);
    let newest = 3 * TOMBSTONES_KEPT as u64 - 1;
    assert!(t.outlived(
        &("ns".into(), format!("s-{newest}").into()),
        Some(&newest.to_string())
    ));
}

/// F4 on upgrade: the Go controller keyed and annotated a VirtualService with the FQDN as written
/// (`a.Apps.Example.COM`); cfnet keys FQDNs lower-case. The old VirtualService must land under the one
/// lower-case key, so that the reconcile that applies its successor (the hash of the lower-case FQDN) prunes it.
#[test]
fn a_mixed_case_fqdn_annotation_maps_to_the_lower_case_key() {
    let mut index = Index::default();
    index.apply_route(route("ns", "r", "A", "2024-01-01T00:00:00Z", &["d"]));
    let old_name = virtual_service_name("A.Apps.Example.COM");
    let old: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
        "metadata": {"namespace": "ns", "name": old_name, "resourceVersion": "3",
                     "annotations": {"cloudfoundry.org/fqdn": "A.Apps.Example.COM"},
                     "ownerReferences": [{"apiVersion": "networking.cloudfoundry.org/v1alpha1",
                                          "kind": "Route", "name": "r", "uid": "r-uid"}]}
    }))
    .unwrap();
    let affected = index.apply_child(Cached::<VirtualService>::new(old));
    assert_eq!(
        affected.into_iter().collect::<Vec<_>>(),
        vec![key("ns", "a")]
    );

    let k = key("ns", "a");
    let settings = Settings {
        gateway: "g".into(),
        ..Default::default()
    };
    let translation = crate::plan::translate(&k, &index.routes(&k), &index, &settings);
    let snap = index.snapshot(&k, &translation);
    let cached: Vec<&str> = snap.virtual_services.keys().map(|n| &**n).collect();
    assert_eq!(cached, vec![old_name.as_str()]);
    assert_ne!(
        old_name,
        virtual_service_name(&k.fqdn),
        "the successor has another name, so the old one is pruned, not updated"
    );
}
