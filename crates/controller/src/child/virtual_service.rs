//! VirtualServices: one per FQDN, `vs-<sha256(fqdn)>`. Every VirtualService is watched, so a name missing
//! from the cache is free. Handled as `DynamicObject` on the wire: the typed struct is only the subset
//! cfnet writes, and a served object may carry more.

use std::collections::BTreeSet;

use cfnet_api::{FQDN_ANNOTATION, MANAGED_BY_LABEL, VirtualService};
use cfnet_translate::{FqdnKey, FqdnTranslation};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use serde_json::Value;

use super::{Child, ChildMeta, whole_spec};
use crate::index::{ChildStore, Index};

impl Child for VirtualService {
    const KIND: &'static str = "VirtualService";
    const FQDN_ANNOTATION: &'static str = FQDN_ANNOTATION;
    const LABELS: &'static [&'static str] = &[MANAGED_BY_LABEL];
    const ANNOTATIONS: &'static [&'static str] = &[FQDN_ANNOTATION];
    const WATCH_LABEL: Option<&'static str> = None;
    const FOREIGN_FIX: &'static str = "delete it";

    type Object = DynamicObject;

    fn api(client: Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = ApiResource::erase::<VirtualService>(&());
        match namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        }
    }

    fn desired(translation: &FqdnTranslation) -> &[VirtualService] {
        translation.virtual_service.as_slice()
    }

    /// The spec is ours as a whole (its lists are atomic and the CRD sets no defaults), so it must be
    /// equal.
    fn desired_spec(&self) -> Value {
        whole_spec::desired(&self.spec)
    }

    fn served_spec(object: &DynamicObject) -> Value {
        whole_spec::served(object)
    }

    fn repair(&self) -> Value {
        whole_spec::repair(&self.spec)
    }

    fn store(index: &Index) -> &ChildStore<VirtualService> {
        &index.virtual_services
    }

    fn store_mut(index: &mut Index) -> &mut ChildStore<VirtualService> {
        &mut index.virtual_services
    }

    /// The key whose name it holds: a foreign VirtualService named like ours has no FQDN annotation.
    fn related_keys(index: &Index, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        index.virtual_service_name_key(meta, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::{Cached, needs_apply};
    use serde_json::json;

    fn cached(object: DynamicObject) -> Cached<VirtualService> {
        Cached::new(object)
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
        assert!(!needs_apply(&desired, &cached(actual.clone())));
        // Key order on the wire does not matter.
        let reordered: DynamicObject = serde_json::from_str(
            r#"{"apiVersion": "networking.istio.io/v1alpha3", "kind": "VirtualService",
                "metadata": {"name": "vs-1", "annotations": {"cloudfoundry.org/fqdn": "a.b"}},
                "spec": {"http": [{"route": [{"weight": 100, "destination": {"host": "s-1"}}]}], "gateways": ["g"], "hosts": ["a.b"]}}"#,
        )
        .unwrap();
        assert!(!needs_apply(&desired, &cached(reordered)));
        actual.data["spec"]["http"][0]["route"][0]["headers"] =
            json!({"request": {"set": {"x": "y"}}});
        assert!(
            needs_apply(&desired, &cached(actual)),
            "a field we do not set inside http is drift"
        );
        assert_eq!(desired.repair()[0]["path"], "/spec");
    }
}
