//! Facts about the children (Services and VirtualServices): what the index keeps of one, whether we own
//! it, and whether a server-side apply of the desired object would change it. Pure functions, unit
//! tested.

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::sync::Arc;

use cfnet_api::{FQDN_ANNOTATION, MANAGED_BY_LABEL, ROUTE_FQDN_ANNOTATION, VirtualService};
use cfnet_translate::SERVICE_LABELS;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::DynamicObject;
use serde_json::{Value, json};
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

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Label and annotation keys cfnet sets on each kind, every one of them on every object of the kind
/// (a test checks both directions against the translation). Comparing exactly these keys finds every
/// change an apply of ours would make, and no one else's keys.
const SERVICE_ANNOTATIONS: [&str; 1] = [ROUTE_FQDN_ANNOTATION];
const VIRTUAL_SERVICE_LABELS: [&str; 1] = [MANAGED_BY_LABEL];
const VIRTUAL_SERVICE_ANNOTATIONS: [&str; 1] = [FQDN_ANNOTATION];

/// What the index keeps of a child's metadata: identity, revision, the names of the Routes that own it
/// and the FQDN it names. The rest of what cfnet compares is in [`Cached`]'s digest.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildMeta {
    /// Shared strings: the index interns the namespace and keys its maps with these very copies.
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    /// Shared with the index's ids of those Routes where it has them.
    pub(crate) owners: Box<[Arc<str>]>,
    /// The kind's FQDN annotation (`cloudfoundry.org/route-fqdn` on a Service, `cloudfoundry.org/fqdn`
    /// on a VirtualService), shared with the index's key of that FQDN where it has one.
    pub(crate) fqdn: Option<Arc<str>>,
}

impl ChildMeta {
    fn new(meta: ObjectMeta, fqdn_annotation: &str) -> Self {
        let owners = owner_route_names(&meta).map(Arc::from).collect();
        let fqdn = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(fqdn_annotation))
            .map(|v| Arc::from(v.as_str()));
        ChildMeta {
            namespace: meta.namespace.unwrap_or_default().into(),
            name: meta.name.unwrap_or_default().into(),
            uid: meta.uid,
            resource_version: meta.resource_version,
            owners,
            fqdn,
        }
    }

    /// (namespace, name)
    pub fn id(&self) -> (Arc<str>, Arc<str>) {
        (self.namespace.clone(), self.name.clone())
    }

    /// Ours = carries an ownerReference to a networking.cloudfoundry.org Route.
    pub fn is_ours(&self) -> bool {
        !self.owners.is_empty()
    }

    /// Names of the Routes that own the object.
    pub fn owner_route_names(&self) -> impl Iterator<Item = &str> {
        self.owners.iter().map(|n| &**n)
    }

    /// The FQDN the child's annotation names.
    pub fn fqdn(&self) -> Option<&str> {
        self.fqdn.as_deref()
    }
}

/// SHA-256 of what a server-side apply of ours sets on an object: the kind's label and annotation
/// keys, the Route ownerReferences and the spec as cfnet writes it (`spec`, already reduced to the
/// fields cfnet sets). `serde_json::Value` objects are sorted maps, so equal content has equal bytes;
/// an empty value counts as a missing one (omitted-when-empty serialisation).
fn digest(meta: &ObjectMeta, labels: &[&str], annotations: &[&str], spec: Value) -> [u8; 32] {
    let pick =
        |map: &Option<BTreeMap<String, String>>, keys: &[&str]| -> BTreeMap<String, String> {
            keys.iter()
                .filter_map(|k| Some((k.to_string(), map.as_ref()?.get(*k)?.clone())))
                .collect()
        };
    let projection = json!({
        "labels": pick(&meta.labels, labels),
        "annotations": pick(&meta.annotations, annotations),
        "owners": route_refs(meta),
        "spec": normalise(spec),
    });
    // Serialising a Value cannot fail (its map keys are strings); an empty buffer would only force an apply.
    Sha256::digest(serde_json::to_vec(&projection).unwrap_or_default()).into()
}

/// Drops empty objects and lists (and nulls) at every level, so that omitted and empty compare equal.
fn normalise(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, normalise(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(normalise).collect()),
        v => v,
    }
}

/// The part of a Service's spec cfnet sets (see the translation core's Service builder): the ports'
/// name, port and protocol, and the selector. Server defaults (clusterIP, targetPort, …) are left out.
fn service_spec(spec: Option<&ServiceSpec>) -> Value {
    let Some(spec) = spec else {
        return Value::Null;
    };
    let ports: Vec<Value> = spec
        .ports
        .iter()
        .flatten()
        .map(|p| json!({"name": p.name, "port": p.port, "protocol": p.protocol}))
        .collect();
    json!({"ports": ports, "selector": spec.selector})
}

fn service_digest(svc: &Service) -> [u8; 32] {
    digest(
        &svc.metadata,
        &SERVICE_LABELS,
        &SERVICE_ANNOTATIONS,
        service_spec(svc.spec.as_ref()),
    )
}

/// What the index keeps of a child of kind `K`: [`ChildMeta`] and the digest of what an apply of ours
/// sets. Whether an apply would change the object is then one comparison of digests, and a cached
/// child takes a few hundred bytes instead of a few kilobytes of k8s-openapi structs (with 10,000
/// routes the index holds 20,000 children).
#[derive(Clone, Debug, PartialEq)]
pub struct Cached<K> {
    pub meta: ChildMeta,
    digest: [u8; 32],
    kind: PhantomData<fn() -> K>,
}

pub type CachedService = Cached<Service>;
pub type CachedVirtualService = Cached<VirtualService>;

impl Cached<Service> {
    pub fn new(svc: Service) -> Self {
        Cached {
            digest: service_digest(&svc),
            meta: ChildMeta::new(svc.metadata, ROUTE_FQDN_ANNOTATION),
            kind: PhantomData,
        }
    }
}

impl Cached<VirtualService> {
    pub fn new(obj: DynamicObject) -> Self {
        let spec = obj.data.get("spec").cloned().unwrap_or(Value::Null);
        Cached {
            digest: digest(
                &obj.metadata,
                &VIRTUAL_SERVICE_LABELS,
                &VIRTUAL_SERVICE_ANNOTATIONS,
                spec,
            ),
            meta: ChildMeta::new(obj.metadata, FQDN_ANNOTATION),
            kind: PhantomData,
        }
    }
}

/// Would applying `desired` change `actual`? Compares the labels and annotations cfnet sets, the Route
/// ownerReferences and the spec fields cfnet sets; server defaults and others' keys are ignored.
pub fn service_needs_apply(desired: &Service, actual: &CachedService) -> bool {
    service_digest(desired) != actual.digest
}

/// Would applying `desired` change `actual`? The VirtualService spec is ours as a whole (its lists are
/// atomic and the CRD sets no defaults), so it must be equal; metadata compares like a Service's.
pub fn virtual_service_needs_apply(
    desired: &VirtualService,
    actual: &CachedVirtualService,
) -> bool {
    let Ok(spec) = serde_json::to_value(&desired.spec) else {
        return true;
    };
    digest(
        &desired.metadata,
        &VIRTUAL_SERVICE_LABELS,
        &VIRTUAL_SERVICE_ANNOTATIONS,
        spec,
    ) != actual.digest
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
        assert_eq!(cached.meta.owner_route_names().collect::<Vec<_>>(), ["r"]);
        assert_eq!(cached.meta.fqdn(), Some("x"));
        assert_eq!(cached.meta.resource_version.as_deref(), Some("7"));

        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9090;
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual.clone())),
            "an edited port must be restored"
        );
        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
        actual.spec.as_mut().unwrap().selector = None;
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual.clone())),
            "a removed selector must be restored"
        );
        actual.spec.as_mut().unwrap().selector = Some(BTreeMap::from([
            ("app".to_string(), "x".to_string()),
            ("tier".to_string(), "other".to_string()),
        ]));
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual.clone())),
            "the selector is ours as a whole: a key someone added changes which pods get traffic"
        );
        actual.spec.as_mut().unwrap().selector = desired.spec.as_ref().unwrap().selector.clone();
        actual
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .remove("cloudfoundry.org/app_guid");
        assert!(
            service_needs_apply(&desired, &CachedService::new(actual)),
            "a removed label of ours must be restored"
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

    /// A child's digest covers only the kind's label and annotation keys and the spec fields
    /// `service_spec` keeps. Should the translation ever set another, or stop setting a listed key, this
    /// fails (instead of drift going unseen, or a child being re-applied for ever).
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
            fqdn: route.spec.fqdn().into(),
        };
        let settings = cfnet_translate::Settings {
            gateway: "g".into(),
            ..Default::default()
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
        // The kind's key lists are exactly the keys the translation sets: a key it set outside them
        // would never be compared, a listed key it did not set would be drift for ever.
        let keys = |m: &Option<BTreeMap<String, String>>| -> Vec<String> {
            m.iter().flatten().map(|(k, _)| k.clone()).collect()
        };
        let sorted = |l: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = l.iter().map(|k| k.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(keys(&desired.metadata.labels), sorted(&SERVICE_LABELS));
        assert_eq!(
            keys(&desired.metadata.annotations),
            sorted(&SERVICE_ANNOTATIONS)
        );
        // Every spec field it sets is in the digest: changing any of them changes the answer.
        let mut other = desired.clone();
        other.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert!(service_needs_apply(
            &other,
            &CachedService::new(desired.clone())
        ));
        let spec = serde_json::to_value(desired.spec.as_ref().unwrap()).unwrap();
        assert_eq!(
            spec.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["ports", "selector"]
        );
        assert_eq!(
            spec["ports"][0]
                .as_object()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            ["name", "port", "protocol"]
        );
        let vs = translation.virtual_service.unwrap();
        assert_eq!(keys(&vs.metadata.labels), sorted(&VIRTUAL_SERVICE_LABELS));
        assert_eq!(
            keys(&vs.metadata.annotations),
            sorted(&VIRTUAL_SERVICE_ANNOTATIONS)
        );
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
}
