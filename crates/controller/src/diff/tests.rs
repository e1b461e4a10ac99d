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
