//! Facts about the children (Services and VirtualServices): whether we own one, and whether a server-side
//! apply of the desired object would change the cached one. Pure functions, unit tested.

use std::collections::BTreeSet;

use cfnet_api::VirtualService;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::index::trim;

/// API group of the Route; an ownerReference to a Route of this group marks an object as ours. This is
/// what the Go controller wrote too, so an upgrade adopts its objects.
pub const ROUTE_GROUP: &str = "networking.cloudfoundry.org";

fn is_route_ref(r: &OwnerReference) -> bool {
    r.kind == "Route" && r.api_version.split('/').next() == Some(ROUTE_GROUP)
}

/// Ours = carries an ownerReference to a networking.cloudfoundry.org Route.
pub fn is_ours(meta: &ObjectMeta) -> bool {
    meta.owner_references.iter().flatten().any(is_route_ref)
}

/// Names of the Routes that own the object.
pub fn owner_route_names(meta: &ObjectMeta) -> impl Iterator<Item = &str> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| is_route_ref(r))
        .map(|r| r.name.as_str())
}

fn route_refs(meta: &ObjectMeta) -> BTreeSet<(&str, &str, &str)> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|r| is_route_ref(r))
        .map(|r| (r.api_version.as_str(), r.name.as_str(), r.uid.as_str()))
        .collect()
}

/// True when every field `desired` sets is present in `actual` with the same value: objects compare
/// key by key (extra keys in `actual` are server defaults or other managers' fields, which an apply
/// leaves alone), lists element by element with equal length. An empty desired value matches a
/// missing one (omitted-when-empty serialisation).
pub fn json_contains(actual: Option<&Value>, desired: &Value) -> bool {
    match (actual, desired) {
        (None | Some(Value::Null), d) => is_empty(d),
        (Some(Value::Object(a)), Value::Object(d)) => {
            d.iter().all(|(k, dv)| json_contains(a.get(k), dv))
        }
        (Some(Value::Array(a)), Value::Array(d)) => {
            a.len() == d.len() && a.iter().zip(d).all(|(av, dv)| json_contains(Some(av), dv))
        }
        (Some(a), d) => a == d || (is_empty(a) && is_empty(d)),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn meta_matches(actual: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let subset = |a: &Option<std::collections::BTreeMap<String, String>>,
                  d: &Option<std::collections::BTreeMap<String, String>>| {
        d.iter()
            .flatten()
            .all(|(k, v)| a.as_ref().and_then(|a| a.get(k)) == Some(v))
    };
    subset(&actual.labels, &desired.labels)
        && subset(&actual.annotations, &desired.annotations)
        && route_refs(actual) == route_refs(desired)
}

/// Would applying `desired` change `actual`? Labels and annotations we set, our ownerReferences and the
/// spec fields we set are compared; server defaults (clusterIP, targetPort, …) are ignored.
pub fn service_needs_apply(desired: &Service, actual: &Service) -> bool {
    if !meta_matches(&actual.metadata, &desired.metadata) {
        return true;
    }
    let (Ok(d), Ok(a)) = (
        serde_json::to_value(&desired.spec),
        serde_json::to_value(&actual.spec),
    ) else {
        return true;
    };
    !json_contains(Some(&a), &d)
}

/// The part of a Service's spec the controller sets (see the translation core's Service builder) and so
/// the only part `service_needs_apply` reads. Applied to cached Services to keep the index small.
pub fn trim_service(svc: &mut Service) {
    svc.status = None;
    if let Some(spec) = svc.spec.take() {
        svc.spec = Some(ServiceSpec {
            ports: spec.ports,
            selector: spec.selector,
            ..ServiceSpec::default()
        });
    }
}

/// What the index keeps of a VirtualService: its metadata and a digest of its spec. The spec is ours as
/// a whole and only ever compared for equality, so a digest answers as well as the JSON tree at a
/// fraction of the memory (a `serde_json::Value` tree was most of the controller's memory at 10,000
/// routes).
#[derive(Clone, Debug)]
pub struct CachedVirtualService {
    pub metadata: ObjectMeta,
    spec_digest: [u8; 32],
}

impl CachedVirtualService {
    /// The only way one is made, so every cached VirtualService is trimmed like the other kinds.
    pub fn new(obj: DynamicObject) -> Self {
        let mut metadata = obj.metadata;
        trim(&mut metadata);
        CachedVirtualService {
            spec_digest: spec_digest(obj.data.get("spec")),
            metadata,
        }
    }
}

/// SHA-256 of the spec's JSON. `serde_json::Value` objects are sorted maps, so equal specs have equal
/// bytes; an empty or missing spec counts as `null` (omitted-when-empty serialisation).
fn spec_digest(spec: Option<&Value>) -> [u8; 32] {
    let spec = spec.filter(|v| !is_empty(v)).unwrap_or(&Value::Null);
    // Serialising a Value cannot fail (its map keys are strings); an empty buffer would only force an apply.
    Sha256::digest(serde_json::to_vec(spec).unwrap_or_default()).into()
}

/// Would applying `desired` change `actual`? The VirtualService spec is ours as a whole (its lists are
/// atomic and the CRD sets no defaults), so it must be equal; metadata compares like a Service's.
pub fn virtual_service_needs_apply(
    desired: &VirtualService,
    actual: &CachedVirtualService,
) -> bool {
    if !meta_matches(&actual.metadata, &desired.metadata) {
        return true;
    }
    let Ok(d) = serde_json::to_value(&desired.spec) else {
        return true;
    };
    spec_digest(Some(&d)) != actual.spec_digest
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route_ref(name: &str) -> OwnerReference {
        OwnerReference {
            api_version: "networking.cloudfoundry.org/v1alpha1".into(),
            kind: "Route".into(),
            name: name.into(),
            uid: format!("{name}-uid"),
            ..Default::default()
        }
    }

    fn service(value: Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn ownership_is_an_owner_reference_to_a_route() {
        let mut meta = ObjectMeta::default();
        assert!(!is_ours(&meta));
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "Route".into(),
            ..Default::default()
        }]);
        assert!(!is_ours(&meta), "a Route of another group is not ours");
        meta.owner_references
            .as_mut()
            .unwrap()
            .push(route_ref("r1"));
        assert!(is_ours(&meta));
        assert_eq!(owner_route_names(&meta).collect::<Vec<_>>(), ["r1"]);
    }

    #[test]
    fn server_defaults_do_not_trigger_an_apply() {
        let desired = service(json!({
            "metadata": {"name": "s-d", "labels": {"a": "1"}, "annotations": {"f": "x"},
                         "ownerReferences": [serde_json::to_value(route_ref("r")).unwrap()]},
            "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        }));
        let mut actual = service(json!({
            "metadata": {"name": "s-d", "labels": {"a": "1", "extra": "y"}, "annotations": {"f": "x"},
                         "resourceVersion": "7", "uid": "u",
                         "ownerReferences": [serde_json::to_value(route_ref("r")).unwrap()]},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.0.0.1", "type": "ClusterIP",
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080}]}
        }));
        assert!(!service_needs_apply(&desired, &actual));
        // The index caches trimmed Services: trimming must not change the answer.
        let mut trimmed = actual.clone();
        trim_service(&mut trimmed);
        assert!(trimmed.spec.as_ref().unwrap().cluster_ip.is_none());
        assert!(!service_needs_apply(&desired, &trimmed));

        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9090;
        assert!(
            service_needs_apply(&desired, &actual),
            "an edited port must be restored"
        );
        trim_service(&mut actual);
        assert!(service_needs_apply(&desired, &actual));

        let mut relabelled = desired.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("a".into(), "2".into());
        assert!(service_needs_apply(
            &relabelled,
            &service(json!({"metadata": desired.metadata, "spec": desired.spec}))
        ));

        let mut other_owner = desired.clone();
        other_owner.metadata.owner_references = Some(vec![route_ref("other")]);
        assert!(service_needs_apply(
            &other_owner,
            &service(json!({"metadata": desired.metadata, "spec": desired.spec}))
        ));
    }

    #[test]
    fn virtual_service_spec_must_be_equal() {
        let desired: VirtualService = serde_json::from_value(json!({
            "apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
            "metadata": {"name": "vs-1", "annotations": {"cloudfoundry.org/fqdn": "a.b"}},
            "spec": {"hosts": ["a.b"], "gateways": ["g"], "http": [{"route": [{"destination": {"host": "s-1"}, "weight": 100}]}]}
        }))
        .unwrap();
        let mut actual: DynamicObject =
            serde_json::from_value(serde_json::to_value(&desired).unwrap()).unwrap();
        assert!(!virtual_service_needs_apply(
            &desired,
            &CachedVirtualService::new(actual.clone())
        ));
        // Key order on the wire does not matter.
        let reordered: DynamicObject = serde_json::from_str(
            r#"{"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                "metadata": {"name": "vs-1", "annotations": {"cloudfoundry.org/fqdn": "a.b"}},
                "spec": {"http": [{"route": [{"weight": 100, "destination": {"host": "s-1"}}]}], "gateways": ["g"], "hosts": ["a.b"]}}"#,
        )
        .unwrap();
        assert!(!virtual_service_needs_apply(
            &desired,
            &CachedVirtualService::new(reordered)
        ));
        actual.data["spec"]["http"][0]["route"][0]["headers"] =
            json!({"request": {"set": {"x": "y"}}});
        assert!(
            virtual_service_needs_apply(&desired, &CachedVirtualService::new(actual)),
            "a field we do not set inside http is drift"
        );
    }

    #[test]
    fn contains_handles_empty_and_lists() {
        assert!(json_contains(None, &json!({})));
        assert!(json_contains(
            Some(&json!({"a": [1, 2], "b": 3})),
            &json!({"a": [1, 2]})
        ));
        assert!(!json_contains(
            Some(&json!({"a": [1, 2, 3]})),
            &json!({"a": [1, 2]})
        ));
        assert!(!json_contains(Some(&json!({"a": 1})), &json!({"a": 2})));
    }
}
