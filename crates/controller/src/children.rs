//! Facts about the children (Services and VirtualServices): whether we own one, and whether a server-side
//! apply of the desired object would change the cached one. Pure functions, unit tested.

use std::collections::{BTreeMap, BTreeSet};

use cfnet_api::VirtualService;
use cfnet_translate::{CHILD_ANNOTATIONS, CHILD_LABELS};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

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

/// An ownerReference to a Route: (apiVersion, name, uid), the fields an apply of ours would set.
type RouteRef = (Box<str>, Box<str>, Box<str>);

/// What the index keeps of a child's metadata: identity, revision, our ownerReferences, and the labels
/// and annotations under the keys cfnet writes ([`CHILD_LABELS`], [`CHILD_ANNOTATIONS`]). Others'
/// keys are never compared (an apply leaves them alone), so they are not kept: with 10,000 routes the
/// index holds 20,000 children, and full `ObjectMeta`s were a third of the controller's memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildMeta {
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    labels: Vec<(&'static str, Box<str>)>,
    annotations: Vec<(&'static str, Box<str>)>,
    route_refs: Vec<RouteRef>,
}

/// The entries of `map` under `keys`, with the key as the static string (no copy kept).
fn known_entries(
    map: Option<BTreeMap<String, String>>,
    keys: &[&'static str],
) -> Vec<(&'static str, Box<str>)> {
    let mut map = map.unwrap_or_default();
    keys.iter()
        .filter_map(|k| map.remove(*k).map(|v| (*k, v.into_boxed_str())))
        .collect()
}

impl ChildMeta {
    pub fn new(meta: ObjectMeta) -> Self {
        let route_refs = meta
            .owner_references
            .into_iter()
            .flatten()
            .filter(is_route_ref)
            .map(|r| (r.api_version.into(), r.name.into(), r.uid.into()))
            .collect();
        ChildMeta {
            namespace: meta.namespace.unwrap_or_default(),
            name: meta.name.unwrap_or_default(),
            uid: meta.uid,
            resource_version: meta.resource_version,
            labels: known_entries(meta.labels, &CHILD_LABELS),
            annotations: known_entries(meta.annotations, &CHILD_ANNOTATIONS),
            route_refs,
        }
    }

    /// (namespace, name)
    pub fn id(&self) -> (String, String) {
        (self.namespace.clone(), self.name.clone())
    }

    /// Ours = carries an ownerReference to a networking.cloudfoundry.org Route.
    pub fn is_ours(&self) -> bool {
        !self.route_refs.is_empty()
    }

    /// Names of the Routes that own the object.
    pub fn owner_route_names(&self) -> impl Iterator<Item = &str> {
        self.route_refs.iter().map(|(_, name, _)| &**name)
    }

    /// The value of one of [`CHILD_ANNOTATIONS`].
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v)
    }

    /// Would an apply of `desired`'s metadata change nothing? Every label and annotation it sets must
    /// be present with its value, and the Route ownerReferences must be the same set.
    fn matches(&self, desired: &ObjectMeta) -> bool {
        let subset = |d: &Option<BTreeMap<String, String>>, actual: &[(&str, Box<str>)]| {
            d.iter().flatten().all(|(k, v)| {
                actual
                    .iter()
                    .any(|(ak, av)| *ak == k.as_str() && **av == *v.as_str())
            })
        };
        let mut actual: Vec<(&str, &str, &str)> = self
            .route_refs
            .iter()
            .map(|(a, n, u)| (&**a, &**n, &**u))
            .collect();
        actual.sort_unstable();
        actual.dedup();
        subset(&desired.labels, &self.labels)
            && subset(&desired.annotations, &self.annotations)
            && actual.into_iter().eq(route_refs(desired))
    }
}

/// One port as far as the controller sets it (name, port, protocol); server defaults are not kept.
#[derive(Clone, Debug, PartialEq, Serialize)]
struct PortFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<Box<str>>,
    port: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    protocol: Option<Box<str>>,
}

/// The part of a Service's spec the controller sets (see the translation core's Service builder) and so
/// the only part `service_needs_apply` reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
struct ServiceFields {
    #[serde(skip_serializing_if = "Option::is_none")]
    ports: Option<Vec<PortFields>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<Vec<(Box<str>, Box<str>)>>,
}

impl ServiceFields {
    fn new(spec: Option<ServiceSpec>) -> Self {
        let Some(spec) = spec else {
            return ServiceFields::default();
        };
        ServiceFields {
            ports: spec.ports.map(|ports| {
                ports
                    .into_iter()
                    .map(|p| PortFields {
                        name: p.name.map(String::into_boxed_str),
                        port: p.port,
                        protocol: p.protocol.map(String::into_boxed_str),
                    })
                    .collect()
            }),
            selector: spec.selector.map(|s| {
                s.into_iter()
                    .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                    .collect()
            }),
        }
    }

    /// The JSON the spec would serialise to (the selector as an object), for `json_contains`.
    fn to_value(&self) -> Value {
        let mut v = serde_json::Map::new();
        if let Some(ports) = &self.ports {
            v.insert(
                "ports".into(),
                serde_json::to_value(ports).unwrap_or(Value::Null),
            );
        }
        if let Some(selector) = &self.selector {
            let map = selector
                .iter()
                .map(|(k, val)| (k.to_string(), Value::String(val.to_string())))
                .collect();
            v.insert("selector".into(), Value::Object(map));
        }
        Value::Object(v)
    }
}

/// What the index keeps of a Service: [`ChildMeta`] and the spec fields the controller sets.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedService {
    pub meta: ChildMeta,
    spec: ServiceFields,
}

impl CachedService {
    pub fn new(svc: Service) -> Self {
        CachedService {
            meta: ChildMeta::new(svc.metadata),
            spec: ServiceFields::new(svc.spec),
        }
    }
}

/// Would applying `desired` change `actual`? Labels and annotations we set, our ownerReferences and the
/// spec fields we set are compared; server defaults (clusterIP, targetPort, …) are ignored.
pub fn service_needs_apply(desired: &Service, actual: &CachedService) -> bool {
    if !actual.meta.matches(&desired.metadata) {
        return true;
    }
    let Ok(d) = serde_json::to_value(&desired.spec) else {
        return true;
    };
    !json_contains(Some(&actual.spec.to_value()), &d)
}

/// What the index keeps of a VirtualService: [`ChildMeta`] and a digest of its spec. The spec is ours as
/// a whole and only ever compared for equality, so a digest answers as well as the JSON tree at a
/// fraction of the memory (a `serde_json::Value` tree was most of the controller's memory at 10,000
/// routes).
#[derive(Clone, Debug, PartialEq)]
pub struct CachedVirtualService {
    pub meta: ChildMeta,
    spec_digest: [u8; 32],
}

impl CachedVirtualService {
    pub fn new(obj: DynamicObject) -> Self {
        CachedVirtualService {
            spec_digest: spec_digest(obj.data.get("spec")),
            meta: ChildMeta::new(obj.metadata),
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
    if !actual.meta.matches(&desired.metadata) {
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
    fn server_defaults_and_others_keys_do_not_trigger_an_apply() {
        let desired = service(json!({
            "metadata": {"name": "s-d", "labels": {"cloudfoundry.org/app_guid": "1"},
                         "annotations": {"cloudfoundry.org/route-fqdn": "x"},
                         "ownerReferences": [serde_json::to_value(route_ref("r")).unwrap()]},
            "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        }));
        let mut actual = service(json!({
            "metadata": {"name": "s-d", "labels": {"cloudfoundry.org/app_guid": "1", "extra": "y"},
                         "annotations": {"cloudfoundry.org/route-fqdn": "x", "other": "z"},
                         "resourceVersion": "7", "uid": "u",
                         "ownerReferences": [serde_json::to_value(route_ref("r")).unwrap(),
                                             {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "c-uid"}]},
            "spec": {"selector": {"app": "x"}, "clusterIP": "10.0.0.1", "type": "ClusterIP",
                     "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "targetPort": 8080}]}
        }));
        let cached = CachedService::new(actual.clone());
        assert!(!service_needs_apply(&desired, &cached));
        // Only what cfnet compares is kept.
        assert_eq!(
            cached.meta.labels,
            [("cloudfoundry.org/app_guid", "1".into())]
        );
        assert_eq!(cached.meta.annotation("other"), None);
        assert_eq!(cached.meta.owner_route_names().collect::<Vec<_>>(), ["r"]);
        assert_eq!(
            cached.spec.to_value(),
            json!({"selector": {"app": "x"}, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
        );

        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9090;
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual.clone())),
            "an edited port must be restored"
        );
        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
        actual.spec.as_mut().unwrap().selector = None;
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual)),
            "a removed selector must be restored"
        );

        let same = CachedService::new(desired.clone());
        let mut relabelled = desired.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("cloudfoundry.org/app_guid".into(), "2".into());
        assert!(service_needs_apply(&relabelled, &same));

        let mut other_owner = desired.clone();
        other_owner.metadata.owner_references = Some(vec![route_ref("other")]);
        assert!(service_needs_apply(&other_owner, &same));
    }

    /// The cache keeps only the labels, annotations and spec fields in `CHILD_LABELS`,
    /// `CHILD_ANNOTATIONS` and `ServiceFields`. Should the translation ever set another, a child cached
    /// from its own desired form would differ from it and this fails (instead of drift going unseen).
    #[test]
    fn the_cache_keeps_everything_the_translation_sets() {
        let route: cfnet_api::Route = serde_json::from_value(json!({
            "apiVersion": "networking.cloudfoundry.org/v1alpha1", "kind": "Route",
            "metadata": {"namespace": "ns", "name": "r", "uid": "r-uid",
                         "labels": {"cloudfoundry.org/space_guid": "s", "cloudfoundry.org/org_guid": "o"}},
            "spec": {"host": "a", "path": "/p", "url": "a.apps.example.com/p",
                     "domain": {"name": "apps.example.com", "internal": false},
                     "destinations": [{"guid": "d", "port": 8080, "weight": 100,
                                       "app": {"guid": "app", "process": {"type": "web"}},
                                       "selector": {"matchLabels": {"cloudfoundry.org/app_guid": "app"}}}]}
        }))
        .unwrap();
        let key = cfnet_translate::FqdnKey {
            namespace: "ns".into(),
            fqdn: route.spec.fqdn(),
        };
        let settings = cfnet_translate::Settings {
            gateway: "g".into(),
        };
        let claims = cfnet_translate::ClaimIndex::default();
        let translation = cfnet_translate::translate_fqdn(&key, &[&route], &claims, &settings);
        let mut desired = translation.services[0].clone();
        desired.metadata.labels.get_or_insert_default().insert(
            cfnet_api::MANAGED_BY_LABEL.into(),
            cfnet_api::MANAGED_BY_VALUE.into(),
        );
        assert!(!service_needs_apply(
            &desired,
            &CachedService::new(desired.clone())
        ));
        let vs = translation.virtual_service.unwrap();
        let served: DynamicObject =
            serde_json::from_value(serde_json::to_value(&vs).unwrap()).unwrap();
        assert!(!virtual_service_needs_apply(
            &vs,
            &CachedVirtualService::new(served)
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
