use cfnet_api::fixtures::{destination, route};
use cfnet_translate::{ClaimIndex, translate_fqdn};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::DynamicObject;

use super::*;

fn translation(internal: bool) -> cfnet_translate::FqdnTranslation {
    let domain = if internal {
        "apps.internal"
    } else {
        "apps.example.com"
    };
    let r = route("r")
        .namespace("ns")
        .host("backend")
        .domain(domain, internal)
        .uid("r-uid")
        .space_and_org("s", "o")
        .destination(destination("d", "app").port(8080).weight(100))
        .build();
    let key = FqdnKey {
        namespace: "ns".into(),
        fqdn: r.spec.fqdn().into(),
    };
    let settings = Settings {
        gateway: "g/gw".into(),
        ..Default::default()
    };
    translate_fqdn(&key, &[&r], &ClaimIndex::default(), &settings)
}

fn written_by(mut object: DynamicObject, manager: &str) -> DynamicObject {
    object.metadata.managed_fields = Some(vec![ManagedFieldsEntry {
        manager: Some(manager.into()),
        ..Default::default()
    }]);
    object
}

/// The Go controller's mesh VirtualService had no destination port (issue 12's F1): the controller
/// adopts it and the diff names exactly that field.
#[test]
fn an_old_mesh_virtual_service_is_adopted_with_the_port_fix() {
    let desired = translation(true).virtual_service.unwrap();
    let mut served: DynamicObject =
        serde_json::from_value(serde_json::to_value(&desired).unwrap()).unwrap();
    served.data["spec"]["http"][0]["route"][0]["destination"]
        .as_object_mut()
        .unwrap()
        .remove("port");
    let c = update(&desired, &written_by(served.clone(), "routecontroller"));
    assert_eq!(c.action, ChangeAction::Adopt);
    assert_eq!(
        c.fields,
        [FieldChange {
            path: "spec.http[0].route[0].destination.port.number".into(),
            from: None,
            to: Some(json!(8080)),
        }]
    );
    assert!(c.message.unwrap().contains("written by routecontroller"));

    let c = update(&desired, &written_by(served, FIELD_MANAGER));
    assert_eq!(c.action, ChangeAction::Update, "written by cfnet before");
}

/// Only the fields cfnet sets are compared: server defaults and others' labels are no change.
#[test]
fn fields_cfnet_does_not_set_are_no_change() {
    let desired = translation(false).services[0].clone();
    let mut served = desired.clone();
    let spec = served.spec.as_mut().unwrap();
    spec.cluster_ip = Some("10.0.0.1".into());
    served
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("someone.else/label".into(), "x".into());
    served
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(cfnet_api::ROUTE_GUID_LABEL);
    let c = update(&desired, &served);
    assert_eq!(c.action, ChangeAction::Adopt, "no managedFields at all");
    assert_eq!(
        c.fields,
        [FieldChange {
            path: format!("metadata.labels[\"{}\"]", cfnet_api::ROUTE_GUID_LABEL),
            from: None,
            to: Some(json!("r")),
        }],
        "{:#?}",
        c.fields
    );
}

fn object_change(action: ChangeAction) -> ObjectChange {
    ObjectChange {
        action,
        kind: "Service",
        namespace: "ns".into(),
        name: "s-d".into(),
        fields: Vec::new(),
        message: None,
    }
}

/// A Service pruned by the key its (old, upper-case) FQDN annotation names and applied by the key
/// that needs it is shown as the apply, whichever key comes first; otherwise the first entry stays.
#[test]
fn a_write_that_keeps_an_object_wins_over_its_prune() {
    for order in [
        [ChangeAction::Delete, ChangeAction::Adopt],
        [ChangeAction::Adopt, ChangeAction::Delete],
    ] {
        let mut out = BTreeMap::new();
        for action in order {
            record(&mut out, object_change(action));
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out.values().next().unwrap().action, ChangeAction::Adopt);
    }
    let mut out = BTreeMap::new();
    record(&mut out, object_change(ChangeAction::Create));
    record(&mut out, object_change(ChangeAction::Update));
    assert_eq!(out.values().next().unwrap().action, ChangeAction::Create);
}

/// A live Route without our finalizer gains it, a deleting one releases it, and a Route without a
/// status gets its first Ready condition (without the clock's transition time); a Route only in the
/// files is not reported (the controller does not create Routes).
#[test]
fn route_changes_are_finalizers_and_the_ready_condition() {
    use std::sync::Arc;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    let at = |name: &str, path: &str| {
        route(name)
            .namespace("ns")
            .host("a")
            .path(path)
            .uid(&format!("{name}-uid"))
            .destination(destination(&format!("d-{name}"), "app").weight(100))
            .build()
    };
    let fresh = at("fresh", "/a");
    let mut gone = at("gone", "/b");
    gone.metadata.finalizers = Some(vec![FINALIZER.to_owned()]);
    gone.metadata.deletion_timestamp = Some(Time("2026-01-01T00:00:00Z".parse().unwrap()));
    let only_in_files = at("new", "/c");
    let routes: Vec<Arc<Route>> = [&fresh, &gone, &only_in_files]
        .into_iter()
        .map(|r| Arc::new(r.clone()))
        .collect();
    let key = FqdnKey {
        namespace: "ns".into(),
        fqdn: fresh.spec.fqdn().into(),
    };
    let settings = Settings {
        gateway: "g/gw".into(),
        ..Default::default()
    };
    let translation = translate(&key, &routes, &ClaimIndex::default(), &settings);
    let snapshot = crate::index::Snapshot::default();
    let plan = plan(&key, &routes, &translation, &snapshot, settings.routing_api);
    let live: HashMap<ObjId, Route> = [&fresh, &gone]
        .into_iter()
        .map(|r| (obj_id(r), r.clone()))
        .collect();
    let mut out = Vec::new();
    route_changes(&plan, &live, Utc::now(), &mut out);
    let lines: Vec<String> = out
        .iter()
        .flat_map(|c| {
            c.fields.iter().map(move |f| {
                format!(
                    "{} {}: {} → {}",
                    c.name,
                    f.path,
                    render_value(f.from.as_ref()),
                    render_value(f.to.as_ref())
                )
            })
        })
        .collect();
    let vs = cfnet_translate::virtual_service_name(&key.fqdn);
    assert_eq!(
        lines,
        [
            format!(r#"fresh metadata.finalizers: <none> → ["{FINALIZER}"]"#),
            format!(
                r#"fresh status.conditions[Ready].message: <none> → "programmed in VirtualService ns/{vs}""#
            ),
            r#"fresh status.conditions[Ready].reason: <none> → "Programmed""#.to_owned(),
            r#"fresh status.conditions[Ready].status: <none> → "True""#.to_owned(),
            format!(r#"gone metadata.finalizers: ["{FINALIZER}"] → <none>"#),
        ]
    );
    assert!(out.iter().all(|c| c.action == ChangeAction::Update));
}
