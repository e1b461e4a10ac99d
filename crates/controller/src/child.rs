//! The kinds of object cfnet writes for an FQDN (the "children" of its Routes): what each kind is
//! (the [`Child`] trait), what the index keeps of one ([`Cached`]), whether we own it, and whether a
//! server-side apply of the desired object would change it. Pure functions, unit tested.
//!
//! Everything that differs between kinds is in the trait impl (service.rs, virtual_service.rs,
//! http_route.rs); the
//! index, the plan and the writes are generic over it. docs/architecture.md shows what a third kind takes.

mod http_route;
mod ownership;
mod service;
mod virtual_service;

pub(crate) use ownership::{fold_updates_into_apply, managed_fields_patch};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;

use cfnet_api::ROUTE_GROUP;
use cfnet_translate::{FqdnKey, FqdnTranslation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::Api;
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::index::{ChildStore, Index};

/// A kind of object cfnet writes for an FQDN. `Self` is the object as the translation builds it; the
/// API serves it as [`Child::Object`].
pub(crate) trait Child:
    Resource<DynamicType = ()> + Serialize + Clone + Debug + Send + Sync + 'static
{
    /// The kind's name in logs, metrics, Events and status messages.
    const KIND: &'static str;
    /// The annotation naming the FQDN an object of this kind serves.
    const FQDN_ANNOTATION: &'static str;
    /// The label and annotation keys cfnet sets on every object of the kind (a test checks both
    /// directions against the translation). Comparing exactly these keys finds every change an apply of
    /// ours would make, and no one else's keys.
    const LABELS: &'static [&'static str];
    const ANNOTATIONS: &'static [&'static str];
    /// `Some(label)`: only objects carrying the label are watched, so a name missing from the cache may
    /// still be taken by someone else's object: it is created with a plain create, which fails on a taken
    /// name; the object holding it is then looked up (and never taken over).
    const WATCH_LABEL: Option<&'static str>;
    /// The end of the status message when a foreign object holds the name: what its owner can do.
    const FOREIGN_FIX: &'static str;

    /// The object as the API serves it.
    type Object: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static;

    /// The kind's API in `namespace`, or in every namespace (the watches).
    fn api(client: Client, namespace: Option<&str>) -> Api<Self::Object>;
    /// The objects of the kind one FQDN needs, in the order they are written.
    fn desired(translation: &FqdnTranslation) -> &[Self];
    /// The spec fields cfnet sets, of a desired object and of a served one (for [`Cached`]'s digest).
    fn desired_spec(&self) -> Value;
    fn served_spec(object: &Self::Object) -> Value;
    /// The JSON patch that replaces the fields cfnet owns outright, for when an apply leaves fields another
    /// manager set (an apply cannot remove list entries or map keys someone else added).
    fn repair(&self) -> Value;
    /// Where the index keeps the kind.
    fn store(index: &Index) -> &ChildStore<Self>;
    fn store_mut(index: &mut Index) -> &mut ChildStore<Self>;
    /// The FQDN keys an event on an object concerns besides the one its annotation names.
    fn related_keys(index: &Index, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>);
    /// What the implementations report on the object, for the Route's Ready condition (HTTPRoutes: their
    /// status per parent); `None` for kinds whose status cfnet does not read.
    fn reports(_object: &Self::Object) -> Option<Box<[ParentReport]>> {
        None
    }
}

/// One implementation's report on a child for one parent (an HTTPRoute's `status.parents[]` entry),
/// reduced to what the Route's Ready condition needs. Conditions observed for an older generation of
/// the child are left out: they speak of a spec that is no longer there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentReport {
    /// The parentRef as reported, its defaults filled in (`group`, `kind`, the child's namespace).
    pub parent: ParentId,
    /// e.g. `istio.io/gateway-controller`.
    pub controller: String,
    /// `Accepted` and `ResolvedRefs`, when reported for the current generation: (status, reason,
    /// message), in that order.
    pub accepted: Option<ConditionReport>,
    pub resolved_refs: Option<ConditionReport>,
}

/// A parent reference with its defaults filled in: group, kind, namespace, name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ParentId {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One condition of a report: its status (`True`, `False`, `Unknown`), reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionReport {
    pub status: String,
    pub reason: String,
    pub message: String,
}

fn is_route_ref(r: &OwnerReference) -> bool {
    r.kind == "Route" && r.api_version.split('/').next() == Some(ROUTE_GROUP)
}

/// Ours = carries an ownerReference to a networking.cloudfoundry.org Route (what the Go controller wrote
/// too, so an upgrade adopts its objects).
pub fn is_ours(meta: &ObjectMeta) -> bool {
    meta.owner_references.iter().flatten().any(is_route_ref)
}

/// Names of the Routes that own the object.
pub(crate) fn owner_route_names(meta: &ObjectMeta) -> impl Iterator<Item = &str> {
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

/// What the index keeps of a child's metadata: identity, revision, the names of the Routes that own it
/// and the FQDN it names. The rest of what cfnet compares is in [`Cached`]'s digest.
#[derive(Clone, Debug, PartialEq)]
pub struct ChildMeta {
    /// Shared strings: the index interns the namespace and keys its maps with these very copies.
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// Boxed: 8 bytes less each than a `String`, for every cached child (the index's memory per route).
    pub uid: Option<Box<str>>,
    pub resource_version: Option<Box<str>>,
    /// Shared with the index's ids of those Routes where it has them.
    pub(crate) owners: Box<[Arc<str>]>,
    /// The kind's FQDN annotation, lower-cased as Routes' FQDNs are (`RouteSpec::fqdn`), shared with the
    /// index's key of that FQDN where it has one. Lower-cased so that a child the Go controller wrote for
    /// `shop.Apps.Example.COM` is found under the FQDN's one key and pruned once its successor is applied.
    pub(crate) fqdn: Option<Arc<str>>,
}

impl ChildMeta {
    fn new(meta: ObjectMeta, fqdn_annotation: &str) -> Self {
        let owners = owner_route_names(&meta).map(Arc::from).collect();
        let fqdn = meta
            .annotations
            .as_ref()
            .and_then(|a| a.get(fqdn_annotation))
            .map(|v| Arc::from(v.to_ascii_lowercase()));
        ChildMeta {
            namespace: meta.namespace.unwrap_or_default().into(),
            name: meta.name.unwrap_or_default().into(),
            uid: meta.uid.map(String::into_boxed_str),
            resource_version: meta.resource_version.map(String::into_boxed_str),
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

    /// The FQDN the child's annotation names, lower-cased.
    pub fn fqdn(&self) -> Option<&str> {
        self.fqdn.as_deref()
    }

    /// The key the child's FQDN annotation names.
    pub(crate) fn fqdn_key(&self) -> Option<FqdnKey> {
        Some(FqdnKey {
            namespace: self.namespace.clone(),
            fqdn: self.fqdn.clone()?,
        })
    }
}

/// The helpers of the kinds whose spec is ours as a whole (VirtualService, HTTPRoute): kept as the API
/// server returns them (`DynamicObject`), compared whole, repaired by replacing the whole spec.
pub(crate) mod whole_spec {
    use kube::api::DynamicObject;
    use serde::Serialize;
    use serde_json::{Value, json};

    /// The typed spec as JSON. Serialising a typed spec cannot fail; `Null` would only force an apply.
    pub fn desired<S: Serialize>(spec: &S) -> Value {
        serde_json::to_value(spec).unwrap_or(Value::Null)
    }

    pub fn served(object: &DynamicObject) -> Value {
        object.data.get("spec").cloned().unwrap_or(Value::Null)
    }

    /// Spec fields another manager added survive an apply; the spec is ours as a whole, so replace it.
    pub fn repair<S: Serialize>(spec: &S) -> Value {
        json!([{"op": "replace", "path": "/spec", "value": spec}])
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

/// What a server-side apply of ours sets on an object of kind `C`: the kind's label and annotation keys,
/// the Route ownerReferences and the spec as cfnet writes it (`spec`, already reduced to the fields cfnet
/// sets), empty values dropped (omitted-when-empty serialisation). The digest hashes it; `cfnet diff`
/// compares two of them field by field, so both see exactly the same fields.
pub(crate) fn projection<C: Child>(meta: &ObjectMeta, spec: Value) -> Value {
    let pick =
        |map: &Option<BTreeMap<String, String>>, keys: &[&str]| -> BTreeMap<String, String> {
            keys.iter()
                .filter_map(|k| Some((k.to_string(), map.as_ref()?.get(*k)?.clone())))
                .collect()
        };
    json!({
        "labels": pick(&meta.labels, C::LABELS),
        "annotations": pick(&meta.annotations, C::ANNOTATIONS),
        "owners": route_refs(meta),
        "spec": normalise(spec),
    })
}

/// SHA-256 of the [`projection`]. `serde_json::Value` objects are sorted maps, so equal content has
/// equal bytes.
fn digest<C: Child>(meta: &ObjectMeta, spec: Value) -> [u8; 32] {
    let projection = projection::<C>(meta, spec);
    // Serialising a Value cannot fail (its map keys are strings); an empty buffer would only force an apply.
    Sha256::digest(serde_json::to_vec(&projection).unwrap_or_default()).into()
}

/// What the index keeps of a child of kind `C`: [`ChildMeta`] and the digest of what an apply of ours
/// sets. Whether an apply would change the object is then one comparison of digests, and a cached child
/// takes a few hundred bytes instead of a few kilobytes of k8s-openapi structs (with 10,000 routes the
/// index holds 20,000 children).
#[derive(Clone, Debug, PartialEq)]
pub struct Cached<C> {
    pub meta: ChildMeta,
    digest: [u8; 32],
    /// [`Child::reports`] of the object as served.
    pub reports: Option<Box<[ParentReport]>>,
    kind: std::marker::PhantomData<fn() -> C>,
}

impl<C: Child> Cached<C> {
    /// The cached form of an object as served (a watch event, an apply response, a lookup).
    pub fn new(mut object: C::Object) -> Self {
        Cached {
            digest: digest::<C>(object.meta(), C::served_spec(&object)),
            reports: C::reports(&object),
            meta: ChildMeta::new(std::mem::take(object.meta_mut()), C::FQDN_ANNOTATION),
            kind: std::marker::PhantomData,
        }
    }
}

/// Would applying `desired` change `actual`? Compares the labels and annotations cfnet sets, the Route
/// ownerReferences and the spec fields cfnet sets; server defaults and others' keys are ignored.
pub(crate) fn needs_apply<C: Child>(desired: &C, actual: &Cached<C>) -> bool {
    digest::<C>(desired.meta(), desired.desired_spec()) != actual.digest
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cfnet_api::VirtualService;
    use k8s_openapi::api::core::v1::Service;

    pub fn route_ref(name: &str) -> OwnerReference {
        OwnerReference {
            api_version: cfnet_api::ROUTE_API_VERSION.into(),
            kind: "Route".into(),
            name: name.into(),
            uid: format!("{name}-uid"),
            ..Default::default()
        }
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

    /// The translation of one Route `ns/r` (host `a`, path `/p`, one destination `d`) with `settings`.
    pub(crate) fn one_route_translation(settings: cfnet_translate::Settings) -> FqdnTranslation {
        let route = cfnet_api::fixtures::route("r")
            .namespace("ns")
            .host("a")
            .path("/p")
            .uid("r-uid")
            .space_and_org("s", "o")
            .destination(cfnet_api::fixtures::destination("d", "app").weight(100))
            .build();
        let key = FqdnKey {
            namespace: "ns".into(),
            fqdn: route.spec.fqdn().into(),
        };
        let claims = cfnet_translate::ClaimIndex::default();
        cfnet_translate::translate_fqdn(&key, &[&route], &claims, &settings)
    }

    /// A child's digest covers only the kind's label and annotation keys and the spec fields it keeps.
    /// Should the translation ever set another, or stop setting a listed key, this fails (instead of
    /// drift going unseen, or a child being re-applied for ever).
    #[test]
    fn the_cache_keeps_everything_the_translation_sets() {
        let translation = one_route_translation(cfnet_translate::Settings {
            gateway: "g".into(),
            ..Default::default()
        });
        let desired = translation.services[0].clone();
        assert!(!needs_apply(
            &desired,
            &Cached::<Service>::new(desired.clone())
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
        assert_eq!(keys(&desired.metadata.labels), sorted(Service::LABELS));
        assert_eq!(
            keys(&desired.metadata.annotations),
            sorted(Service::ANNOTATIONS)
        );
        // Every spec field it sets is in the digest: changing any of them changes the answer.
        let mut other = desired.clone();
        other.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        assert!(needs_apply(
            &other,
            &Cached::<Service>::new(desired.clone())
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
        assert_eq!(keys(&vs.metadata.labels), sorted(VirtualService::LABELS));
        assert_eq!(
            keys(&vs.metadata.annotations),
            sorted(VirtualService::ANNOTATIONS)
        );
        let served: kube::api::DynamicObject =
            serde_json::from_value(serde_json::to_value(&vs).unwrap()).unwrap();
        assert!(!needs_apply(&vs, &Cached::<VirtualService>::new(served)));
    }
}
