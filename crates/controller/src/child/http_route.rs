//! HTTPRoutes (gateway-api mode): `hr-<sha256(fqdn)>` per FQDN, plus shards `hr-<sha256>-<bits>` past 16
//! rules. Every HTTPRoute is watched (when the Gateway API CRDs are served), so a name missing from the
//! cache is free. Handled as `DynamicObject` on the wire: the typed struct is the subset cfnet writes, and
//! a served object carries more (the implementations' status among it).

use std::collections::BTreeSet;

use cfnet_api::gateway_api::{
    GATEWAY_API_GROUP, HTTPRoute, HTTPRouteStatus, ROUTE_ACCEPTED, ROUTE_RESOLVED_REFS,
};
use cfnet_api::{FQDN_ANNOTATION, MANAGED_BY_LABEL};
use cfnet_translate::{FqdnKey, FqdnTranslation};
use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use serde_json::Value;

use super::{Child, ChildMeta, ConditionReport, ParentId, ParentReport, whole_spec};
use crate::index::{ChildStore, Index};

impl Child for HTTPRoute {
    const KIND: &'static str = "HTTPRoute";
    const FQDN_ANNOTATION: &'static str = FQDN_ANNOTATION;
    const LABELS: &'static [&'static str] = &[MANAGED_BY_LABEL];
    const ANNOTATIONS: &'static [&'static str] = &[FQDN_ANNOTATION];
    const WATCH_LABEL: Option<&'static str> = None;
    const FOREIGN_FIX: &'static str = "delete it";

    type Object = DynamicObject;

    fn api(client: Client, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = ApiResource::erase::<HTTPRoute>(&());
        match namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        }
    }

    fn desired(translation: &FqdnTranslation) -> &[HTTPRoute] {
        &translation.http_routes
    }

    /// The spec is ours as a whole: cfnet writes every field the CRD would default, so the stored spec
    /// equals the applied one (crates/testenv/tests/gateway_api.rs).
    fn desired_spec(&self) -> Value {
        whole_spec::desired(&self.spec)
    }

    fn served_spec(object: &DynamicObject) -> Value {
        whole_spec::served(object)
    }

    fn repair(&self) -> Value {
        whole_spec::repair(&self.spec)
    }

    fn store(index: &Index) -> &ChildStore<HTTPRoute> {
        &index.http_routes
    }

    fn store_mut(index: &mut Index) -> &mut ChildStore<HTTPRoute> {
        &mut index.http_routes
    }

    /// The key whose name (or shard name) it holds: a foreign HTTPRoute named like ours has no FQDN
    /// annotation.
    fn related_keys(index: &Index, meta: &ChildMeta, out: &mut BTreeSet<FqdnKey>) {
        index.http_route_name_key(meta, out);
    }

    /// `status.parents`, each reduced to its Accepted and ResolvedRefs conditions of the current
    /// generation. A status that does not parse (another writer's newer schema) counts as no report.
    fn reports(object: &DynamicObject) -> Option<Box<[ParentReport]>> {
        let status: HTTPRouteStatus =
            serde_json::from_value(object.data.get("status")?.clone()).ok()?;
        let namespace = object.metadata.namespace.clone().unwrap_or_default();
        let generation = object.metadata.generation;
        let reports: Vec<ParentReport> = status
            .parents
            .iter()
            .map(|p| {
                let current = |type_: &str| {
                    let c = p.condition(type_)?;
                    let stale =
                        matches!((c.observed_generation, generation), (Some(o), Some(g)) if o < g);
                    (!stale).then(|| ConditionReport {
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                    })
                };
                let r = &p.parent_ref;
                ParentReport {
                    parent: ParentId {
                        group: r
                            .group
                            .clone()
                            .unwrap_or_else(|| GATEWAY_API_GROUP.to_owned()),
                        kind: r.kind.clone().unwrap_or_else(|| "Gateway".to_owned()),
                        namespace: r.namespace.clone().unwrap_or_else(|| namespace.clone()),
                        name: r.name.clone(),
                    },
                    controller: p.controller_name.clone(),
                    accepted: current(ROUTE_ACCEPTED),
                    resolved_refs: current(ROUTE_RESOLVED_REFS),
                }
            })
            .collect();
        (!reports.is_empty()).then(|| reports.into_boxed_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::{Cached, needs_apply};
    use serde_json::json;

    fn desired() -> HTTPRoute {
        let t = crate::child::tests::one_route_translation(cfnet_translate::Settings {
            routing_api: cfnet_translate::RoutingApi::GatewayApi,
            ..Default::default()
        });
        assert!(t.virtual_service.is_none());
        t.http_routes[0].clone()
    }

    fn served(hr: &HTTPRoute) -> DynamicObject {
        serde_json::from_value(serde_json::to_value(hr).unwrap()).unwrap()
    }

    #[test]
    fn http_route_spec_must_be_equal_and_status_is_not_drift() {
        let desired = desired();
        let keys = |m: &Option<std::collections::BTreeMap<String, String>>| -> Vec<String> {
            m.iter().flatten().map(|(k, _)| k.clone()).collect()
        };
        // The kind's key lists are exactly the keys the translation sets.
        assert_eq!(keys(&desired.metadata.labels), HTTPRoute::LABELS);
        assert_eq!(keys(&desired.metadata.annotations), HTTPRoute::ANNOTATIONS);
        let mut actual = served(&desired);
        assert!(!needs_apply(
            &desired,
            &Cached::<HTTPRoute>::new(actual.clone())
        ));
        // An implementation's status is not ours: no apply.
        actual.data["status"] =
            json!({"parents": [{"controllerName": "x", "parentRef": {"name": "g"}}]});
        assert!(!needs_apply(
            &desired,
            &Cached::<HTTPRoute>::new(actual.clone())
        ));
        // A changed weight is.
        actual.data["spec"]["rules"][0]["backendRefs"][0]["weight"] = json!(7);
        assert!(needs_apply(&desired, &Cached::<HTTPRoute>::new(actual)));
        assert_eq!(desired.repair()[0]["path"], "/spec");
    }

    fn condition(type_: &str, status: &str, generation: i64) -> Value {
        json!({"type": type_, "status": status, "reason": format!("{type_}{status}"),
               "message": format!("{type_} is {status}"), "observedGeneration": generation,
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn reports_keep_the_current_generations_conditions_per_parent() {
        let mut object = served(&desired());
        assert_eq!(HTTPRoute::reports(&object), None, "no status, no report");
        object.metadata.generation = Some(3);
        object.data["status"] = json!({"parents": [
            {"parentRef": {"name": "cf-gateway", "namespace": "cf-system"}, "controllerName": "istio.io/gateway-controller",
             "conditions": [condition("Accepted", "False", 3), condition("ResolvedRefs", "True", 2)]},
            {"parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "local"}, "controllerName": "other",
             "conditions": []},
        ]});
        let reports = HTTPRoute::reports(&object).unwrap();
        assert_eq!(
            reports[0].parent,
            ParentId {
                group: "gateway.networking.k8s.io".into(),
                kind: "Gateway".into(),
                namespace: "cf-system".into(),
                name: "cf-gateway".into()
            }
        );
        assert_eq!(reports[0].controller, "istio.io/gateway-controller");
        let accepted = reports[0].accepted.as_ref().unwrap();
        assert_eq!(
            (
                accepted.status.as_str(),
                accepted.reason.as_str(),
                accepted.message.as_str()
            ),
            ("False", "AcceptedFalse", "Accepted is False")
        );
        assert_eq!(
            reports[0].resolved_refs, None,
            "observed for generation 2 of 3: stale"
        );
        assert_eq!(
            reports[1].parent.namespace, "ns",
            "the HTTPRoute's namespace by default"
        );
        assert_eq!(reports[1].accepted, None);
        // A status another writer filled with a schema we cannot read is no report, not an error.
        object.data["status"] = json!({"parents": "nonsense"});
        assert_eq!(HTTPRoute::reports(&object), None);
    }
}
