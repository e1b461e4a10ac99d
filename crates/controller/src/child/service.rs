//! Services: one per destination, `s-<destination guid>`. Only Services labelled with the route guid are
//! watched (a cluster has many Services cfnet never reads), so a name missing from the cache may be taken:
//! it is created with a plain create, which fails on a taken name; the Service holding it is then looked
//! up, and a foreign one is reported, never taken over.

use std::collections::BTreeSet;

use cfnet_api::{ROUTE_FQDN_ANNOTATION, ROUTE_GUID_LABEL};
use cfnet_translate::{FqdnKey, FqdnTranslation, SERVICE_LABELS};
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use kube::Client;
use kube::api::Api;
use serde_json::{Value, json};

use super::{Child, ChildMeta};
use crate::index::{ChildStore, Index};

/// The part of a Service's spec cfnet sets (see the translation core's Service builder): the ports'
/// name, port and protocol, and the selector. Server defaults (clusterIP, targetPort, …) are left out.
fn spec_fields(spec: Option<&ServiceSpec>) -> Value {
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

impl Child for Service {
    const KIND: &'static str = "Service";
    const FQDN_ANNOTATION: &'static str = ROUTE_FQDN_ANNOTATION;
    const LABELS: &'static [&'static str] = &SERVICE_LABELS;
    const ANNOTATIONS: &'static [&'static str] = &[ROUTE_FQDN_ANNOTATION];
    const WATCH_LABEL: Option<&'static str> = Some(ROUTE_GUID_LABEL);
    const FOREIGN_FIX: &'static str = "delete or rename it";

    type Object = Service;

    fn api(client: Client, namespace: Option<&str>) -> Api<Service> {
        match namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        }
    }

    fn desired(translation: &FqdnTranslation) -> &[Service] {
        &translation.services
    }

    fn desired_spec(&self) -> Value {
        spec_fields(self.spec.as_ref())
    }

    fn served_spec(object: &Service) -> Value {
        spec_fields(object.spec.as_ref())
    }

    /// An apply cannot remove list entries another manager added (e.g. `kubectl edit` of a port), nor a
    /// selector key: replace the ports and the selector outright.
    fn repair(&self) -> Value {
        let spec = self.spec.clone().unwrap_or_default();
        json!([
            {"op": "replace", "path": "/spec/ports", "value": spec.ports.unwrap_or_default()},
            {"op": "replace", "path": "/spec/selector", "value": spec.selector.unwrap_or_default()},
        ])
    }

    fn store(index: &Index) -> &ChildStore<Service> {
        &index.services
    }

    fn store_mut(index: &mut Index) -> &mut ChildStore<Service> {
        &mut index.services
    }

    /// The keys of the Routes that own it: a Service moves with its Route's FQDN.
    fn related_keys(index: &Index, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        index.owners_keys(meta, out);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::child::tests::route_ref;
    use crate::child::{Cached, needs_apply};

    fn service(value: Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn cached(s: &Service) -> Cached<Service> {
        Cached::new(s.clone())
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
        let c = cached(&actual);
        assert!(!needs_apply(&desired, &c));
        assert_eq!(c.meta.owner_route_names().collect::<Vec<_>>(), ["r"]);
        assert_eq!(c.meta.fqdn(), Some("x"));
        assert_eq!(c.meta.resource_version.as_deref(), Some("7"));

        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 9090;
        assert!(
            needs_apply(&desired, &cached(&actual)),
            "an edited port must be restored"
        );
        actual.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
        actual.spec.as_mut().unwrap().selector = None;
        assert!(
            needs_apply(&desired, &cached(&actual)),
            "a removed selector must be restored"
        );
        actual.spec.as_mut().unwrap().selector = Some(BTreeMap::from([
            ("app".to_string(), "x".to_string()),
            ("tier".to_string(), "other".to_string()),
        ]));
        assert!(
            needs_apply(&desired, &cached(&actual)),
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
            needs_apply(&desired, &cached(&actual)),
            "a removed label of ours must be restored"
        );

        let same = cached(&desired);
        let mut relabelled = desired.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("cloudfoundry.org/app_guid".into(), "2".into());
        assert!(needs_apply(&relabelled, &same));

        let mut other_owner = desired.clone();
        other_owner.metadata.owner_references = Some(vec![route_ref("other")]);
        assert!(needs_apply(&other_owner, &same));
    }

    #[test]
    fn the_repair_replaces_ports_and_selector() {
        let desired = service(json!({
            "metadata": {"name": "s-d"},
            "spec": {"selector": {"app": "x"}, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
        }));
        assert_eq!(
            desired.repair(),
            json!([
                {"op": "replace", "path": "/spec/ports", "value": [{"name": "http", "port": 8080, "protocol": "TCP"}]},
                {"op": "replace", "path": "/spec/selector", "value": {"app": "x"}},
            ])
        );
    }
}
